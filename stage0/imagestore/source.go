package imagestore

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/kite-runtime/kite/stage0/imageindex"
	digest "github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/types"
)

// explainOpenError says what is wrong when the image imageRef names cannot be opened, and how to
// fix it: the image library's messages omit the path of a file, and the flag or command a
// registry error calls for.
func explainOpenError(imageRef string, err error) error {
	transport, rest, _ := strings.Cut(imageRef, ":")
	if transport != "oci" && transport != "oci-archive" && transport != "docker-archive" {
		return explainRegistryError(err)
	}
	path, _, _ := strings.Cut(rest, ":")
	st, statErr := os.Stat(path)
	switch {
	case errors.Is(statErr, fs.ErrNotExist):
		return fmt.Errorf("%s does not exist", path)
	case statErr == nil && transport == "oci" && !st.IsDir():
		return fmt.Errorf("%s is not an OCI image layout directory; for an archive use oci-archive:%s", path, rest)
	case statErr == nil && transport != "oci" && st.IsDir():
		return fmt.Errorf("%s is a directory; for an OCI image layout use oci:%s", path, rest)
	}
	switch transport {
	case "oci":
		if _, statErr := os.Stat(filepath.Join(path, "index.json")); errors.Is(statErr, fs.ErrNotExist) {
			return fmt.Errorf("%s is not an OCI image layout: it has no index.json", path)
		}
		return fmt.Errorf("read OCI image layout %s: %w", path, err)
	case "oci-archive":
		return fmt.Errorf("read OCI archive %s: %w", path, err)
	}
	return fmt.Errorf("read docker archive %s: %w", path, err)
}

// explainRegistryError adds the fix to a registry error whose cause kite can tell.
func explainRegistryError(err error) error {
	msg := err.Error()
	var unauthorized docker.ErrUnauthorizedForCredentials
	switch {
	case errors.As(err, &unauthorized) || strings.Contains(msg, "authentication required") || strings.Contains(msg, "unauthorized"):
		return fmt.Errorf("%w; log in with kite login REGISTRY, or give a credentials file with --authfile", err)
	case strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		return fmt.Errorf("%w; if the registry is meant to be plain HTTP, mark it insecure in registries.conf or use --insecure-options=http", err)
	case strings.Contains(msg, "x509:") || strings.Contains(msg, "certificate"):
		return fmt.Errorf("%w; add the registry's CA under /etc/containers/certs.d/HOST:PORT/, or use --insecure-options=tls", err)
	}
	return err
}

// chosenImage is the image of src that a copy stores: the instance for this platform if the
// manifest is a list.
func chosenImage(ctx context.Context, sys *types.SystemContext, src types.ImageSource) (types.Image, error) {
	blob, mimeType, err := src.GetManifest(ctx, nil)
	if err != nil {
		return nil, err
	}
	var instance *digest.Digest
	if manifest.MIMETypeIsMultiImage(mimeType) {
		list, err := manifest.ListFromBlob(blob, mimeType)
		if err != nil {
			return nil, err
		}
		d, err := list.ChooseInstance(sys)
		if err != nil {
			return nil, err
		}
		instance = &d
	}
	return image.FromUnparsedImage(ctx, sys, image.UnparsedInstance(src, instance))
}

// configID is the ID the storage destination gives an image: its config's digest.
func configID(ctx context.Context, sys *types.SystemContext, src types.ImageSource) (string, error) {
	img, err := chosenImage(ctx, sys, src)
	if err != nil {
		return "", err
	}
	return img.ConfigInfo().Digest.Encoded(), nil
}

// checkPlatform refuses an image built for another system: the image library only logs that. It
// first refuses, through checkDocuments, manifests and layer descriptors the copy must not use.
func checkPlatform(ctx context.Context, sys *types.SystemContext, src types.ImageSource) error {
	img, err := chosenImage(ctx, sys, src)
	if err != nil {
		return err
	}
	if err := checkDocuments(ctx, src, img); err != nil {
		return err
	}
	config, err := img.OCIConfig(ctx)
	if err != nil {
		return fmt.Errorf("read the image configuration: %w", err)
	}
	if config.OS != "linux" || config.Architecture != runtime.GOARCH {
		return fmt.Errorf("the image is built for %s/%s; kite runs linux/%s images", config.OS, config.Architecture, runtime.GOARCH)
	}
	return nil
}

// maxManifestSize is the largest manifest or image index kite reads: the image library's own limit
// for a registry's (iolimits.MaxManifestBodySize), which its layout and archive readers do not
// apply. A real manifest is a few KiB.
const maxManifestSize = 4 << 20

// checkDocuments refuses a manifest or index larger than maxManifestSize, and a layer descriptor
// whose media type is not a layer's: checkedSource decides by media type which blobs it checks as
// layers, and the copy applies whatever the manifest lists as a layer, so a hostile layer with a
// config's or an unknown media type would reach the store unchecked.
func checkDocuments(ctx context.Context, src types.ImageSource, img types.Image) error {
	top, _, err := src.GetManifest(ctx, nil)
	if err != nil {
		return err
	}
	own, _, err := img.Manifest(ctx)
	if err != nil {
		return err
	}
	for _, doc := range [][]byte{top, own} {
		if len(doc) > maxManifestSize {
			return fmt.Errorf("the image's manifest or index is %d bytes; kite reads at most %d", len(doc), maxManifestSize)
		}
	}
	for i, l := range img.LayerInfos() {
		if !isLayer(l.MediaType) {
			return fmt.Errorf("layer %d (%s) has the media type %q, which is not a layer's", i, l.Digest, l.MediaType)
		}
	}
	return nil
}

// checkLayoutDigest compares the manifest an OCI layout or archive gave with the digest its
// index.json names: the image library's layout reader does not.
func checkLayoutDigest(imageRef string, got digest.Digest) error {
	want, ok := imageindex.ManifestDigestOfLayout(imageRef)
	if !ok {
		want, ok = archiveManifestDigest(imageRef)
	}
	if ok && want != got.String() {
		return fmt.Errorf("the manifest does not match its digest: index.json names %s, the manifest's content is %s", want, got)
	}
	return nil
}

// archiveManifestDigest is, for an oci-archive:PATH[:NAME] reference, the digest the archive's
// index.json gives the image (the one entry named NAME, or the only entry). It reads the tar's
// headers up to index.json, seeking over the blobs.
func archiveManifestDigest(ref string) (string, bool) {
	rest, ok := strings.CutPrefix(ref, "oci-archive:")
	if !ok {
		return "", false
	}
	path, name, _ := strings.Cut(rest, ":")
	if path == "" || strings.HasPrefix(name, "@") {
		return "", false
	}
	f, err := os.Open(path)
	if err != nil {
		return "", false
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err != nil {
			return "", false
		}
		if filepath.Clean(hdr.Name) != "index.json" {
			continue
		}
		var index struct {
			Manifests []struct {
				Digest      string            `json:"digest"`
				Annotations map[string]string `json:"annotations"`
			} `json:"manifests"`
		}
		if err := json.NewDecoder(io.LimitReader(tr, maxManifestSize)).Decode(&index); err != nil {
			return "", false
		}
		var found []string
		for _, m := range index.Manifests {
			if name == "" || m.Annotations["org.opencontainers.image.ref.name"] == name {
				found = append(found, m.Digest)
			}
		}
		if len(found) != 1 || !imageindex.ValidDigest(found[0]) {
			return "", false
		}
		return found[0], true
	}
}
