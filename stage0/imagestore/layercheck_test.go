package imagestore

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kite-runtime/kite/stage0/rootview"
)

type entry struct {
	name     string
	typ      byte
	linkname string
}

func tarOf(t *testing.T, entries ...entry) *tar.Reader {
	t.Helper()
	var buf bytes.Buffer
	w := tar.NewWriter(&buf)
	for _, e := range entries {
		if err := w.WriteHeader(&tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.linkname, Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return tar.NewReader(&buf)
}

func TestCheckEntries(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []entry
		wantErr string // "" when the layer is fine
	}{
		{"plain", []entry{{"bin/", tar.TypeDir, ""}, {"bin/sh", tar.TypeReg, ""}, {"sh", tar.TypeLink, "bin/sh"}, {"./etc/x", tar.TypeReg, ""}}, ""},
		{"dotdot that stays inside", []entry{{"bin/../etc/x", tar.TypeReg, ""}}, ""},
		{"same directory twice", []entry{{"etc/", tar.TypeDir, ""}, {"etc", tar.TypeDir, ""}}, ""},
		{"symlink to outside, never written through", []entry{{"link", tar.TypeSymlink, "/etc"}}, ""},
		{"absolute name", []entry{{"/etc/x", tar.TypeReg, ""}}, "absolute name"},
		{"climbing name", []entry{{"bin/../../x", tar.TypeReg, ""}}, "climbs out"},
		{"write through a symlink", []entry{{"link", tar.TypeSymlink, "/etc"}, {"link/passwd", tar.TypeReg, ""}}, `lies below "link"`},
		{"whiteout through a symlink", []entry{{"a/link", tar.TypeSymlink, "/x"}, {"a/link/.wh.victim", tar.TypeReg, ""}}, `lies below "a/link"`},
		{"hard link to an absolute path", []entry{{"h", tar.TypeLink, "/etc/shadow"}}, "absolute name"},
		{"hard link climbing out", []entry{{"h", tar.TypeLink, "../x"}}, "climbs out"},
		{"hard link through a symlink", []entry{{"link", tar.TypeSymlink, "/"}, {"h", tar.TypeLink, "link/etc/shadow"}}, `points below "link"`},
		{"file then symlink", []entry{{"x", tar.TypeReg, ""}, {"x", tar.TypeSymlink, "/"}}, "appears twice"},
	} {
		_, err := checkEntries(tarOf(t, tc.entries...))
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.wantErr)
		}
	}
}

// TestCheckAgainstLowerLayers checks a layer's directories against a lower layer holding a
// symlink: going through it is refused, replacing it with a directory is not.
func TestCheckAgainstLowerLayers(t *testing.T) {
	lower := t.TempDir()
	if err := os.Symlink("/outside", filepath.Join(lower, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(lower, "usr", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	below := rootview.View{lower}
	check := func(entries ...entry) error {
		dirs, err := checkEntries(tarOf(t, entries...))
		if err != nil {
			t.Fatal(err)
		}
		return dirs.checkAgainst(below)
	}
	if err := check(entry{"link/.wh.victim", tar.TypeReg, ""}); err == nil || !strings.Contains(err.Error(), `below "link"`) {
		t.Errorf("whiteout through a lower symlink: %v", err)
	}
	if err := check(entry{"usr/bin/tool", tar.TypeReg, ""}, entry{"new/dir/file", tar.TypeReg, ""}); err != nil {
		t.Errorf("ordinary entries: %v", err)
	}
	if err := check(entry{"link/", tar.TypeDir, ""}, entry{"link/file", tar.TypeReg, ""}); err != nil {
		t.Errorf("a directory replacing the lower symlink: %v", err)
	}
}
