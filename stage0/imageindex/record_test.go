package imageindex

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

func TestSaveLookup(t *testing.T) {
	dir := t.TempDir()
	layerDir := t.TempDir()
	d := digest.FromString("manifest").String()
	rec := &Record{ID: "abc", ManifestDigest: d, Driver: "overlay", Layers: []Layer{{ID: "l1", Dir: layerDir, Link: "l/X"}}}
	if err := Save(dir, rec); err != nil {
		t.Fatal(err)
	}
	got, err := Lookup(dir, d)
	if err != nil || got.ID != "abc" || got.Layers[0].Link != "l/X" {
		t.Fatalf("Lookup = %+v, %v", got, err)
	}
	if _, err := Lookup(dir, digest.FromString("other").String()); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lookup of an unknown digest = %v, want ErrNotFound", err)
	}
	// A record whose layers were removed from the store is not usable.
	os.RemoveAll(layerDir)
	if _, err := Lookup(dir, d); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lookup with a missing layer = %v, want ErrNotFound", err)
	}
	if _, err := Lookup(dir, "sha256:zz"); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("Lookup of an invalid digest = %v, want a validation error", err)
	}
}

func TestManifestDigestOfLayout(t *testing.T) {
	dir := t.TempDir()
	a, b := digest.FromString("a").String(), digest.FromString("b").String()
	index := `{"schemaVersion":2,"manifests":[
		{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + a + `","size":1,"annotations":{"org.opencontainers.image.ref.name":"one"}},
		{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + b + `","size":1,"annotations":{"org.opencontainers.image.ref.name":"two"}}]}`
	if err := os.WriteFile(filepath.Join(dir, "index.json"), []byte(index), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ref    string
		want   string
		wantOK bool
	}{
		{"oci:" + dir + ":one", a, true},
		{"oci:" + dir + ":two", b, true},
		{"oci:" + dir + ":three", "", false},
		{"oci:" + dir, "", false}, // two images and no tag: ambiguous
		{"oci:" + dir + ":@0", "", false},
		{"oci-archive:" + dir + ":one", "", false},
		{"oci:/nonexistent:one", "", false},
		{"busybox", "", false},
	}
	for _, tt := range tests {
		got, ok := ManifestDigestOfLayout(tt.ref)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("ManifestDigestOfLayout(%q) = %q, %v; want %q, %v", tt.ref, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestValidDigest(t *testing.T) {
	good := digest.FromString("x").String()
	for d, want := range map[string]bool{
		good:                           true,
		"sha512:" + good[7:]:           false,
		"sha256:" + good[8:]:           false,
		"sha256:" + good[7:70] + "A":   false,
		"sha256:" + good[7:] + "0":     false,
		"":                             false,
		"sha256:../../../../etc/passw": false,
	} {
		if got := ValidDigest(d); got != want {
			t.Errorf("ValidDigest(%q) = %v, want %v", d, got, want)
		}
	}
}
