package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// idRange is one line of /etc/subuid or of a uid_map: ids [Inside, Inside+Size) → [Host, ...).
type idRange struct {
	Inside, Host, Size uint64
}

// subRanges returns the current user's ranges in /etc/subuid or /etc/subgid (file), in file
// order, matched by user name or numeric uid as shadow-utils does.
func subRanges(file string) []idRange {
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	uid := strconv.Itoa(os.Getuid())
	name := ""
	if u, err := user.LookupId(uid); err == nil {
		name = u.Username
	}
	var out []idRange
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Split(strings.TrimSpace(s.Text()), ":")
		if len(fields) != 3 || (fields[0] != uid && fields[0] != name) {
			continue
		}
		start, err1 := strconv.ParseUint(fields[1], 10, 32)
		size, err2 := strconv.ParseUint(fields[2], 10, 32)
		if err1 == nil && err2 == nil && size > 0 {
			out = append(out, idRange{Host: start, Size: size})
		}
	}
	return out
}

// needSubIDs makes sure the current user can map more than its own id: root always can; any other
// user needs ranges in /etc/subuid and /etc/subgid and the newuidmap and newgidmap helpers.
func needSubIDs(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if len(subRanges("/etc/subuid")) == 0 || len(subRanges("/etc/subgid")) == 0 {
		needHost(t, "uid %d has no range in /etc/subuid and /etc/subgid, so pods map only root; add one: sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 $USER", os.Getuid())
	}
	for _, tool := range []string{"newuidmap", "newgidmap"} {
		if _, err := exec.LookPath(tool); err != nil {
			needHost(t, "%s is not on PATH; install the uidmap package (apt-get install uidmap)", tool)
		}
	}
}

// needRoot makes sure the test runs as root.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		needHost(t, "this test needs root (euid 0), it runs as uid %d; make e2e runs it as root", os.Geteuid())
	}
}

// needUnprivileged makes sure the test runs as an unprivileged user.
func needUnprivileged(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		needHost(t, "this test needs an unprivileged user, it runs as root; make e2e runs it as the user kite-test")
	}
}

// parseIDMap parses the text of /proc/PID/uid_map or gid_map.
func parseIDMap(t *testing.T, text string) []idRange {
	t.Helper()
	var out []idRange
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("bad id map line %q in %q", line, text)
		}
		var v [3]uint64
		for i := range f {
			n, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				t.Fatalf("bad id map line %q in %q", line, text)
			}
			v[i] = n
		}
		out = append(out, idRange{Inside: v[0], Host: v[1], Size: v[2]})
	}
	return out
}

// hostProc is a process on the host as /proc shows it.
type hostProc struct {
	PID  int
	Exe  string // the target of /proc/PID/exe, "" when unreadable
	Argv []string
}

// hostProcs lists the host's processes whose command line the test user can read.
func hostProcs(t *testing.T) []hostProc {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("list processes: %v", err)
	}
	var out []hostProc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		// Gone already, or a kernel thread (empty command line).
		if err != nil || len(b) == 0 {
			continue
		}
		exe, _ := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		exe = strings.TrimSuffix(exe, " (deleted)")
		out = append(out, hostProc{PID: pid, Exe: exe, Argv: strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")})
	}
	return out
}

// kiteProcsOf lists the processes of kite's own binaries that work on the data dir (their command
// line names it): monitors, pod inits and image helpers.
func kiteProcsOf(t *testing.T, dataDir string) []hostProc {
	t.Helper()
	var out []hostProc
	for _, p := range hostProcs(t) {
		ours := false
		for _, name := range []string{"kite", "kite-stage1", "kite-image"} {
			if p.Exe == filepath.Join(binDir, name) {
				ours = true
			}
		}
		if ours && strings.Contains(strings.Join(p.Argv, " "), dataDir) {
			out = append(out, p)
		}
	}
	return out
}

// procsWithArgv lists the processes whose command line is exactly argv.
func procsWithArgv(t *testing.T, argv ...string) []hostProc {
	t.Helper()
	var out []hostProc
	for _, p := range hostProcs(t) {
		if strings.Join(p.Argv, "\x00") == strings.Join(argv, "\x00") {
			out = append(out, p)
		}
	}
	return out
}

// waitProcs polls until list returns nothing and fails the test if that takes longer than limit.
func waitProcs(t *testing.T, limit time.Duration, what string, list func() []hostProc) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		left := list()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still running after %s: %+v", what, limit, left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
