package imagebuild

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Layout-level hostile images: a well-formed image of o.Base and a payload layer, written by
// WriteLayout, then edited. The edits store blobs under the wrong digest or describe them wrongly;
// everything not named in a case stays consistent.

// layoutEdit is the one image of a layout, read back for editing. Its store methods write the
// edited parts as new blobs, each under its own digest, and update what refers to them.
type layoutEdit struct {
	dir      string
	index    ocispec.Index
	manifest ocispec.Manifest
	config   ocispec.Image
}

func readLayoutEdit(dir string) (*layoutEdit, error) {
	e := &layoutEdit{dir: dir}
	if err := ReadJSONFile(filepath.Join(dir, ocispec.ImageIndexFile), &e.index); err != nil {
		return nil, err
	}
	if len(e.index.Manifests) != 1 {
		return nil, fmt.Errorf("edit layout %s: %d images, want 1", dir, len(e.index.Manifests))
	}
	if err := ReadJSONFile(e.blobPath(e.index.Manifests[0].Digest), &e.manifest); err != nil {
		return nil, err
	}
	if err := ReadJSONFile(e.blobPath(e.manifest.Config.Digest), &e.config); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *layoutEdit) blobPath(d digest.Digest) string {
	return filepath.Join(e.dir, ocispec.ImageBlobsDir, d.Algorithm().String(), d.Encoded())
}

// storeConfig stores the config and points the manifest at it.
func (e *layoutEdit) storeConfig() error {
	data, err := json.Marshal(e.config)
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	desc, err := (&layoutWriter{dir: e.dir}).blob(e.manifest.Config.MediaType, data)
	e.manifest.Config = desc
	return err
}

// storeManifest stores the manifest and points the index at it, keeping the entry's platform and
// annotations.
func (e *layoutEdit) storeManifest() error {
	data, err := json.Marshal(e.manifest)
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	desc, err := (&layoutWriter{dir: e.dir}).blob(ocispec.MediaTypeImageManifest, data)
	e.index.Manifests[0].Digest, e.index.Manifests[0].Size = desc.Digest, desc.Size
	return err
}

func (e *layoutEdit) storeIndex() error {
	return writeJSON(filepath.Join(e.dir, ocispec.ImageIndexFile), e.index)
}

// storeAll stores config, manifest and index, in that order.
func (e *layoutEdit) storeAll() error {
	if err := e.storeConfig(); err != nil {
		return err
	}
	if err := e.storeManifest(); err != nil {
		return err
	}
	return e.storeIndex()
}

// overwrite replaces the content of the blob stored as d with data, keeping its name.
func (e *layoutEdit) overwrite(d digest.Digest, data []byte) error {
	if digest.FromBytes(data) == d {
		return errors.New("the replacement blob has the digest it is stored under")
	}
	if err := os.WriteFile(e.blobPath(d), data, 0o644); err != nil {
		return fmt.Errorf("overwrite blob %s: %w", d, err)
	}
	return nil
}

