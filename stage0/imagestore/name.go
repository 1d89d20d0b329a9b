package imagestore

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/archive"
	"go.podman.io/image/v5/docker/reference"
	ociarchive "go.podman.io/image/v5/oci/archive"
	"go.podman.io/image/v5/oci/layout"
	"go.podman.io/image/v5/pkg/shortnames"
	"go.podman.io/image/v5/transports"
	"go.podman.io/image/v5/types"
)

// supportedTransports are the transports kite fetches from and exports to. kite-image links only
// these (not the image library's alltransports): every package linked costs its initialisation
// at each start.
var supportedTransports = map[string]types.ImageTransport{
	"docker":         docker.Transport,
	"docker-archive": archive.Transport,
	"oci":            layout.Transport,
	"oci-archive":    ociarchive.Transport,
}

// otherTransports are the image library's transports kite does not use, named so that a
// reference to one is refused as such: storing an image from a transport kite has not been tested
// with is not offered.
var otherTransports = []string{"containers-storage", "dir", "docker-daemon", "openshift", "ostree", "sif", "tarball"}

// parseTransportReference parses TRANSPORT:REST for a supported transport.
func parseTransportReference(s string) (types.ImageReference, error) {
	name, rest, _ := strings.Cut(s, ":")
	t, ok := supportedTransports[name]
	if !ok {
		return nil, fmt.Errorf("transport %q is not supported; use %s", name, referenceForms)
	}
	return t.ParseReference(rest)
}

const referenceForms = "docker://HOST/REPO[:TAG|@DIGEST], NAME[:TAG] (resolved as registries.conf says), " +
	"docker-archive:PATH[:NAME], oci:PATH[:REF] or oci-archive:PATH[:REF]"

// Source is one place a fetch may copy an image from, and the name it is stored under.
type Source struct {
	Ref types.ImageReference
	// Name is the stored image's name; "" stores the image by ID only.
	Name string
}

// ParseReference parses an image reference: TRANSPORT:REST for the transports kite supports, or a
// docker image name without a transport. A short name (no registry) parses to nil: only Sources
// can resolve it.
func ParseReference(imageRef string) (types.ImageReference, error) {
	transport, rest, ok := strings.Cut(imageRef, ":")
	if _, supported := supportedTransports[transport]; ok && (supported || slices.Contains(otherTransports, transport)) {
		if !supported {
			return nil, fmt.Errorf("parse image reference %q: transport %q is not supported; use %s", imageRef, transport, referenceForms)
		}
		if rest == "" || strings.HasPrefix(rest, ":") || transport == "docker" && !strings.HasPrefix(rest, "//") {
			return nil, fmt.Errorf("parse image reference %q: expected %s", imageRef, referenceForms)
		}
		ref, err := parseTransportReference(imageRef)
		if err != nil {
			return nil, fmt.Errorf("parse image reference %q: %w", imageRef, err)
		}
		return ref, nil
	}
	if strings.Contains(imageRef, "://") || imageRef == "" {
		return nil, fmt.Errorf("parse image reference %q: unknown transport; use %s", imageRef, referenceForms)
	}
	if shortnames.IsShortName(imageRef) {
		// Check the syntax now; the registry comes from registries.conf.
		if _, err := reference.ParseNormalizedNamed(imageRef); err != nil {
			return nil, fmt.Errorf("parse image reference %q: %w; use %s", imageRef, err, referenceForms)
		}
		return nil, nil
	}
	ref, err := docker.ParseReference("//" + imageRef)
	if err != nil {
		return nil, fmt.Errorf("parse image reference %q: %w; use %s", imageRef, err, referenceForms)
	}
	return ref, nil
}

// Sources returns where imageRef may be fetched from, in the order to try them. Only a short
// name has more than one: a candidate per registry that registries.conf lists for it.
func Sources(sys *types.SystemContext, imageRef string) ([]Source, error) {
	ref, err := ParseReference(imageRef)
	if err != nil {
		return nil, err
	}
	if ref != nil {
		name, err := storedName(sys, ref, imageRef)
		if err != nil {
			return nil, err
		}
		return []Source{{Ref: ref, Name: name}}, nil
	}
	resolved, err := shortnames.Resolve(sys, imageRef)
	if err != nil {
		return nil, fmt.Errorf("resolve the short name %q: %w; use a full name such as docker://docker.io/library/%s, or add an alias or unqualified-search-registries to registries.conf", imageRef, err, imageRef)
	}
	var out []Source
	for _, c := range resolved.PullCandidates {
		ref, err := docker.NewReference(c.Value)
		if err != nil {
			return nil, fmt.Errorf("resolve the short name %q: %w", imageRef, err)
		}
		out = append(out, Source{Ref: ref, Name: c.Value.String()})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("resolve the short name %q: registries.conf gives no registry for it", imageRef)
	}
	return out, nil
}

