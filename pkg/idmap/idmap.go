// Package idmap owns writing a user namespace's uid and gid maps from the host side. Mappings that
// only map the caller's own ids, and any mapping when the caller is root, are written directly;
// everything else (the /etc/subuid ranges) goes through the setuid helpers newuidmap and newgidmap
// from the uidmap package, which check the ranges against /etc/subuid and /etc/subgid.
//
// Writing is split in two: Prepare, before the pod's init is forked, does all that allocates (the
// init shares the writer's memory copy-on-write until it execs), and Apply writes the maps.
package idmap

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/kite-runtime/kite/pkg/exitcode"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Format renders mappings in the "inside outside count" lines of /proc/PID/uid_map.
func Format(m []specs.LinuxIDMapping) string {
	var b strings.Builder
	for _, e := range m {
		fmt.Fprintf(&b, "%d %d %d\n", e.ContainerID, e.HostID, e.Size)
	}
	return b.String()
}

// Read parses a /proc/PID/uid_map or gid_map file.
func Read(path string) ([]specs.LinuxIDMapping, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read id map: %w", err)
	}
	var m []specs.LinuxIDMapping
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var c, h, n uint32
		if _, err := fmt.Sscan(line, &c, &h, &n); err != nil {
			return nil, fmt.Errorf("parse %s: line %q: %w", path, strings.TrimSpace(line), err)
		}
		m = append(m, specs.LinuxIDMapping{ContainerID: c, HostID: h, Size: n})
	}
	return m, nil
}

// Contains reports whether m maps id, an id inside the namespace.
func Contains(m []specs.LinuxIDMapping, id uint32) bool {
	for _, e := range m {
		if id >= e.ContainerID && uint64(id) < uint64(e.ContainerID)+uint64(e.Size) {
			return true
		}
	}
	return false
}

// Ranges describes the ids m maps inside the namespace, e.g. "0-65536".
func Ranges(m []specs.LinuxIDMapping) string {
	parts := make([]string, len(m))
	for i, e := range m {
		parts[i] = fmt.Sprintf("%d-%d", e.ContainerID, uint64(e.ContainerID)+uint64(e.Size)-1)
	}
	return strings.Join(parts, ", ")
}

// onlySelf reports whether m maps nothing but id, which an unprivileged process may write itself
// (user_namespaces(7), "Defining user and group ID mappings").
func onlySelf(m []specs.LinuxIDMapping, id int) bool {
	return len(m) == 1 && m[0].Size == 1 && int(m[0].HostID) == id
}

// Plan is how the maps of one process will be written.
type Plan struct {
	uid, gid write
}

// write is one map: written directly (helper == ""), or by running helper.
type write struct {
	file    string // uid_map or gid_map
	content []byte
	// denySetgroups is set for a direct, unprivileged gid map: the writer must give up
	// setgroups(2) first, or the mapped process could drop a supplementary group the host uses to
	// deny access (CVE-2014-8989).
	denySetgroups bool
	helper        string   // path of newuidmap or newgidmap
	args          []string // the helper's arguments after the PID
}

// Prepare decides how to write uids and gids and finds the helpers it needs.
func Prepare(uids, gids []specs.LinuxIDMapping) (*Plan, error) {
	if len(uids) == 0 || len(gids) == 0 {
		return nil, errors.New("write id maps: the pod's config.json has no uid or gid mappings")
	}
	privileged := os.Geteuid() == 0
	uid, err := plan("uid_map", "newuidmap", uids, privileged || onlySelf(uids, os.Geteuid()), false)
	if err != nil {
		return nil, err
	}
	gid, err := plan("gid_map", "newgidmap", gids, privileged || onlySelf(gids, os.Getegid()), !privileged)
	if err != nil {
		return nil, err
	}
	return &Plan{uid: uid, gid: gid}, nil
}

func plan(file, tool string, m []specs.LinuxIDMapping, direct, deny bool) (write, error) {
	if direct {
		return write{file: file, content: []byte(Format(m)), denySetgroups: deny}, nil
	}
	path, err := exec.LookPath(tool)
	if err != nil {
		return write{}, fmt.Errorf("map ids: %s not found: install the uidmap package (apt-get install uidmap)", tool)
	}
	w := write{file: file, helper: path}
	for _, e := range m {
		w.args = append(w.args, strconv.FormatUint(uint64(e.ContainerID), 10),
			strconv.FormatUint(uint64(e.HostID), 10), strconv.FormatUint(uint64(e.Size), 10))
	}
	return w, nil
}

// Apply writes the maps of process pid, which must be in a new user namespace: directly, or with
// the helpers, which run in parallel (each is a fork and exec of a setuid binary) and print their
// own messages to this process's stderr.
func (p *Plan) Apply(pid int) error {
	pidStr := strconv.Itoa(pid)
	var started []helper
	var errs []error
	for _, w := range []*write{&p.uid, &p.gid} {
		if w.helper == "" {
			errs = append(errs, w.writeDirect(pidStr))
			continue
		}
		argv := append([]string{w.helper, pidStr}, w.args...)
		child, err := syscall.ForkExec(w.helper, argv, &syscall.ProcAttr{
			Env:   []string{},
			Files: []uintptr{uintptr(unix.Stdin), uintptr(unix.Stdout), uintptr(unix.Stderr)},
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("map ids: run %s: %w", w.helper, err))
			continue
		}
		started = append(started, helper{name: filepath.Base(w.helper), pid: child})
	}
	for _, h := range started {
		errs = append(errs, h.wait())
	}
	return errors.Join(errs...)
}

// helper is a started newuidmap or newgidmap.
type helper struct {
	name string
	pid  int
}

func (h helper) wait() error {
	var ws syscall.WaitStatus
	var err error
	for {
		if _, err = syscall.Wait4(h.pid, &ws, 0, nil); err != syscall.EINTR {
			break
		}
	}
	switch {
	case err != nil:
		return fmt.Errorf("map ids: wait for %s: %w", h.name, err)
	case !ws.Exited() || ws.ExitStatus() != 0:
		return fmt.Errorf("map ids: %s failed (status %d): check the ranges in /etc/subuid and /etc/subgid", h.name, exitcode.FromWaitStatus(ws))
	}
	return nil
}

func (w *write) writeDirect(pid string) error {
	if w.denySetgroups {
		if err := writeProc(pid, "setgroups", []byte("deny")); err != nil {
			return err
		}
	}
	return writeProc(pid, w.file, w.content)
}

func writeProc(pid, name string, content []byte) error {
	p := "/proc/" + pid + "/" + name
	if err := os.WriteFile(p, content, 0); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}
