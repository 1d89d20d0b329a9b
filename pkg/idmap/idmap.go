// Package idmap owns writing a user namespace's uid and gid maps from the host side. Mappings that
// only map the caller's own ids, and any mapping when the caller is root, are written directly;
// everything else (the /etc/subuid ranges) goes through the setuid helpers newuidmap and newgidmap
// from the uidmap package, which check the ranges against /etc/subuid and /etc/subgid.
package idmap

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Format renders mappings in the "inside outside count" lines of /proc/PID/uid_map.
func Format(m []specs.LinuxIDMapping) string {
	var b strings.Builder
	for _, e := range m {
		fmt.Fprintf(&b, "%d %d %d\n", e.ContainerID, e.HostID, e.Size)
	}
	return b.String()
}

// onlySelf reports whether m maps nothing but id, which an unprivileged process may write itself
// (user_namespaces(7), "Defining user and group ID mappings").
func onlySelf(m []specs.LinuxIDMapping, id int) bool {
	return len(m) == 1 && m[0].Size == 1 && int(m[0].HostID) == id
}

// Write sets the uid and gid maps of process pid, which must be in a new user namespace.
func Write(pid int, uids, gids []specs.LinuxIDMapping) error {
	if len(uids) == 0 || len(gids) == 0 {
		return errors.New("write id maps: the pod's config.json has no uid or gid mappings")
	}
	privileged := os.Geteuid() == 0
	directUID := privileged || onlySelf(uids, os.Geteuid())
	directGID := privileged || onlySelf(gids, os.Getegid())

	// newuidmap and newgidmap each cost a fork and exec of a setuid binary; run them in parallel.
	gidDone := make(chan error, 1)
	go func() {
		if directGID {
			gidDone <- writeGIDDirect(pid, gids, privileged)
		} else {
			gidDone <- runHelper("newgidmap", pid, gids)
		}
	}()
	var uidErr error
	if directUID {
		uidErr = writeProc(pid, "uid_map", Format(uids))
	} else {
		uidErr = runHelper("newuidmap", pid, uids)
	}
	return errors.Join(uidErr, <-gidDone)
}

func writeGIDDirect(pid int, gids []specs.LinuxIDMapping, privileged bool) error {
	if !privileged {
		// An unprivileged writer must give up setgroups(2) first: otherwise the mapped process could
		// drop a supplementary group the host uses to deny access (CVE-2014-8989).
		if err := writeProc(pid, "setgroups", "deny"); err != nil {
			return err
		}
	}
	return writeProc(pid, "gid_map", Format(gids))
}

func writeProc(pid int, name, content string) error {
	p := "/proc/" + strconv.Itoa(pid) + "/" + name
	if err := os.WriteFile(p, []byte(content), 0); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

func runHelper(tool string, pid int, m []specs.LinuxIDMapping) error {
	path, err := exec.LookPath(tool)
	if err != nil {
		return fmt.Errorf("map ids: %s not found: install the uidmap package (apt-get install uidmap)", tool)
	}
	args := []string{strconv.Itoa(pid)}
	for _, e := range m {
		args = append(args, strconv.FormatUint(uint64(e.ContainerID), 10),
			strconv.FormatUint(uint64(e.HostID), 10), strconv.FormatUint(uint64(e.Size), 10))
	}
	var out bytes.Buffer
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("map ids: %s %s: %w: %s (check the ranges in /etc/subuid and /etc/subgid)",
			tool, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}
