package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kite-runtime/kite/tests/imagebuild"
	"github.com/kite-runtime/kite/tests/registry"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The three ways a hostile image reaches kite: the OCI layout as written, the same as an
// oci-archive file, and pushed to the loopback registry and pulled by digest.
const (
	viaLayout   = "oci"
	viaArchive  = "oci-archive"
	viaRegistry = "docker"
)

var hostileTransports = []string{viaLayout, viaArchive, viaRegistry}

// hostileSource is one hostile image, written once and served every way the case allows.
type hostileSource struct {
	layout, archive string
	reg             *regEnv
	// registryRef is the image in the registry, by the digest the layout's index gives it; empty
	// until pushed.
	registryRef string
}

// ref names the image through transport, pushing or archiving it on first use.
func (s *hostileSource) ref(t *testing.T, transport, caseName string) string {
	t.Helper()
	switch transport {
	case viaArchive:
		if s.archive == "" {
			s.archive = s.layout + ".tar"
			if err := imagebuild.WriteArchive(s.layout, s.archive); err != nil {
				t.Fatalf("write the oci-archive: %v", err)
			}
		}
		return "oci-archive:" + s.archive + ":hostile"
	case viaRegistry:
		if s.registryRef == "" {
			repo := "hostile/" + caseName
			d, err := pushRaw(s.reg.reg, s.layout, repo)
			if err != nil {
				t.Fatalf("push the image to the registry: %v", err)
			}
			s.registryRef = s.reg.ref(repo + "@" + d.String())
		}
		return s.registryRef
	}
	return "oci:" + s.layout + ":hostile"
}

// options are the kite options and global flags for transport: the registry's environment, and
// --insecure-options=image so that the missing signature is not what refuses the image (the
// image's content is under test, not the policy).
func (s *hostileSource) options(transport string) (*options, []string) {
	if transport == viaRegistry {
		return s.reg.opts, []string{"--insecure-options=image"}
	}
	return nil, nil
}

// pushRaw puts the image of the layout in layoutDir (its one index entry) into repo of the
// registry byte for byte, including what is wrong with it, and returns the digest the layout's
// index names it by. Blobs stored under their own digest are uploaded; a blob whose content has
// another digest is served by the registry as it is, under the name it has in the layout (the
// registry would refuse the upload). Manifests and indexes are put under their digests, the
// cycles and digest lies included: first all with a media type the registry does not parse, so
// that an index naming another (or itself) finds it there, then each with its real type.
func pushRaw(reg *registry.Registry, layoutDir, repo string) (digest.Digest, error) {
	var index ocispec.Index
	if err := imagebuild.ReadJSONFile(filepath.Join(layoutDir, ocispec.ImageIndexFile), &index); err != nil {
		return "", err
	}
	if len(index.Manifests) != 1 {
		return "", fmt.Errorf("layout %s has %d images, want 1", layoutDir, len(index.Manifests))
	}
	type doc struct {
		mediaType string
		data      []byte
	}
	docs := map[digest.Digest]doc{}
	var order []digest.Digest
	blobs := map[digest.Digest]bool{}
	var walk func(d ocispec.Descriptor) error
	walk = func(d ocispec.Descriptor) error {
		if _, seen := docs[d.Digest]; seen {
			return nil
		}
		data, err := os.ReadFile(imagebuild.LayoutBlobPath(layoutDir, d.Digest))
		if err != nil {
			return err
		}
		docs[d.Digest] = doc{d.MediaType, data}
		order = append(order, d.Digest)
		var parsed struct {
			Manifests []ocispec.Descriptor `json:"manifests"`
			Config    *ocispec.Descriptor  `json:"config"`
			Layers    []ocispec.Descriptor `json:"layers"`
		}
		if json.Unmarshal(data, &parsed) != nil {
			return nil // not JSON: served as it is, for the client to refuse
		}
		if parsed.Config != nil {
			blobs[parsed.Config.Digest] = true
		}
		for _, l := range parsed.Layers {
			blobs[l.Digest] = true
		}
		for _, m := range parsed.Manifests {
			if err := walk(m); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(index.Manifests[0]); err != nil {
		return "", err
	}
	for _, d := range slices.Sorted(maps.Keys(blobs)) {
		data, err := os.ReadFile(imagebuild.LayoutBlobPath(layoutDir, d))
		if err != nil {
			return "", err
		}
		if digest.FromBytes(data) != d {
			reg.FaultBlob(d.String(), registry.BlobFault{Body: data})
			continue
		}
		// Faults hold for a digest in every repository: an earlier case's lie about this blob
		// (the payload layer is the same in many cases) must not be served for this one.
		reg.ClearBlobFault(d.String())
		if _, err := reg.PutBlob(repo, data); err != nil {
			return "", err
		}
	}
	for _, d := range order {
		if _, err := reg.PutManifest(repo, d.String(), ocispec.MediaTypeImageManifest, docs[d].data); err != nil {
			return "", err
		}
	}
	for _, d := range order {
		if docs[d].mediaType == ocispec.MediaTypeImageManifest {
			continue
		}
		if _, err := reg.PutManifest(repo, d.String(), docs[d].mediaType, docs[d].data); err != nil {
			return "", err
		}
	}
	return index.Manifests[0].Digest, nil
}

// hostileMessage replaces the paths of a case in kite's message with fixed words, so that a
// pattern can match the message whichever transport served the image.
func hostileMessage(msg string, src *hostileSource, dataDir, canary string) string {
	pairs := []string{}
	if src.archive != "" {
		pairs = append(pairs, src.archive, "LAYOUT")
	}
	pairs = append(pairs, src.layout, "LAYOUT", dataDir, "DATADIR", canary, "CANARY")
	return strings.NewReplacer(pairs...).Replace(msg)
}
