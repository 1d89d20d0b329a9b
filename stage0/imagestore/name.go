package imagestore

import (
	"fmt"
	"path/filepath"
	"strings"

	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/transports/alltransports"
	"go.podman.io/image/v5/types"
)

// Transports kite-image fetches from. docker:// comes later; refusing the others keeps a user
// from storing an image from a transport kite has not been tested with (containers-storage:,
// docker-daemon:, dir:...).
var supportedTransports = map[string]bool{"oci": true, "oci-archive": true}

// ParseReference parses an image reference of the form TRANSPORT:REST, accepting only the
// transports kite supports.
func ParseReference(imageRef string) (types.ImageReference, error) {
	transport, rest, ok := strings.Cut(imageRef, ":")
	if !ok || transport == "" || strings.HasPrefix(rest, ":") || rest == "" {
		return nil, fmt.Errorf("parse image reference %q: expected oci:PATH[:REF] or oci-archive:PATH[:REF]", imageRef)
	}
	if !supportedTransports[transport] {
		return nil, fmt.Errorf("parse image reference %q: transport %q is not supported yet; use oci:PATH[:REF] or oci-archive:PATH[:REF]", imageRef, transport)
	}
	ref, err := alltransports.ParseImageName(imageRef)
	if err != nil {
		return nil, fmt.Errorf("parse image reference %q: %w", imageRef, err)
	}
	return ref, nil
}

// StoredName is the name an image fetched by imageRef is stored under:
// localhost/<basename of PATH>:<REF or "latest">, made into a valid docker reference. It returns ""
// when no valid name can be made; the image is then stored by ID only.
func StoredName(imageRef string) string {
	transport, rest, _ := strings.Cut(imageRef, ":")
	// The oci transports split PATH and REF at the first colon (oci/internal.SplitPathAndImage).
	path, tag, _ := strings.Cut(rest, ":")
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	base := filepath.Base(path)
	if transport == "oci-archive" {
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
