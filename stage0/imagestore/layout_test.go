package imagestore

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/kite-runtime/kite/stage0/imageindex"
	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/types"
)

// tarEntry is one file of a test layer.
type tarEntry struct {
	name     string
	typ      byte
	mode     int64
	uid, gid int
	body     []byte
	link     string
}

// testLayout is an OCI layout with:
//   - "tag": one image, two layers: the first has /bin/busybox (when the host has one), a file
//     owned by uid/gid 1000 and a directory /data/dir with old-file; the second makes /data/dir
//     opaque (.wh..wh..opq) with new-file in it and deletes /etc/removed (.wh.removed); variant
//     goes into /etc/variant and /data/dir/new-file, to make layouts with different layers;
//   - "multi": an index of that image for the host platform and a copy claiming another one.
func writeTestLayout(dir, variant string) error {
	busybox, _ := os.ReadFile("/bin/busybox")
	layer1 := []tarEntry{
		{name: "bin/", typ: tar.TypeDir, mode: 0o755},
		{name: "etc/", typ: tar.TypeDir, mode: 0o755},
		{name: "etc/passwd", typ: tar.TypeReg, mode: 0o644, body: []byte("root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n")},
		{name: "etc/removed", typ: tar.TypeReg, mode: 0o644, body: []byte("gone in layer 2\n")},
		{name: "etc/variant", typ: tar.TypeReg, mode: 0o644, body: []byte(variant)},
		{name: "home/", typ: tar.TypeDir, mode: 0o755},
		{name: "home/user/", typ: tar.TypeDir, mode: 0o750, uid: 1000, gid: 1000},
		{name: "home/user/owned", typ: tar.TypeReg, mode: 0o640, uid: 1000, gid: 1000, body: []byte("owned by 1000\n")},
		{name: "data/", typ: tar.TypeDir, mode: 0o755},
		{name: "data/dir/", typ: tar.TypeDir, mode: 0o755},
		{name: "data/dir/old-file", typ: tar.TypeReg, mode: 0o644, body: []byte("hidden by the opaque dir\n")},
	}
	if busybox != nil {
		layer1 = append(layer1,
			tarEntry{name: "bin/busybox", typ: tar.TypeReg, mode: 0o755, body: busybox},
			tarEntry{name: "bin/sh", typ: tar.TypeSymlink, link: "busybox"})
	}
	layer2 := []tarEntry{
		{name: "data/", typ: tar.TypeDir, mode: 0o755},
		{name: "data/dir/", typ: tar.TypeDir, mode: 0o755},
		{name: "data/dir/.wh..wh..opq", typ: tar.TypeReg, mode: 0o644},
		{name: "data/dir/new-file", typ: tar.TypeReg, mode: 0o644, body: []byte("new " + variant + "\n")},
		{name: "etc/", typ: tar.TypeDir, mode: 0o755},
		{name: "etc/.wh.removed", typ: tar.TypeReg, mode: 0o644},
	}
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return err
	}
	blob := func(mediaType string, data []byte) (ocispec.Descriptor, error) {
		d := digest.FromBytes(data)
		err := os.WriteFile(filepath.Join(dir, "blobs", "sha256", d.Encoded()), data, 0o644)
		return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}, err
	}
	jsonBlob := func(mediaType string, v any) (ocispec.Descriptor, error) {
		data, err := json.Marshal(v)
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		return blob(mediaType, data)
	}
	var layers []ocispec.Descriptor
	var diffIDs []digest.Digest
	for _, entries := range [][]tarEntry{layer1, layer2} {
		var raw bytes.Buffer
		tw := tar.NewWriter(&raw)
		for _, e := range entries {
			hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid, Size: int64(len(e.body)), Linkname: e.link, ModTime: time.Unix(1700000000, 0), Format: tar.FormatPAX}
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if _, err := tw.Write(e.body); err != nil {
				return err
			}
		}
		if err := tw.Close(); err != nil {
			return err
		}
		diffIDs = append(diffIDs, digest.FromBytes(raw.Bytes()))
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(raw.Bytes())
		zw.Close()
		d, err := blob(ocispec.MediaTypeImageLayerGzip, gz.Bytes())
		if err != nil {
			return err
		}
		layers = append(layers, d)
	}
	image := func(arch string) (ocispec.Descriptor, error) {
		config, err := jsonBlob(ocispec.MediaTypeImageConfig, ocispec.Image{
			Platform: ocispec.Platform{OS: "linux", Architecture: arch},
			Config: ocispec.ImageConfig{
				User:       "1000:1000",
				Env:        []string{"PATH=/bin", "KITE_TEST=1"},
				Entrypoint: []string{"/bin/sh", "-c"},
				Cmd:        []string{"echo hello"},
				WorkingDir: "/home/user",
			},
			RootFS: ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
		})
		if err != nil {
			return config, err
		}
		d, err := jsonBlob(ocispec.MediaTypeImageManifest, ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: ocispec.MediaTypeImageManifest,
			Config:    config,
			Layers:    layers,
		})
		d.Platform = &ocispec.Platform{OS: "linux", Architecture: arch}
		return d, err
	}
	host, err := image(runtime.GOARCH)
	if err != nil {
		return err
	}
	otherArch := "arm64"
	if runtime.GOARCH == otherArch {
		otherArch = "amd64"
	}
	other, err := image(otherArch)
	if err != nil {
		return err
	}
	multi, err := jsonBlob(ocispec.MediaTypeImageIndex, ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{other, host},
	})
	if err != nil {
		return err
	}
	host.Platform = nil
	host.Annotations = map[string]string{ocispec.AnnotationRefName: "tag"}
	multi.Annotations = map[string]string{ocispec.AnnotationRefName: "multi"}
	index, err := json.Marshal(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{host, multi},
	})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, ocispec.ImageIndexFile), index, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ocispec.ImageLayoutFile), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}

// TestWriteLayout writes the test layout to $KITE_TEST_LAYOUT (variant $KITE_TEST_LAYOUT_VARIANT),
// for exercising the built kite-image by hand, and checks that the record key kite-image computes for it is the one kite finds
// without the image libraries.
func TestWriteLayout(t *testing.T) {
	dir := os.Getenv("KITE_TEST_LAYOUT")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := writeTestLayout(dir, os.Getenv("KITE_TEST_LAYOUT_VARIANT")); err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"tag", "multi"} {
		imageRef := "oci:" + dir + ":" + tag
		want, ok := imageindex.ManifestDigestOfLayout(imageRef)
		if !ok {
			t.Fatalf("ManifestDigestOfLayout(%s) found nothing", imageRef)
		}
		ref, err := ParseReference(imageRef)
		if err != nil {
			t.Fatal(err)
		}
		src, err := ref.NewImageSource(context.Background(), &types.SystemContext{})
		if err != nil {
			t.Fatal(err)
		}
		m, _, err := src.GetManifest(context.Background(), nil)
		src.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := digest.FromBytes(m).String(); got != want {
			t.Errorf("%s: manifest digest %s, ManifestDigestOfLayout %s", imageRef, got, want)
		}
	}
}
