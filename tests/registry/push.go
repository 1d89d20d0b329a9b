package registry

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"

	// go-digest only computes digests with hashes its caller has linked in (go-digest's README).
	_ "crypto/sha256"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PushLayout pushes the image (or image index) of the OCI layout in layoutDir whose index entry is
// annotated org.opencontainers.image.ref.name=layoutTag to ADDR/repoAndTag ("team/app:1.2") and
// returns its manifest digest. The manifest, config and layers are pushed byte for byte, so the
// digest is the one in the layout's index.json.
func (r *Registry) PushLayout(layoutDir, layoutTag, repoAndTag string) (string, error) {
	lp, err := layout.FromPath(layoutDir)
	if err != nil {
		return "", fmt.Errorf("open layout %s: %w", layoutDir, err)
	}
	index, err := lp.ImageIndex()
	if err != nil {
		return "", fmt.Errorf("read layout %s: %w", layoutDir, err)
	}
	desc, err := findTag(index, layoutTag)
	if err != nil {
		return "", fmt.Errorf("layout %s: %w", layoutDir, err)
	}
	// StrictValidation: a missing tag is a mistake in the test, not a request for "latest".
	ref, err := name.ParseReference(r.addr+"/"+repoAndTag, name.Insecure, name.StrictValidation)
	if err != nil {
		return "", fmt.Errorf("push to %q: %w", repoAndTag, err)
	}
	opts := []remote.Option{remote.WithAuth(r.authenticator())}
	var pushErr error
	switch {
	case desc.MediaType.IsImage():
		img, err := index.Image(desc.Digest)
		if err != nil {
			return "", fmt.Errorf("layout %s: image %s: %w", layoutDir, layoutTag, err)
		}
		pushErr = remote.Write(ref, img, opts...)
	case desc.MediaType.IsIndex():
		ii, err := index.ImageIndex(desc.Digest)
		if err != nil {
			return "", fmt.Errorf("layout %s: index %s: %w", layoutDir, layoutTag, err)
		}
		pushErr = remote.WriteIndex(ref, ii, opts...)
	default:
		return "", fmt.Errorf("layout %s: %s has media type %q, neither an image nor an index", layoutDir, layoutTag, desc.MediaType)
	}
	if pushErr != nil {
		return "", fmt.Errorf("push %s to %s: %w", layoutTag, ref, pushErr)
	}
	// Ask the registry what it now serves under the tag: that is what a puller will get.
	got, err := remote.Head(ref, opts...)
	if err != nil {
		return "", fmt.Errorf("check pushed %s: %w", ref, err)
	}
	if got.Digest != desc.Digest {
		return "", fmt.Errorf("pushed %s: registry serves %s, layout has %s", ref, got.Digest, desc.Digest)
	}
	return desc.Digest.String(), nil
}

// findTag returns the one descriptor of index annotated with tag.
func findTag(index v1.ImageIndex, tag string) (v1.Descriptor, error) {
	im, err := index.IndexManifest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	var found []v1.Descriptor
	for _, d := range im.Manifests {
		if d.Annotations[ocispec.AnnotationRefName] == tag {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		return v1.Descriptor{}, fmt.Errorf("%d images tagged %q, want 1", len(found), tag)
	}
	return found[0], nil
}

func (r *Registry) authenticator() authn.Authenticator {
	if r.opts.Username == "" && r.opts.Password == "" {
		return authn.Anonymous
	}
	return &authn.Basic{Username: r.opts.Username, Password: r.opts.Password}
}

// PutBlob uploads data as a blob of repo in one request and returns its digest. The registry
// checks the bytes against the digest, so every stored blob is honest; FaultBlob makes it lie.
func (r *Registry) PutBlob(repo string, data []byte) (string, error) {
	d := digest.FromBytes(data)
	path := "/v2/" + repo + "/blobs/uploads/?digest=" + url.QueryEscape(d.String())
	resp, err := r.do(http.MethodPost, path, "application/octet-stream", data)
	if err != nil {
		return "", fmt.Errorf("put blob %s to %s: %w", d, repo, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("put blob %s to %s: %s: %s", d, repo, resp.Status, readSome(resp.Body))
	}
	return d.String(), nil
}

// PutManifest stores data under repo:reference (a tag or a digest) with the given media type and
// returns the sha256 digest of data, which the registry also files it under.
//
// The in-process registry checks almost nothing, which is what hostile tests want: it stores any
// bytes under any tag, and under a digest reference even when the bytes have another digest. It
// does not parse image manifests, so their config and layers need not exist. Only an image index
// (Content-Type an index media type) is parsed: it must be valid JSON and every image or index it
// lists must already be in repo.
func (r *Registry) PutManifest(repo, reference, mediaType string, data []byte) (string, error) {
	resp, err := r.do(http.MethodPut, "/v2/"+repo+"/manifests/"+reference, mediaType, data)
	if err != nil {
		return "", fmt.Errorf("put manifest %s:%s: %w", repo, reference, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("put manifest %s:%s: %s: %s", repo, reference, resp.Status, readSome(resp.Body))
	}
	return digest.FromBytes(data).String(), nil
}

// do sends one request to the registry, with the registry's credentials if it has any.
func (r *Registry) do(method, path, contentType string, body []byte) (*http.Response, error) {
	req, err := http.NewRequest(method, "http://"+r.addr+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if r.opts.Username != "" || r.opts.Password != "" {
		req.SetBasicAuth(r.opts.Username, r.opts.Password)
	}
	return r.client.Do(req)
}

// readSome returns the start of an error body for a message.
func readSome(rd io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(rd, 512))
	return string(bytes.TrimSpace(b))
}
