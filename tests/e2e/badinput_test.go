package e2e

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestBadImageLosesNothing runs images that cannot be fetched against a data dir that already
// holds a good image: each run must exit 125 with a message naming what was wrong, print nothing
// on stdout, and leave the data dir as it was (no new image, layer, record or pod).
func TestBadImageLosesNothing(t *testing.T) {
	dir := newDataDir(t)
	wantCode(t, runImage(t, dir, layoutRef("busybox"), "true"), 0, "the good image")

	inputs := newScratchDir(t, "inputs-")
	empty := filepath.Join(inputs, "empty-dir")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	regular := filepath.Join(inputs, "regular-file")
	notTar := filepath.Join(inputs, "not-a-tar.tar")
	for _, p := range []string{regular, notTar} {
		if err := os.WriteFile(p, []byte("this is not an image\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	archive := readFile(t, archivePath)
	truncated := filepath.Join(inputs, "truncated.tar")
	if err := os.WriteFile(truncated, archive[:len(archive)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(inputs, "does-not-exist")

	cases := []struct {
		name, ref, mention string
	}{
		{"empty directory", "oci:" + empty + ":busybox", empty},
		{"regular file as layout", "oci:" + regular + ":busybox", regular},
		{"missing tag", layoutRef("nosuchtag"), "nosuchtag"},
		{"truncated oci-archive", "oci-archive:" + truncated + ":busybox", truncated},
		{"oci-archive that is not a tar", "oci-archive:" + notTar + ":busybox", notTar},
		{"nonexistent layout", "oci:" + missing + ":busybox", missing},
		{"nonexistent oci-archive", "oci-archive:" + missing + ":busybox", missing},
		{"missing tag in oci-archive", archiveRef("nosuchtag"), "nosuchtag"},
		{"unknown transport", "nosuchtransport:" + layoutDir + ":busybox", "nosuchtransport"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := listing(t, dir)
			r := runImage(t, dir, c.ref, "true")
			wantCode(t, r, 125, "kite run "+c.ref)
			if !strings.Contains(r.Stderr, c.mention) {
				t.Errorf("stderr does not mention %s: %q", c.mention, r.Stderr)
			}
			if r.Stdout != "" {
				t.Errorf("stdout is the app's, but kite printed %q", r.Stdout)
			}
			compareListings(t, before, listing(t, dir))
		})
	}
	// The good image still runs.
	wantCode(t, runImage(t, dir, layoutRef("busybox"), "true"), 0, "the good image after the bad ones")
}

// listing describes every entry below root by type, permissions and (for files) size, except
// what lies inside the pod directories, which the pods own.
func listing(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	podsDir := filepath.Join(root, "pods")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(root, path)
		if err != nil {
			// A directory of another owner (e.g. a subordinate uid in the store) is listed as such.
			out[rel] = "unreadable"
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			out[rel] = "gone"
			return nil
		}
		desc := info.Mode().String()
		switch {
		case info.Mode().IsRegular():
			desc += fmt.Sprintf(" %d bytes", info.Size())
		case info.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(path)
			desc += " -> " + target
		}
		out[rel] = desc
		// pods/STATE/UUID: list the pod, not what it holds.
		if d.IsDir() && filepath.Dir(filepath.Dir(path)) == podsDir {
			return fs.SkipDir
		}
		return nil
	})
	if err != nil {
		t.Fatalf("list %s: %v", root, err)
	}
	return out
}

func compareListings(t *testing.T, before, after map[string]string) {
	t.Helper()
	if diffs := diffListings(before, after); len(diffs) > 0 {
		t.Errorf("the data dir changed:\n%s", strings.Join(diffs, "\n"))
	}
}

// diffListings describes, sorted, what is new, changed and gone in after.
func diffListings(before, after map[string]string) []string {
	var diffs []string
	for p, a := range after {
		if b, ok := before[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("new:     %s (%s)", p, a))
		} else if a != b {
			diffs = append(diffs, fmt.Sprintf("changed: %s (%s, was %s)", p, a, b))
		}
	}
	for p, b := range before {
		if _, ok := after[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("gone:    %s (%s)", p, b))
		}
	}
	slices.Sort(diffs)
	return diffs
}
