package e2e

import (
	"os"
	"path/filepath"
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
	// The host's network: pasta is not in that PATH either.
	o := &options{env: []string{"PATH=/nonexistent"}}
	// Twice: the first run fills the store, the second finds the image stored; both must warn.
	for i, what := range []string{"first run", "second run"} {
		t.Run(what, func(t *testing.T) {
			r := kiteWith(t, dir, o, "run", "--net=host", layoutRef("multilayer"), "--", "probe", "info")
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

// TestIDMapHelperFails runs a stored image where newuidmap and newgidmap exist but refuse (as they
// do when /etc/subuid changed): the pod cannot start, and kite must say why and exit 125 rather
// than wait for a pod init that waits for its maps.
func TestIDMapHelperFails(t *testing.T) {
	needUnprivileged(t)
	needSubIDs(t)
	dir := sharedDir(t, "busybox")
	fake := newScratchDir(t, "fakebin-")
	for _, tool := range []string{"newuidmap", "newgidmap"} {
		script := "#!/bin/sh\necho \"" + tool + ": write to uid_map failed: Operation not permitted\" >&2\nexit 1\n"
		if err := os.WriteFile(filepath.Join(fake, tool), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	o := &options{env: []string{"PATH=" + fake + ":/usr/bin:/bin"}}
	r := kiteWith(t, dir, o, runArgs(layoutRef("busybox"), "true")...)
	wantCode(t, r, 125, "id map helpers failing")
	if !strings.Contains(r.Stderr, "newuidmap") && !strings.Contains(r.Stderr, "newgidmap") {
		t.Errorf("stderr does not name the failing helper: %q", r.Stderr)
	}
	if !strings.Contains(r.Stderr, "/etc/subuid") {
		t.Errorf("stderr does not say what to check: %q", r.Stderr)
	}
}
