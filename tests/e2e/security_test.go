package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// dockerDefaultCaps is the OCI/Docker default capability set as /proc/self/status prints it.
const dockerDefaultCaps = "00000000a80425fb"

// TestCapabilities checks the five capability sets the app sees for each capability flag, for a
// root and a non-root app, and no_new_privs.
func TestCapabilities(t *testing.T) {
	needSubIDs(t)
	lastCap, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		needHost(t, "read the kernel's last capability: %v", err)
	}
	last, _ := strconv.Atoi(strings.TrimSpace(string(lastCap)))
	all := fmt.Sprintf("%016x", uint64(1)<<(last+1)-1)
	const none = "0000000000000000"
	dir := sharedDir(t, "busybox")
	for _, tc := range []struct {
		flags         []string
		bnd, prm, eff string
		noNewPrivs    int
	}{
		{nil, dockerDefaultCaps, dockerDefaultCaps, dockerDefaultCaps, 1},
		{[]string{"--user", "1000"}, dockerDefaultCaps, none, none, 1},
		{[]string{"--cap-drop", "all"}, none, none, none, 1},
		// + CAP_SYS_ADMIN (21), - CAP_CHOWN (0) and CAP_KILL (5)
		{[]string{"--caps-retain", "sys_admin", "--caps-remove", "CAP_CHOWN,kill"}, "00000000a82425da", "00000000a82425da", "00000000a82425da", 1},
		{[]string{"--cap-add", "all", "--user", "1000"}, all, none, none, 1},
		{[]string{"--insecure-options=capabilities"}, all, all, all, 1},
		{[]string{"--no-new-privileges=false"}, dockerDefaultCaps, dockerDefaultCaps, dockerDefaultCaps, 0},
	} {
		t.Run(strings.Join(tc.flags, " "), func(t *testing.T) {
			rep := decodeInfo(t, runProbe(t, dir, nil, tc.flags...))
			got := []string{rep.CapBnd, rep.CapPrm, rep.CapEff, rep.CapInh, rep.CapAmb}
			want := []string{tc.bnd, tc.prm, tc.eff, none, none}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("bnd prm eff inh amb = %v, want %v", got, want)
			}
			if rep.NoNewPrivs != tc.noNewPrivs {
				t.Errorf("NoNewPrivs = %d, want %d", rep.NoNewPrivs, tc.noNewPrivs)
			}
		})
	}
	r := runProbe(t, dir, nil, "--cap-add", "nosuchcap")
	wantCode(t, r, 125, "an unknown capability")
	if !strings.Contains(r.Stderr, "nosuchcap") {
		t.Errorf("stderr does not name it: %q", r.Stderr)
	}
}

// TestMaskedPaths checks the kernel paths hidden and made read-only in the pod, and that
// --insecure-options=paths leaves them alone.
func TestMaskedPaths(t *testing.T) {
	dir := sharedDir(t, "busybox")
	rep := decodeInfo(t, runProbe(t, dir, nil))
	for _, p := range []string{"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus"} {
		if m, ok := rep.MountAt(p); ok && !hasOption(m.Options, "ro") {
			t.Errorf("%s is mounted %q, want read-only", p, m.Options)
		} else if !ok {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("%s exists but has no read-only mount in the pod", p)
			}
		}
	}
	if m, ok := rep.MountAt("/sys/firmware"); !ok || m.FSType != "tmpfs" || !hasOption(m.Options, "ro") {
		t.Errorf("/sys/firmware: %+v, want an empty read-only tmpfs", m)
	}
	for _, p := range []string{"/proc/keys", "/proc/timer_list"} {
		if _, err := os.Stat(p); err != nil {
			continue // the host kernel has none to mask
		}
		m, ok := rep.MountAt(p)
		if !ok || m.Root != "/null" {
			t.Errorf("%s: %+v, want /dev/null bound over it", p, m)
		}
	}
	r := kite(t, dir, "run", layoutRef("busybox"), "--", "sh", "-c", "cat /proc/keys /proc/timer_list | wc -c; echo x > /proc/sysrq-trigger && echo sysrq writable")
	if r.Stdout != "0\n" {
		t.Errorf("masked files read %q, want nothing and no write to sysrq-trigger", r.Stdout)
	}
	open := decodeInfo(t, runProbe(t, dir, nil, "--insecure-options=paths"))
	if m, ok := open.MountAt("/sys/firmware"); ok && m.FSType == "tmpfs" {
		t.Errorf("--insecure-options=paths still masks /sys/firmware: %+v", m)
	}
	if _, ok := open.MountAt("/proc/sys"); ok {
		t.Errorf("--insecure-options=paths still mounts /proc/sys read-only")
	}
}

func hasOption(options, want string) bool {
	for _, o := range strings.Split(options, ",") {
		if o == want {
			return true
		}
	}
	return false
}

