// Package imageindex owns the records of stored images: what `kite run` needs to start a pod from
// an image already in the store, readable without opening the store (which costs a user namespace
// and the image libraries). kite-image writes a record after every fetch; kite reads them.
package imageindex

import (
	// go-digest validates only algorithms whose hash is linked in.
	_ "crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/kite-runtime/kite/pkg/poddir"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Record describes one stored image.
type Record struct {
	SchemaVersion int `json:"schemaVersion"`
	// ID is the store's image ID.
	ID string `json:"id"`
	// Name is the name the image is stored under.
	Name string `json:"name"`
	// ManifestDigest is the digest of the source manifest the image was fetched by; records are
	// found by it.
	ManifestDigest digest.Digest `json:"manifestDigest"`
	// Config is the image's runtime configuration (Entrypoint, Cmd, Env, WorkingDir, User...).
	Config ocispec.ImageConfig `json:"config"`
	// Driver is the store's graph driver ("overlay").
	Driver string `json:"driver"`
	// OverlayHome is the overlay driver's directory; Layers' Link entries are relative to it.
	OverlayHome string `json:"overlayHome"`
	// Layers lists the image's layers, top-most first.
	Layers []Layer `json:"layers"`
	// UIDMap and GIDMap are the ID mappings the store extracted the layers under. A pod must use
	// the same mappings or the owners of the image's files are wrong inside it.
	UIDMap []specs.LinuxIDMapping `json:"uidMap"`
	GIDMap []specs.LinuxIDMapping `json:"gidMap"`
}

// Layer is one stored layer.
type Layer struct {
	ID   string `json:"id"`
	Dir  string `json:"dir"`  // absolute path of the layer's files
	Link string `json:"link"` // short name of Dir relative to OverlayHome
}

// ErrNotFound means no record exists for a manifest digest.
var ErrNotFound = errors.New("image not stored")

func recordPath(imagesDir string, d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("invalid manifest digest %q: %w", d, err)
	}
	return filepath.Join(imagesDir, d.Algorithm().String()+"-"+d.Encoded()+".json"), nil
}

// Lookup reads the record of the image fetched by manifest digest d, checking that its layers are
// still in the store.
func Lookup(imagesDir string, d digest.Digest) (*Record, error) {
	p, err := recordPath(imagesDir, d)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read image record: %w", err)
	}
	var r Record
	if err := json.Unmarshal(data, &r); err != nil || r.SchemaVersion != poddir.SchemaVersion {
		// A record kite cannot use is rewritten by the next fetch.
		return nil, ErrNotFound
	}
	for _, l := range r.Layers {
		if _, err := os.Stat(l.Dir); err != nil {
			return nil, ErrNotFound
		}
	}
	return &r, nil
}

// Save writes r atomically, keyed by its ManifestDigest.
func Save(imagesDir string, r *Record) error {
	p, err := recordPath(imagesDir, r.ManifestDigest)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(imagesDir, 0o700); err != nil {
		return err
	}
	r.SchemaVersion = poddir.SchemaVersion
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return poddir.WriteFileAtomic(p, append(data, '\n'), 0o600)
}

// IsSingleMapping reports whether m maps only one id, the fallback when the user has no
// subordinate id range.
func IsSingleMapping(m []specs.LinuxIDMapping) bool {
	return len(m) == 1 && m[0].Size == 1
}

// trimTransport splits "transport:rest".
func trimTransport(ref string) (transport, rest string, ok bool) {
	transport, rest, ok = strings.Cut(ref, ":")
	return
}
