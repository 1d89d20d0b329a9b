package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// syscallIn runs `probe syscall NAME` in the busybox image with kite run flags and returns what
// the call returned inside: "ok" or an errno name.
func syscallIn(t *testing.T, dir, name string, flags ...string) string {
	t.Helper()
	args := append([]string{"run"}, flags...)
	r := kite(t, dir, append(args, layoutRef("busybox"), "--", "probe", "syscall", name)...)
	wantCode(t, r, 0, "probe syscall "+name)
	got, ok := strings.CutPrefix(strings.TrimSpace(r.Stdout), name+": ")
	if !ok {
		t.Fatalf("probe syscall %s printed %q", name, r.Stdout)
	}
	return got
}

// TestSeccomp checks, from inside the app, the filter each form of --seccomp gives: the mode
// /proc reports, and what a call the filter allows or denies returns. Without a filter, getppid
// and keyctl succeed and mount fails with ENOENT (see tests/probe/syscall.go).
func TestSeccomp(t *testing.T) {
	needSubIDs(t)
	dir := sharedDir(t, "busybox")
	for _, tc := range []struct {
		flags   []string
		mode    int
		results map[string]string
	}{
		// Docker's default profile: keyctl and mount are not allowed, and deny with EPERM.
		{nil, 2, map[string]string{"getppid": "ok", "keyctl": "EPERM", "mount": "EPERM"}},
		// With CAP_SYS_ADMIN the default profile allows mount.
		{[]string{"--cap-add", "sys_admin"}, 2, map[string]string{"keyctl": "EPERM", "mount": "ENOENT"}},
		{[]string{"--insecure-options=seccomp"}, 0, map[string]string{"getppid": "ok", "keyctl": "ok", "mount": "ENOENT"}},
		{[]string{"--seccomp", "mode=remove,errno=ENOSYS,getppid"}, 2, map[string]string{"getppid": "ENOSYS", "keyctl": "ok"}},
		{[]string{"--seccomp", "mode=retain,errno=EACCES,@kite/default-allow"}, 2, map[string]string{"getppid": "ok", "keyctl": "EACCES", "mount": "EACCES"}},
		{[]string{"--seccomp", "mode=retain,@docker/default-allow,keyctl"}, 2, map[string]string{"getppid": "ok", "keyctl": "ok", "mount": "EPERM"}},
		{[]string{"--seccomp", "mode=remove,errno=ENOSYS,@kite/default-deny"}, 2, map[string]string{"getppid": "ok", "keyctl": "ENOSYS", "mount": "ENOSYS"}},
		{[]string{"--seccomp", "mode=retain,@all"}, 2, map[string]string{"keyctl": "ok", "mount": "ENOENT"}},
		// Without no_new_privs an app that is not root must get its filter before setuid(2)
		// takes away the CAP_SYS_ADMIN that loading it needs.
		{[]string{"--user", "1000", "--no-new-privileges=false"}, 2, map[string]string{"getppid": "ok", "keyctl": "EPERM"}},
		{[]string{"--user", "1000"}, 2, map[string]string{"keyctl": "EPERM"}},
	} {
		t.Run(strings.Join(tc.flags, " "), func(t *testing.T) {
			rep := decodeInfo(t, runProbe(t, dir, nil, tc.flags...))
			if rep.Seccomp != tc.mode {
				t.Errorf("Seccomp = %d, want %d", rep.Seccomp, tc.mode)
			}
			for call, want := range tc.results {
				if got := syscallIn(t, dir, call, tc.flags...); got != want {
					t.Errorf("%s returned %s, want %s", call, got, want)
				}
			}
		})
	}
}

// TestSeccompRefused checks that a filter kite cannot build, or one that would keep the app from
// starting, fails before the pod exists, saying why.
func TestSeccompRefused(t *testing.T) {
	needSubIDs(t)
	dir := sharedDir(t, "busybox")
	for _, tc := range []struct {
		flags []string
		hint  string
	}{
		{[]string{"--seccomp", "mode=remove,ptarce"}, `unknown system call "ptarce"`},
		{[]string{"--seccomp", "mode=retain,@kite/nosuchgroup"}, "unknown group @kite/nosuchgroup"},
		{[]string{"--seccomp", "mode=retain,read,write"}, "deny execve"},
		{[]string{"--seccomp", "mode=remove,@all"}, "deny execve"},
		{[]string{"--seccomp", "retain,read"}, "mode=retain"},
		{[]string{"--seccomp", "mode=remove,errno=EWHAT,getpid"}, `unknown errno "EWHAT"`},
		{[]string{"--seccomp", "mode=remove,getpid", "--insecure-options=seccomp"}, "contradict"},
	} {
		t.Run(strings.Join(tc.flags, " "), func(t *testing.T) {
			before := len(podEntries(t, dir))
			r := runProbe(t, dir, nil, tc.flags...)
			wantCode(t, r, 125, "kite run "+strings.Join(tc.flags, " "))
			if !strings.Contains(r.Stderr, tc.hint) {
				t.Errorf("stderr does not say %q: %q", tc.hint, r.Stderr)
			}
			if after := len(podEntries(t, dir)); after != before {
				t.Errorf("pods before and after: %d, %d; a refused run must not make one", before, after)
			}
		})
	}
}

// TestSeccompCache checks that a profile is compiled once: pods with the same profile share one
// compiled filter, a new profile adds one.
func TestSeccompCache(t *testing.T) {
	needSubIDs(t)
	dir := newDataDir(t)
	filters := func() int {
		entries, err := os.ReadDir(filepath.Join(dir, "seccomp"))
		if err != nil {
			t.Fatalf("the compiled filters: %v", err)
		}
		return len(entries)
	}
	for i := 0; i < 2; i++ {
		wantCode(t, kite(t, dir, runArgs(layoutRef("busybox"), "/bin/true")...), 0, "kite run")
	}
	if n := filters(); n != 1 {
		t.Errorf("%d compiled filters after two pods with the default profile, want 1", n)
	}
	wantCode(t, kite(t, dir, "run", "--seccomp", "mode=remove,getppid", layoutRef("busybox"), "--", "/bin/true"), 0, "kite run --seccomp")
	if n := filters(); n != 2 {
		t.Errorf("%d compiled filters after a pod with another profile, want 2", n)
	}
}
