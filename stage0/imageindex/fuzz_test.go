package imageindex

// Fuzz targets for what kite reads to find a stored image without the image libraries: an OCI
// layout's index.json (ManifestDigestOfLayout), image records and name entries. `make unit`
// runs their seeds; `make fuzz` fuzzes each for $(FUZZTIME).

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kite-runtime/kite/pkg/poddir"
)

// FuzzManifestDigestOfLayout checks the digest kite finds in a layout's index.json (the user's
// file, any content) for oci:DIR[:NAME]: when it answers, the answer is a valid digest, and the
// only manifest of the index with that name (any manifest without a name).
func FuzzManifestDigestOfLayout(f *testing.F) {
	a, b := "sha256:"+strings.Repeat("a", 64), "sha256:"+strings.Repeat("b", 64)
	index := `{"schemaVersion":2,"manifests":[{"digest":"` + a + `","size":1,"annotations":{"org.opencontainers.image.ref.name":"one"}},{"digest":"` + b + `","size":1,"annotations":{"org.opencontainers.image.ref.name":"two"}}]}`
	for _, name := range []string{"one", "two", "three", "", "@0", "one:two"} {
		f.Add([]byte(index), name)
	}
	f.Add([]byte(`{"manifests":[{"digest":"`+a+`"}]}`), "")
	f.Add([]byte(`{"manifests":[{"digest":"sha256:../../x"}]}`), "")
	f.Add([]byte(`{"manifests":[{"digest":"`+a+`","annotations":{"org.opencontainers.image.ref.name":"x"}},{"digest":"`+a+`","annotations":{"org.opencontainers.image.ref.name":"x"}}]}`), "x")
	f.Add([]byte(`{"manifests":null}`), "")
	f.Add([]byte(`{"manifests":[{"digest":1}]}`), "")
	f.Fuzz(func(t *testing.T, index []byte, name string) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "index.json"), index, 0o644); err != nil {
			t.Fatal(err)
		}
		ref := "oci:" + dir
		if name != "" {
			ref += ":" + name
		}
		d, ok := ManifestDigestOfLayout(ref)
		if !ok {
			if d != "" {
				t.Fatalf("ManifestDigestOfLayout(%q) = %q, false", ref, d)
			}
			return
		}
		if !ValidDigest(d) || strings.HasPrefix(name, "@") {
			t.Fatalf("ManifestDigestOfLayout(%q) = %q with index %q", ref, d, index)
		}
		// Read as image-spec's index (JSON's rules: names match case-insensitively, the last
		// of a name given twice wins), keeping only what names an image.
		var spec struct {
			Manifests []struct {
				Digest      string            `json:"digest"`
				Annotations map[string]string `json:"annotations"`
			} `json:"manifests"`
		}
		if err := json.Unmarshal(index, &spec); err != nil {
			t.Fatalf("ManifestDigestOfLayout(%q) = %q from an index JSON refuses: %v", ref, d, err)
		}
		matches := 0
		for _, m := range spec.Manifests {
			if name == "" || m.Annotations["org.opencontainers.image.ref.name"] == name {
				matches++
				if m.Digest != d {
					t.Fatalf("ManifestDigestOfLayout(%q) = %q, but a matching manifest is %q (index %q)", ref, d, m.Digest, index)
				}
			}
		}
		if matches != 1 {
			t.Fatalf("ManifestDigestOfLayout(%q) = %q from %d matching manifests (index %q)", ref, d, matches, index)
		}
	})
}

// FuzzLookup checks reading an image record and a name entry (files of the data directory): no
// panic, a record only of the current schema, and records and names only directly inside the
// images directory, whatever the digest or name.
func FuzzLookup(f *testing.F) {
	d := "sha256:" + strings.Repeat("c", 64)
	f.Add([]byte(`{"schemaVersion":1,"id":"x","name":"n","manifestDigest":"`+d+`","config":{"User":"u","ExposedPorts":{"80/tcp":{}}},"layers":[],"uidMap":[{"containerID":0,"hostID":1,"size":1}]}`), d, "n")
	f.Add([]byte(`{"schemaVersion":2}`), d, "")
	f.Add([]byte(`{"schemaVersion":1,"layers":[{"dir":"/nonexistent"}]}`), d, "../../x")
	f.Add([]byte(`{"schemaVersion":1}`), "sha256:../../../../etc/passw", "n")
	f.Add([]byte(`[`), d, "a/b")
	f.Fuzz(func(t *testing.T, record []byte, digest, name string) {
		dir := t.TempDir()
		p, err := recordPath(dir, digest)
		if err != nil {
			if ValidDigest(digest) {
				t.Fatalf("recordPath refused the valid digest %q", digest)
			}
			if _, err := Lookup(dir, digest); err == nil {
				t.Fatalf("Lookup accepted the invalid digest %q", digest)
			}
			return
		}
		if filepath.Dir(p) != dir {
			t.Fatalf("the record of %q is %s, outside %s", digest, p, dir)
		}
		if np := namePath(dir, name); filepath.Dir(np) != filepath.Join(dir, namesDir) {
			t.Fatalf("the name %q is %s, outside the names directory", name, np)
		}
		if err := os.WriteFile(p, record, 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := Lookup(dir, digest)
		if err != nil {
			return
		}
		if r.SchemaVersion != poddir.SchemaVersion {
			t.Fatalf("Lookup(%q) = a record of schema %d", record, r.SchemaVersion)
		}
		if err := SaveName(dir, name, digest); err != nil {
			if !utf8.ValidString(name) {
				return
			}
			t.Fatal(err)
		}
		if r2, err := LookupName(dir, name); err != nil || r2.ManifestDigest != r.ManifestDigest || r2.ID != r.ID {
			t.Fatalf("LookupName(%q) = %+v, %v; want the record %+v", name, r2, err, r)
		}
	})
}
