// Package imageindex owns the records of stored images: what `kite run` needs to start a pod from
// an image already in the store, readable without opening the store (which costs a user namespace
// and the image libraries). kite-image writes a record after every fetch; kite reads them.
package imageindex

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kite-runtime/kite/pkg/poddir"
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
	ManifestDigest string `json:"manifestDigest"`
	// Config is the image's runtime configuration (Entrypoint, Cmd, Env, WorkingDir, User...).
	Config ImageConfig `json:"config"`
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

// ImageConfig is the part of an OCI image configuration's "config" object that kite uses to run
// the image, under image-spec's JSON names. kite-image fills it from image-spec's own type; kite
// keeps this copy so that `kite run` does not link image-spec's digest package, whose regular
// expressions and hash registrations cost about a millisecond at every start.
type ImageConfig struct {
	User         string              `json:"User,omitempty"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Env          []string            `json:"Env,omitempty"`
	Entrypoint   []string            `json:"Entrypoint,omitempty"`
	Cmd          []string            `json:"Cmd,omitempty"`
	Volumes      map[string]struct{} `json:"Volumes,omitempty"`
	WorkingDir   string              `json:"WorkingDir,omitempty"`
	Labels       map[string]string   `json:"Labels,omitempty"`
	StopSignal   string              `json:"StopSignal,omitempty"`
}

// Layer is one stored layer.
type Layer struct {
	ID   string `json:"id"`
	Dir  string `json:"dir"`  // absolute path of the layer's files
	Link string `json:"link"` // short name of Dir relative to OverlayHome
}

// ErrNotFound means no record exists for a manifest digest.
var ErrNotFound = errors.New("image not stored")

func recordPath(imagesDir, d string) (string, error) {
	if !ValidDigest(d) {
		return "", fmt.Errorf("invalid manifest digest %q: want sha256: and 64 lowercase hex digits", d)
	}
	alg, hex, _ := strings.Cut(d, ":")
	return filepath.Join(imagesDir, alg+"-"+hex+".json"), nil
}

// ValidDigest reports whether d is a sha256 digest in its canonical form, the only kind the
// stores kite fills use to name manifests.
func ValidDigest(d string) bool {
	hex, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(hex) != 64 {
		return false
	}
	for _, c := range hex {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Lookup reads the record of the image fetched by manifest digest d, checking that its layers are
// still in the store.
func Lookup(imagesDir, d string) (*Record, error) {
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

// MarkUsed records that the image fetched by manifest digest d was just used, as the modification
// time of its record: `kite image gc` keeps images used within its grace period.
func MarkUsed(imagesDir, d string) error {
	p, err := recordPath(imagesDir, d)
	if err != nil {
		return err
	}
	now := time.Now()
	return os.Chtimes(p, now, now)
}

// Stored is a record and when its image was last used.
type Stored struct {
	Record
	LastUsed time.Time
}

// All reads every record; records kite cannot read are skipped.
func All(imagesDir string) ([]Stored, error) {
	files, err := filepath.Glob(filepath.Join(imagesDir, "sha256-*.json"))
	if err != nil {
		return nil, err
	}
	var out []Stored
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var r Record
		if json.Unmarshal(data, &r) != nil || r.SchemaVersion != poddir.SchemaVersion {
			continue
		}
		out = append(out, Stored{Record: r, LastUsed: st.ModTime()})
	}
	return out, nil
}

// Delete removes the record of the image fetched by manifest digest d, and the names that point
// at it.
func Delete(imagesDir, d string) error {
	p, err := recordPath(imagesDir, d)
	if err != nil {
		return err
	}
	names, err := filepath.Glob(filepath.Join(imagesDir, namesDir, "*.json"))
	if err != nil {
		return err
	}
	for _, n := range names {
		var e nameEntry
		if data, err := os.ReadFile(n); err == nil && json.Unmarshal(data, &e) == nil && e.ManifestDigest == d {
			if err := os.Remove(n); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
