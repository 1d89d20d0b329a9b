package e2e

import (
	"os"
	"strings"
	"testing"
)

// TestFallbackSingleMapping runs kite where newuidmap and newgidmap cannot be found: kite finds
// its own helpers next to itself, and the pod must still run, as root of a user namespace that
// maps only the caller's own ids, with a one-line warning that says how to fix the host
// (docs/architecture.md, "ID mappings").
func TestFallbackSingleMapping(t *testing.T) {
	needUnprivileged(t)
	// A fresh data dir: a store filled with subordinate ids cannot be used with a single mapping.
	dir := newDataDir(t)
	o := &options{env: []string{"PATH=/nonexistent"}}
	// Twice: the first run fills the store, the second finds the image stored; both must warn.
	for i, what := range []string{"first run", "second run"} {
		t.Run(what, func(t *testing.T) {
			r := kiteWith(t, dir, o, runArgs(layoutRef("multilayer"), "probe", "info")...)
			rep := decodeInfo(t, r)
			if rep.UID != 0 || rep.EUID != 0 {
				t.Errorf("uid/euid = %d/%d, want 0", rep.UID, rep.EUID)
			}
			for name, m := range map[string]struct {
				text string
				own  int
			}{"uid_map": {rep.UIDMap, os.Getuid()}, "gid_map": {rep.GIDMap, os.Getgid()}} {
				if got := parseIDMap(t, m.text); len(got) != 1 || got[0] != (idRange{0, uint64(m.own), 1}) {
					t.Errorf("%s = %q, want the single line \"0 %d 1\"", name, m.text, m.own)
				}
			}
			checkWarning(t, r.Stderr)
			if i == 0 && t.Failed() {
				t.FailNow()
			}
		})
	}
}

// checkWarning wants stderr to be exactly one line that tells how to add a subordinate range.
func checkWarning(t *testing.T, stderr string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	if stderr == "" || len(lines) != 1 {
		t.Errorf("stderr has %d lines, want one warning line: %q", len(lines), stderr)
		return
	}
	if !strings.Contains(stderr, "/etc/subuid") && !strings.Contains(stderr, "usermod") {
		t.Errorf("the warning does not say how to add a range (/etc/subuid or usermod): %q", stderr)
	}
	if !strings.Contains(strings.ToLower(stderr), "warning") {
		t.Errorf("stderr is not a warning: %q", stderr)
	}
}