// storedName is the name the image ref names is stored under:
//   - docker: the full name, docker.io/library/busybox:latest for busybox.
//   - docker-archive: the name given after the path, else the archive's only tag, else a local
//     name made from the file name.
//   - oci, oci-archive: a local name made from the path and REF.
func storedName(sys *types.SystemContext, ref types.ImageReference, imageRef string) (string, error) {
	switch ref.Transport().Name() {
	case "docker":
		return reference.TagNameOnly(ref.DockerReference()).String(), nil
	case "docker-archive":
		if named := ref.DockerReference(); named != nil {
			return named.String(), nil
		}
		tag, err := onlyArchiveTag(sys, ref)
		if err != nil || tag != "" {
			return tag, err
		}
	}
	return localName(imageRef), nil
}

// onlyArchiveTag returns the tag of the only image in a docker archive, or "".
func onlyArchiveTag(sys *types.SystemContext, ref types.ImageReference) (string, error) {
	_, rest, _ := strings.Cut(transports.ImageName(ref), ":")
	path, _, _ := strings.Cut(rest, ":")
	r, err := archive.NewReader(sys, path)
	if err != nil {
		return "", explainOpenError("docker-archive:"+rest, err)
	}
	defer r.Close()
	images, err := r.List()
	if err != nil {
		return "", fmt.Errorf("read docker archive %s: %w", path, err)
	}
	if len(images) != 1 {
		return "", fmt.Errorf("%s holds %d images; name one: docker-archive:%s:NAME:TAG", path, len(images), path)
	}
	if named := images[0][0].DockerReference(); named != nil {
		return named.String(), nil
	}
	return "", nil
}

// localName is localhost/<basename of PATH>:<REF or "latest">, made into a valid docker
// reference, for an image from a file. It returns "" when no valid name can be made; the image is
// then stored by ID only.
func localName(imageRef string) string {
	transport, rest, _ := strings.Cut(imageRef, ":")
	// The file transports split PATH and REF at the first colon (oci/internal.SplitPathAndImage).
	path, tag, _ := strings.Cut(rest, ":")
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	base := filepath.Base(path)
	if transport == "oci-archive" || transport == "docker-archive" {
		base = strings.TrimSuffix(base, ".tar")
	}
	repo := sanitizeRepo(base)
	tag = sanitizeTag(tag)
	if repo == "" {
		return ""
	}
	name := "localhost/" + repo + ":" + tag
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return ""
	}
	return named.String()
}

// sanitizeRepo turns s into one path component of a docker repository name:
// [a-z0-9]+ joined by ".", "_", "__" or runs of "-".
func sanitizeRepo(s string) string {
	var b strings.Builder
	sep := ""
	flush := func() {
		if b.Len() > 0 && sep != "" {
			switch {
			case sep == "." || sep == "_" || sep == "__" || strings.Trim(sep, "-") == "":
				b.WriteString(sep)
			default:
				b.WriteByte('-')
			}
		}
		sep = ""
	}
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			flush()
			b.WriteRune(r)
		case r == '.' || r == '_' || r == '-':
			sep += string(r)
		default:
			sep += "-"
		}
	}
	// A trailing separator is dropped: flush is only called before an alphanumeric.
	out := b.String()
	if len(out) > reference.NameTotalLengthMax-len("localhost/") {
		out = strings.TrimRight(out[:reference.NameTotalLengthMax-len("localhost/")], "._-")
	}
	return out
}

// sanitizeTag turns s into a docker tag, [\w][\w.-]{0,127}, or "latest" when nothing is left.
func sanitizeTag(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			b[i] = '-'
		}
	}
	out := strings.TrimLeft(string(b), ".-")
	if len(out) > 128 {
		out = out[:128]
	}
	if out == "" {
		return "latest"
	}
	return out
}
