package rootview

import (
	"os"
	"path/filepath"
	"testing"
)

// TestLayerView resolves paths in layers built on disk: symlinks resolve inside the image's root
// (never on the host), whiteouts and non-directories in upper layers hide the lower layers.
func TestView(t *testing.T) {
	tmp := t.TempDir()
	host := filepath.Join(tmp, "host")
	upper, lower := filepath.Join(tmp, "upper"), filepath.Join(tmp, "lower")
	write := func(p, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(p, target string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(host, "passwd"), "host\n")
	write(filepath.Join(lower, "real", "passwd"), "lower real\n")
	write(filepath.Join(lower, "gone", "file"), "hidden by a whiteout\n")
	write(filepath.Join(lower, "replaced", "file"), "hidden by a file\n")
	write(filepath.Join(lower, "a", "c", "file"), "through a relative link\n")
	write(filepath.Join(upper, ".wh.gone"), "")
	write(filepath.Join(upper, "replaced"), "a file over a directory\n")
	// An absolute target names the image's root: /real, not the host's directory.
	link(filepath.Join(upper, "etc"), "/real")
	link(filepath.Join(upper, "escape"), host)
	link(filepath.Join(upper, "climb"), "../../../../../../real")
	link(filepath.Join(upper, "a", "b"), "../a/c")
	link(filepath.Join(upper, "loop"), "loop")

	view := View{upper, lower}
	for _, tc := range []struct{ name, want string }{
		{"etc/passwd", "lower real\n"},
		{"climb/passwd", "lower real\n"},
		{"a/b/file", "through a relative link\n"},
		{"escape/passwd", ""},
		{"gone/file", ""},
		{"replaced/file", ""},
		{"loop/x", ""},
	} {
		f, err := view.Open(tc.name)
		got := ""
		if err == nil {
			data, _ := os.ReadFile(f.Name())
			f.Close()
			got = string(data)
		}
		if got != tc.want {
			t.Errorf("open %s = %q (%v), want %q", tc.name, got, err, tc.want)
		}
	}
}
