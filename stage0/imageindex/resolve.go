package imageindex

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
)

// ManifestDigestOfLayout finds, without the image libraries, the digest of the manifest that an
// "oci:PATH[:REF]" reference names, so that a stored copy can be found without a fetch. It returns
// false whenever the answer is not certain; the caller then fetches, and the fetch reports any
// error in the user's input with the image library's full explanation.
func ManifestDigestOfLayout(ref string) (string, bool) {
	transport, rest, ok := trimTransport(ref)
	if !ok || transport != "oci" {
		return "", false
	}
	dir, name, _ := strings.Cut(rest, ":")
	if dir == "" || strings.HasPrefix(name, "@") {
		return "", false
	}
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return "", false
	}
	// The fields of image-spec's index and descriptor that name an image.
	var index struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(data, &index); err != nil {
		return "", false
	}
	var found []string
	for _, m := range index.Manifests {
		if name == "" || m.Annotations["org.opencontainers.image.ref.name"] == name {
			found = append(found, m.Digest)
		}
	}
	if len(found) != 1 || !ValidDigest(found[0]) {
		return "", false
	}
	return found[0], true
}
