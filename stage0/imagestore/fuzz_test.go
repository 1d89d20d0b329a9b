package imagestore

// Fuzz targets for kite's own parsing of image references (the transports it supports, short
// names) and the local names it gives images from files. `make unit` runs their seeds; `make
// fuzz` fuzzes each for $(FUZZTIME).

import (
	"regexp"
	"strings"
	"testing"

	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/shortnames"
	"go.podman.io/image/v5/transports"
)

var referenceSeeds = []string{
	"oci:/tmp/layout:tag", "oci:/tmp/layout", "oci-archive:/tmp/x.tar:tag", "docker://busybox",
	"docker://registry.example:5000/team/app:1.2", "docker://registry.example/app@sha256:" + strings.Repeat("a", 64),
	"docker-archive:/tmp/x.tar", "docker-archive:/tmp/x.tar:app:1", "busybox", "registry.example:5000/team/app:1.2",
	"containers-storage:busybox", "dir:/tmp/x", "docker:busybox", "https://registry.example/app", "/tmp/layout", "Busybox",
	"", ":x", "oci:", "oci-archive::tag", "oci:/tmp/layout:Bad Tag!", "docker:///x", "docker://a:b:c", "oci:relative:t",
	"localhost/app:1", "app@sha256:" + strings.Repeat("0", 64), "oci:/tmp/layout:@0", "docker-archive:/x.tar:@1",
	"docker://" + strings.Repeat("a", 300), "a:b", "oci:/tmp/My Image:V1.0", "oci:/tmp/ünïcode:tag",
}

// FuzzParseReference checks ParseReference: a reference it accepts is of a transport kite
// supports, the one it names (docker without one), a nil reference is a short name given
// without a transport, and an accepted reference written back by the image library parses again
// to the same reference.
func FuzzParseReference(f *testing.F) {
	for _, s := range referenceSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := ParseReference(s)
		if err != nil {
			if ref != nil {
				t.Fatalf("ParseReference(%q) failed (%v) but returned %v", s, err, ref)
			}
			return
		}
		transport, _, hasColon := strings.Cut(s, ":")
		_, named := supportedTransports[transport]
		named = named && hasColon
		if ref == nil {
			if named || !shortnames.IsShortName(s) {
				t.Fatalf("ParseReference(%q) = nil, nil for what is no short name", s)
			}
			if _, err := reference.ParseNormalizedNamed(s); err != nil {
				t.Fatalf("ParseReference(%q) accepted a short name the library refuses: %v", s, err)
			}
			return
		}
		got := ref.Transport().Name()
		if _, ok := supportedTransports[got]; !ok {
			t.Fatalf("ParseReference(%q) = a reference of transport %q", s, got)
		}
		if named && got != transport || !named && got != "docker" {
			t.Fatalf("ParseReference(%q) = a reference of transport %q", s, got)
		}
		name := transports.ImageName(ref)
		again, err := ParseReference(name)
		if err != nil || again == nil || transports.ImageName(again) != name {
			t.Fatalf("ParseReference(%q) = %s; that parses to %v, %v", s, name, again, err)
		}
	})
}

var (
	repoComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	tagPattern    = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)
)

// FuzzLocalName checks the names of images from files: "" or a valid, normalized docker
// reference localhost/REPO:TAG, REPO one path component, for any reference and path.
func FuzzLocalName(f *testing.F) {
	for _, s := range referenceSeeds {
		f.Add(s)
	}
	for _, s := range []string{"oci:/tmp/a..b__c___d--e:t", "oci:/tmp/-_.layout._-:tag", "oci:/tmp/layout:.hidden/tag", "oci:/tmp/layout:...",
		"oci-archive:/tmp/busybox.tar.gz", "oci:/:tag", "oci:/tmp/...:tag", "oci:/tmp/" + strings.Repeat("a", 300) + ":tag",
		"oci:/tmp/" + strings.Repeat("a.", 200) + ":" + strings.Repeat("t", 200), "docker-archive:/tmp/A-.tar", "oci:.:x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		name := localName(s)
		if name == "" {
			return
		}
		named, err := reference.ParseNormalizedNamed(name)
		if err != nil || named.String() != name {
			t.Fatalf("localName(%q) = %q, not a normalized reference (%v)", s, name, err)
		}
		tagged, ok := named.(reference.NamedTagged)
		repo := reference.Path(named)
		if !ok || reference.Domain(named) != "localhost" || !repoComponent.MatchString(repo) || !tagPattern.MatchString(tagged.Tag()) {
			t.Fatalf("localName(%q) = %q: want localhost/REPO:TAG", s, name)
		}
	})
}
