package pods

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kite-runtime/kite/stage0/datadir"
	"github.com/kite-runtime/kite/stage0/imageindex"
	"github.com/kite-runtime/kite/stage0/spec"
)

// BenchmarkCreate measures writing a pod directory, which is on the path of every `kite run`.
func BenchmarkCreate(b *testing.B) {
	root := b.TempDir()
	layer := filepath.Join(root, "layer")
	if err := os.MkdirAll(filepath.Join(layer, "etc"), 0o755); err != nil {
		b.Fatal(err)
	}
	os.WriteFile(filepath.Join(layer, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
	rec := &imageindex.Record{
		ID: "id", Name: "localhost/busybox:latest", Driver: "overlay", OverlayHome: root,
		ManifestDigest: "sha256:0000000000000000000000000000000000000000000000000000000000000000",
		Config:         imageindex.ImageConfig{Cmd: []string{"/bin/sh"}},
		Layers:         []imageindex.Layer{{ID: "l", Dir: layer, Link: "l/AAAA"}},
	}
	d := datadir.Dir{Root: filepath.Join(root, "data")}
	for b.Loop() {
		id, err := New()
		if err != nil {
			b.Fatal(err)
		}
		c, err := spec.Generate(rec, spec.Options{Hostname: "kite-" + ShortID(id), NoSeccomp: true})
		if err != nil {
			b.Fatal(err)
		}
		p, err := Create(d, id, Contents{Apps: []App{{Name: "busybox", ImageRef: "oci:/x:busybox", Image: rec, Spec: c.Spec}}})
		if err != nil {
			b.Fatal(err)
		}
		p.Close()
	}
}
