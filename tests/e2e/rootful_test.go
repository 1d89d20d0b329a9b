package e2e

import (
	"strings"
	"testing"
)

// TestRootful runs pods as root: kite still isolates them in a user namespace, with the identity
// mapping of the whole id range, so the image's owners are the host's.
func TestRootful(t *testing.T) {
	needRoot(t)
	dir := newDataDir(t)

	t.Run("id", func(t *testing.T) {
		r := runImage(t, dir, layoutRef("busybox"), "id")
		wantCode(t, r, 0, "id")
		if !strings.HasPrefix(r.Stdout, "uid=0(root) gid=0(root)") {
			t.Fatalf("id printed %q, want uid=0(root) gid=0(root)", r.Stdout)
		}
	})
	t.Run("id maps", func(t *testing.T) {
		rep := probeInfo(t, dir, layoutRef("busybox"))
		for name, text := range map[string]string{"uid_map": rep.UIDMap, "gid_map": rep.GIDMap} {
			if m := parseIDMap(t, text); len(m) != 1 || m[0] != (idRange{0, 0, 4294967295}) {
				t.Errorf("%s = %q, want \"0 0 4294967295\"", name, text)
			}
		}
		if rep.UID != 0 || rep.EUID != 0 {
			t.Errorf("uid/euid = %d/%d, want 0", rep.UID, rep.EUID)
		}
	})
	t.Run("layers", func(t *testing.T) { checkLayers(t, dir) })
	t.Run("user", func(t *testing.T) { checkUser(t, decodeInfo(t, runImage(t, dir, layoutRef("user")))) })
}
