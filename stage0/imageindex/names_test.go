package imageindex

import (
	"errors"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

// TestNames saves names for two records, moves one name, and deletes a record with its names.
func TestNames(t *testing.T) {
	dir := t.TempDir()
	a, b := digest.FromString("a").String(), digest.FromString("b").String()
	for _, r := range []*Record{{ID: "ida", ManifestDigest: a}, {ID: "idb", ManifestDigest: b}} {
		if err := Save(dir, r); err != nil {
			t.Fatal(err)
		}
	}
	const long = "registry.example:5000/a/very/long/repository/name/that/goes/on/and/on/and/on/and/on/and/on/and/on/and/on/and/on/and/on/and/on/and/on/and/on/and/on/and/on/and/on/and/on/and/on/and/on/and/on/and/on/and/on/and/on/and/on:" +
		"a-tag-that-is-long-too-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789"
	for name, d := range map[string]string{"docker.io/library/busybox:latest": a, "docker://busybox": a, long: b} {
		if err := SaveName(dir, name, d); err != nil {
			t.Fatalf("SaveName %s: %v", name, err)
		}
	}
	lookup := func(name string) string {
		t.Helper()
		r, err := LookupName(dir, name)
		if errors.Is(err, ErrNotFound) {
			return ""
		}
		if err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	if got := lookup("docker://busybox"); got != "ida" {
		t.Errorf("docker://busybox names %q, want ida", got)
	}
	if got := lookup(long); got != "idb" {
		t.Errorf("a name longer than a file name names %q, want idb", got)
	}
	if got := lookup("docker://other"); got != "" {
		t.Errorf("an unknown name names %q", got)
	}
	// A name is on one image at a time.
	if err := SaveName(dir, "docker://busybox", b); err != nil {
		t.Fatal(err)
	}
	if got := lookup("docker://busybox"); got != "idb" {
		t.Errorf("after the move docker://busybox names %q, want idb", got)
	}
	if err := Delete(dir, b); err != nil {
		t.Fatal(err)
	}
	if lookup("docker://busybox") != "" || lookup(long) != "" || lookup("docker.io/library/busybox:latest") != "ida" {
		t.Errorf("Delete of b left names pointing at it, or removed a's")
	}
	all, err := All(dir)
	if err != nil || len(all) != 1 || all[0].ID != "ida" || all[0].LastUsed.IsZero() {
		t.Errorf("All = %+v, %v; want the record of a", all, err)
	}
}