// ReadJSONFile decodes the JSON document at path into v, naming the file when it is not JSON.
func ReadJSONFile(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

// tampered writes o.Base and the payload layer, then lets edit change the layout.
func tampered(dir string, o HostileOptions, edit func(*layoutEdit) error) error {
	if err := writeHostile(dir, o, ocispec.ImageConfig{}, payloadLayer(PayloadContent)); err != nil {
		return err
	}
	e, err := readLayoutEdit(dir)
	if err != nil {
		return err
	}
	if len(e.manifest.Layers) != 2 {
		return fmt.Errorf("tamper with %s: %d layers, want 2", dir, len(e.manifest.Layers))
	}
	return edit(e)
}

// payload is the manifest's descriptor of the payload layer.
func (e *layoutEdit) payload() *ocispec.Descriptor { return &e.manifest.Layers[1] }

// HostileLayerDigestMismatch: the payload layer's blob holds another well-formed layer (a file of
// different content), so neither its digest nor the config's diff_id matches it; the
// descriptor's size is that of the blob actually stored.
func HostileLayerDigestMismatch(dir string, o HostileOptions) error {
	return tampered(dir, o, func(e *layoutEdit) error {
		// Write the other layer as a blob of its own, then move its content under the payload's
		// digest.
		_, other, err := (&layoutWriter{dir: dir, layers: map[layerKey]ocispec.Descriptor{}}).layer(payloadLayer("tampered: not what the digest names\n"), false)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(e.blobPath(other.Digest))
		if err != nil {
			return err
		}
		if err := os.Remove(e.blobPath(other.Digest)); err != nil {
			return err
		}
		if err := e.overwrite(e.payload().Digest, data); err != nil {
			return err
		}
		e.payload().Size = int64(len(data))
		if err := e.storeManifest(); err != nil {
			return err
		}
		return e.storeIndex()
	})
}

// HostileConfigDigestMismatch: the config blob holds a config with another Cmd; the descriptor's
// size is that of the blob actually stored.
func HostileConfigDigestMismatch(dir string, o HostileOptions) error {
	return tampered(dir, o, func(e *layoutEdit) error {
		e.config.Config.Cmd = []string{"/bin/echo", "tampered config"}
		data, err := json.Marshal(e.config)
		if err != nil {
			return err
		}
		if err := e.overwrite(e.manifest.Config.Digest, data); err != nil {
			return err
		}
		e.manifest.Config.Size = int64(len(data))
		if err := e.storeManifest(); err != nil {
			return err
		}
		return e.storeIndex()
	})
}

// HostileManifestDigestMismatch: the manifest blob the index names holds a manifest with an
// added annotation; the index entry's size is that of the blob actually stored.
func HostileManifestDigestMismatch(dir string, o HostileOptions) error {
	return tampered(dir, o, func(e *layoutEdit) error {
		e.manifest.Annotations = map[string]string{"org.kite-runtime.test": "tampered manifest"}
		data, err := json.Marshal(e.manifest)
		if err != nil {
			return err
		}
		top := &e.index.Manifests[0]
		if err := e.overwrite(top.Digest, data); err != nil {
			return err
		}
		top.Size = int64(len(data))
		return e.storeIndex()
	})
}

// HostileLayerSizeShort: the payload layer's descriptor says the blob is 16 bytes shorter than it is.
func HostileLayerSizeShort(dir string, o HostileOptions) error {
	return tampered(dir, o, func(e *layoutEdit) error {
		e.payload().Size -= 16
		if err := e.storeManifest(); err != nil {
			return err
		}
		return e.storeIndex()
	})
}

// HostileLayerSizeLong: the payload layer's descriptor says the blob is 16 bytes longer than it is.
func HostileLayerSizeLong(dir string, o HostileOptions) error {
	return tampered(dir, o, func(e *layoutEdit) error {
		e.payload().Size += 16
		if err := e.storeManifest(); err != nil {
			return err
		}
		return e.storeIndex()
	})
}

// HostileDiffIDMismatch: the config's diff_id for the payload layer is the digest of other data.
func HostileDiffIDMismatch(dir string, o HostileOptions) error {
	return tampered(dir, o, func(e *layoutEdit) error {
		e.config.RootFS.DiffIDs[1] = digest.FromString("not the payload layer")
		return e.storeAll()
	})
}

// HostileDiffIDMissing: the config lists only the base layer's diff_id (and history entry).
func HostileDiffIDMissing(dir string, o HostileOptions) error {
	return tampered(dir, o, func(e *layoutEdit) error {
		e.config.RootFS.DiffIDs = e.config.RootFS.DiffIDs[:1]
		e.config.History = e.config.History[:1]
		return e.storeAll()
	})
}

// foreignPlatform sets the config's platform and the index entry's to match.
func foreignPlatform(dir string, o HostileOptions, osName, arch string) error {
	return tampered(dir, o, func(e *layoutEdit) error {
		e.config.OS, e.config.Architecture = osName, arch
		e.index.Manifests[0].Platform = &ocispec.Platform{OS: osName, Architecture: arch}
		return e.storeAll()
	})
}

// HostileWindows: a config and index entry for windows on this machine's architecture; the
// layers are the usual Linux ones.
func HostileWindows(dir string, o HostileOptions) error {
	return foreignPlatform(dir, o, "windows", runtime.GOARCH)
}

// HostileS390x: a config and index entry for linux on s390x (or on arm64 when this machine is an
// s390x); the layers hold this machine's binaries.
func HostileS390x(dir string, o HostileOptions) error {
	arch := "s390x"
	if runtime.GOARCH == arch {
		arch = "arm64"
	}
	return foreignPlatform(dir, o, "linux", arch)
}

// HostileExternalURL: the payload layer's descriptor lists o.URL/blobs/<digest> in its urls (an
// external, "non-distributable" location); the blob is also in the layout, intact.
func HostileExternalURL(dir string, o HostileOptions) error {
	if o.URL == "" {
		return errors.New("hostile image: no URL to name as the external source of a layer")
	}
	return tampered(dir, o, func(e *layoutEdit) error {
		e.payload().URLs = []string{o.URL + "/blobs/" + e.payload().Digest.String()}
		if err := e.storeManifest(); err != nil {
			return err
		}
		return e.storeIndex()
	})
}