// TestStdin gives the app /dev/null as stdin unless -i is given; with it, the caller's stdin
// reaches the app and its end ends the app's input.
func TestStdin(t *testing.T) {
	dir := sharedDir(t, "busybox")
	input := filepath.Join(newScratchDir(t, "stdin-"), "input")
	writeFile(t, input, "typed by the caller\n")
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{nil, "/dev/null\n"},
		{[]string{"-i"}, "typed by the caller\n"},
		{[]string{"--interactive"}, "typed by the caller\n"},
	} {
		f, err := os.Open(input)
		if err != nil {
			t.Fatal(err)
		}
		args := append(append([]string{"run"}, tc.flags...), layoutRef("busybox"), "--", "sh", "-c", `if [ -c /proc/self/fd/0 ]; then readlink /proc/self/fd/0; else cat; fi`)
		r := kiteWith(t, dir, &options{stdin: f}, args...)
		f.Close()
		if r.Code != 0 || r.Stdout != tc.want {
			t.Errorf("%v: %s, want stdout %q", tc.flags, r, tc.want)
		}
	}
}

// TestResourceLimits sets rlimits and oom_score_adj and reads them back in the app; a hard limit
// above the caller's and a lowered oom_score_adj fail with 125.
func TestResourceLimits(t *testing.T) {
	dir := sharedDir(t, "busybox")
	r := kite(t, dir, "run", "--ulimit", "nofile=100:200", "--ulimit", "core=0", "--oom-score-adj", "500",
		layoutRef("busybox"), "--", "sh", "-c", "ulimit -Sn; ulimit -Hn; ulimit -c; cat /proc/self/oom_score_adj")
	if r.Code != 0 || r.Stdout != "100\n200\n0\n500\n" {
		t.Errorf("limits seen by the app: %s", r)
	}
	var hard unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &hard); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		flags []string
		hint  string
	}{
		{[]string{"--ulimit", fmt.Sprintf("nofile=10:%d", hard.Max+1)}, "cannot be raised"},
		{[]string{"--ulimit", "nofiles=1"}, "NAME=SOFT[:HARD]"},
		{[]string{"--ulimit", "nofile=10:5"}, "soft limit is above"},
		{[]string{"--oom-score-adj", "2000"}, "between -1000 and 1000"},
	} {
		r := kite(t, dir, append(append([]string{"run"}, tc.flags...), layoutRef("busybox"), "--", "true")...)
		wantCode(t, r, 125, strings.Join(tc.flags, " "))
		if !strings.Contains(r.Stderr, tc.hint) {
			t.Errorf("%v: stderr does not mention %q: %q", tc.flags, tc.hint, r.Stderr)
		}
	}
}

// TestPreserveFDs passes two of the caller's descriptors to the app with --preserve-fds: the app
// holds exactly 0 to 4, the passed ones at the same numbers; a gap in them fails with 125.
func TestPreserveFDs(t *testing.T) {
	dir := sharedDir(t, "busybox")
	file := filepath.Join(newScratchDir(t, "fds-"), "passed")
	writeFile(t, file, "passed\n")
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	o := &options{extraFiles: []*os.File{devNull, f}}
	rep := decodeInfo(t, runProbe(t, dir, o, "--preserve-fds", "2"))
	got := map[int]string{}
	for _, fd := range rep.FDs {
		got[fd.FD] = fd.Target
	}
	if got[3] != os.DevNull || got[4] != file || len(got) != 5 {
		t.Errorf("the app holds %v, want 0 to 4 with 3 %s and 4 %s", got, os.DevNull, file)
	}
	r := kiteWith(t, dir, &options{extraFiles: []*os.File{devNull}}, "run", "--preserve-fds", "2", layoutRef("busybox"), "--", "true")
	wantCode(t, r, 125, "--preserve-fds past the caller's descriptors")
	if !strings.Contains(r.Stderr, "descriptor 4 is not open") {
		t.Errorf("stderr: %q", r.Stderr)
	}
}

// TestResourceLimitsRefused checks that --memory, --cpu and --pids-limit are never silently
// dropped: kite can apply them only in a delegated cgroup v2 it is alone in, which a child of the
// test, sharing the test's cgroup, never is. kite says so and exits 125 before making a pod.
func TestResourceLimitsRefused(t *testing.T) {
	dir := sharedDir(t, "busybox")
	for _, tc := range []struct {
		flags []string
		hint  string
	}{
		{[]string{"--memory", "64m"}, "--memory cannot be applied on this host"},
		{[]string{"--cpu", "500m"}, "--cpu cannot be applied on this host"},
		{[]string{"--pids-limit", "10", "--memory", "1g"}, "--memory, --pids-limit cannot be applied on this host"},
		{[]string{"--memory", "64x"}, "give a size"},
		{[]string{"--pids-limit", "0"}, "at least 1"},
	} {
		before := len(podEntries(t, dir))
		r := kite(t, dir, append(append([]string{"run"}, tc.flags...), layoutRef("busybox"), "--", "true")...)
		wantCode(t, r, 125, strings.Join(tc.flags, " "))
		if !strings.Contains(r.Stderr, tc.hint) {
			t.Errorf("%v: stderr does not say %q: %q", tc.flags, tc.hint, r.Stderr)
		}
		if after := len(podEntries(t, dir)); after != before {
			t.Errorf("%v: pods before and after: %d, %d", tc.flags, before, after)
		}
	}
}
