package imageindex

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ManifestDigestOfLayout finds, without the image libraries, the digest of the manifest that an
// "oci:PATH[:REF]" reference names, so that a stored copy can be found without a fetch. It returns
// false whenever the answer is not certain; the caller then fetches, and the fetch reports any
// error in the user's input with the image library's full explanation.
func ManifestDigestOfLayout(ref string) (digest.Digest, bool) {
	transport, rest, ok := trimTransport(ref)
	if !ok || transport != "oci" {
		return "", false
	}
	dir, name, _ := strings.Cut(rest, ":")
	if dir == "" || strings.HasPrefix(name, "@") {
		return "", false
	}
	data, err := os.ReadFile(filepath.Join(dir, ocispec.ImageIndexFile))
	if err != nil {
		return "", false
	}
	var index ocispec.Index
	if err := json.Unmarshal(data, &index); err != nil {
		return "", false
	}
	var found []ocispec.Descriptor
	for _, m := range index.Manifests {
		if name == "" || m.Annotations[ocispec.AnnotationRefName] == name {
			found = append(found, m)
		}
	}
	if len(found) != 1 || found[0].Digest.Validate() != nil {
		return "", false
	}
	return found[0].Digest, true
}
