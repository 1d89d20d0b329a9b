package imageindex

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"unicode/utf8"

	"github.com/kite-runtime/kite/pkg/poddir"
)

// namesDir, below the records, maps image names to records, so that `kite run NAME` finds a
// stored image without opening the store. Each file is named after a hash of the name, because a
// name can be longer than a file name may be, and holds the name itself and the digest of its
// record.
const namesDir = "names"

type nameEntry struct {
	Name           string `json:"name"`
	ManifestDigest string `json:"manifestDigest"`
}

func namePath(imagesDir, name string) string {
	h := fnv.New64a()
	h.Write([]byte(name))
	return filepath.Join(imagesDir, namesDir, fmt.Sprintf("%016x.json", h.Sum64()))
}

// SaveName records that name is the image fetched by manifest digest d; a name is on one image
// at a time, so this replaces what the name pointed at before.
func SaveName(imagesDir, name, d string) error {
	if !ValidDigest(d) {
		return fmt.Errorf("invalid manifest digest %q", d)
	}
	// JSON would turn invalid UTF-8 into U+FFFD, and LookupName would never find the name.
	if !utf8.ValidString(name) {
		return fmt.Errorf("image name %q is not valid UTF-8", name)
	}
	p := namePath(imagesDir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	data, err := json.Marshal(nameEntry{Name: name, ManifestDigest: d})
	if err != nil {
		return err
	}
	return poddir.WriteFileAtomic(p, append(data, '\n'), 0o600)
}

// LookupName reads the record of the image stored under name.
func LookupName(imagesDir, name string) (*Record, error) {
	data, err := os.ReadFile(namePath(imagesDir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read image name %s: %w", name, err)
	}
	var e nameEntry
	// Another name with the same hash, or an entry kite cannot read: the next fetch rewrites it.
	if err := json.Unmarshal(data, &e); err != nil || e.Name != name {
		return nil, ErrNotFound
	}
	return Lookup(imagesDir, e.ManifestDigest)
}
