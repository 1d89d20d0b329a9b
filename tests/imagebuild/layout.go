package imagebuild

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/klauspost/compress/zstd"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	// go-digest only computes digests with hashes its caller has linked in (go-digest's README).
	_ "crypto/sha256"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// Image is one image of a layout: its tag (the index's org.opencontainers.image.ref.name), its
// layers bottom first, and its runtime config.
type Image struct {
	Tag    string
	Layers [][]Entry
	Config ocispec.ImageConfig
	// Zstd compresses the layers with zstd instead of gzip.
	Zstd bool
}

// WriteLayout writes images as one OCI image layout in dir, which is created if needed and must be
// empty. Layers that several images share are stored once.
func WriteLayout(dir string, images ...Image) error {
	if err := checkTags(images); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create layout %s: %w", dir, err)
	}
	if names, err := os.ReadDir(dir); err != nil {
		return fmt.Errorf("read layout %s: %w", dir, err)
	} else if len(names) > 0 {
		return fmt.Errorf("write layout %s: directory is not empty", dir)
	}
	if err := os.MkdirAll(filepath.Join(dir, ocispec.ImageBlobsDir, "sha256"), 0o755); err != nil {
		return fmt.Errorf("create layout %s: %w", dir, err)
	}

	w := layoutWriter{dir: dir, layers: make(map[layerKey]ocispec.Descriptor)}
	index := ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
	}
	for _, img := range images {
		desc, err := w.image(img)
		if err != nil {
			return fmt.Errorf("write image %s: %w", img.Tag, err)
		}
		index.Manifests = append(index.Manifests, desc)
	}
	if err := writeJSON(filepath.Join(dir, ocispec.ImageLayoutFile), ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion}); err != nil {
		return err
	}
	// index.json last: a layout with an index is complete.
	return writeJSON(filepath.Join(dir, ocispec.ImageIndexFile), index)
}

func checkTags(images []Image) error {
	seen := make(map[string]bool)
	for _, img := range images {
		if img.Tag == "" {
			return errors.New("write layout: an image has no tag")
		}
		if seen[img.Tag] {
			return fmt.Errorf("write layout: tag %q used twice", img.Tag)
		}
		seen[img.Tag] = true
	}
	return nil
}

// ReplaceLayout writes images to a new layout beside dir and swaps it into place with
// renameat2(RENAME_EXCHANGE), so a reader sees the old layout or the new one, never a mix. It
// refuses to replace anything that is not an OCI layout or an empty directory, so a mistyped -out
// cannot delete a home directory.
func ReplaceLayout(dir string, images ...Image) error {
	dir = filepath.Clean(dir)
	replace, err := replaceable(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("create parent of layout %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("create temporary layout: %w", err)
	}
	// After the exchange tmp holds the old layout, so this removes whichever is stale.
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("create temporary layout: %w", err)
	}
	if err := WriteLayout(tmp, images...); err != nil {
		return err
	}
	if !replace {
		if err := os.Rename(tmp, dir); err != nil {
			return fmt.Errorf("move layout into place: %w", err)
		}
		return nil
	}
	if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dir, unix.RENAME_EXCHANGE); err != nil {
		return fmt.Errorf("replace layout %s: %w", dir, &os.LinkError{Op: "renameat2", Old: tmp, New: dir, Err: err})
	}
	return nil
}

// replaceable reports whether dir exists and may be replaced, or an error if it must not be.
func replaceable(dir string) (bool, error) {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check layout %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return false, fmt.Errorf("refusing to replace %s: not a directory", dir)
	}
	names, err := os.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("check layout %s: %w", dir, err)
	}
	if len(names) == 0 {
		return true, nil
	}
	if _, err := os.Stat(filepath.Join(dir, ocispec.ImageLayoutFile)); err != nil {
		return false, fmt.Errorf("refusing to replace %s: not an OCI image layout (no %s file); remove it or choose another directory", dir, ocispec.ImageLayoutFile)
	}
	return true, nil
}

// layoutWriter writes the blobs of one layout, remembering compressed layers by diff_id so an
// image that reuses a layer does not gzip it again.
type layoutWriter struct {
	dir    string
	layers map[layerKey]ocispec.Descriptor
}

// image writes the layers, config and manifest of img and returns the manifest's index entry.
func (w *layoutWriter) image(img Image) (ocispec.Descriptor, error) {
	platform := ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	config := ocispec.Image{
		Created:  &epoch,
		Platform: platform,
		Config:   img.Config,
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{}},
	}
	manifest := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Layers:    []ocispec.Descriptor{},
	}
	for i, entries := range img.Layers {
		diffID, desc, err := w.layer(entries, img.Zstd)
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("layer %d: %w", i, err)
		}
		config.RootFS.DiffIDs = append(config.RootFS.DiffIDs, diffID)
		config.History = append(config.History, ocispec.History{Created: &epoch, CreatedBy: "kite tests/imagebuild"})
		manifest.Layers = append(manifest.Layers, desc)
	}
	configBlob, err := json.Marshal(config)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("encode config: %w", err)
	}
	if manifest.Config, err = w.blob(ocispec.MediaTypeImageConfig, configBlob); err != nil {
		return ocispec.Descriptor{}, err
	}
	manifestBlob, err := json.Marshal(manifest)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("encode manifest: %w", err)
	}
	desc, err := w.blob(ocispec.MediaTypeImageManifest, manifestBlob)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc.Platform = &platform
	desc.Annotations = map[string]string{ocispec.AnnotationRefName: img.Tag}
	return desc, nil
}

// layer writes entries as a compressed tar blob (gzip, or zstd if asked) and returns the digest
// of the uncompressed tar (the config's diff_id) and the blob's descriptor.
func (w *layoutWriter) layer(entries []Entry, useZstd bool) (digest.Digest, ocispec.Descriptor, error) {
	raw, err := layerTar(entries)
	if err != nil {
		return "", ocispec.Descriptor{}, err
	}
	diffID := digest.FromBytes(raw)
	key := layerKey{diffID, useZstd}
	if desc, ok := w.layers[key]; ok {
		return diffID, desc, nil
	}
	var compressed bytes.Buffer
	var zw io.WriteCloser = gzip.NewWriter(&compressed)
	mediaType := ocispec.MediaTypeImageLayerGzip
	if useZstd {
		if zw, err = zstd.NewWriter(&compressed); err != nil {
			return "", ocispec.Descriptor{}, err
		}
		mediaType = ocispec.MediaTypeImageLayerZstd
	}
	if _, err := zw.Write(raw); err != nil {
		return "", ocispec.Descriptor{}, fmt.Errorf("compress layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return "", ocispec.Descriptor{}, fmt.Errorf("compress layer: %w", err)
	}
	desc, err := w.blob(mediaType, compressed.Bytes())
	if err != nil {
		return "", ocispec.Descriptor{}, err
	}
	w.layers[key] = desc
	return diffID, desc, nil
}

// layerKey identifies a layer blob: its content and how it is compressed.
type layerKey struct {
	diffID digest.Digest
	zstd   bool
}

// blob stores data under blobs/sha256/<hex> and describes it.
func (w *layoutWriter) blob(mediaType string, data []byte) (ocispec.Descriptor, error) {
	d := digest.FromBytes(data)
	p := filepath.Join(w.dir, ocispec.ImageBlobsDir, d.Algorithm().String(), d.Encoded())
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("write blob: %w", err)
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}, nil
}

func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(path), err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}
