package pods

// Fuzz targets for pod names (--name, app names) and the names of apps made from image names.
// `make unit` runs their seeds; `make fuzz` fuzzes each for $(FUZZTIME).

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/kite-runtime/kite/stage0/imageindex"
)

// FuzzValidName checks pod and app names: an accepted name is one path component (never . or
// ..), of at most 128 bytes, and never a UUID, which names pods in the same places.
func FuzzValidName(f *testing.F) {
	for _, s := range []string{"web", "", ".", "..", "a/b", "-a", "a-", "a..b", "0123abcd-0000-4000-8000-000000000000", strings.Repeat("a", 129), "é", "a\x00", "A_b.c-d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if ValidName(name) != nil {
			return
		}
		if filepath.Base(name) != name || name == "." || name == ".." || len(name) > 128 || validUUID(name) || strings.ContainsAny(name, "/\x00\n") {
			t.Fatalf("ValidName accepted %q", name)
		}
	})
}

// FuzzAppName checks the default app name made from a stored image's name (a record of the
// data directory): never empty, never a path, and never . or .., so that AppDir(name) is a
// directory of its own inside the pod's apps directory.
func FuzzAppName(f *testing.F) {
	for _, s := range []string{"docker.io/library/busybox:latest", "localhost/layout:tag", "", "app", "a/b/c@sha256:" + strings.Repeat("a", 64), "x/..:tag", "x/", ":", "a@b:c", "x/.:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got := AppName(&imageindex.Record{Name: name})
		if got == "" || strings.Contains(got, "/") {
			t.Fatalf("AppName(%q) = %q", name, got)
		}
		if got == "." || got == ".." {
			t.Fatalf("AppName(%q) = %q, which names a directory above the app's", name, got)
		}
	})
}
