package imagestore

import (
	"strings"
	"testing"
)

func TestLocalName(t *testing.T) {
	for _, tc := range []struct{ ref, want string }{
		{"oci:/tmp/layout:tag", "localhost/layout:tag"},
		{"oci:/tmp/layout", "localhost/layout:latest"},
		{"oci:/tmp/layout/", "localhost/layout:latest"},
		{"oci:/tmp/My Image:V1.0", "localhost/my-image:V1.0"},
		{"oci:/tmp/a..b__c___d--e:t", "localhost/a-b__c-d--e:t"},
		{"oci:/tmp/-_.layout._-:tag", "localhost/layout:tag"},
		{"oci:/tmp/layout:.hidden/tag", "localhost/layout:hidden-tag"},
		{"oci:/tmp/layout:@0", "localhost/layout:0"},
		{"oci:/tmp/layout:...", "localhost/layout:latest"},
		{"oci:/tmp/ünïcode:tag", "localhost/n-code:tag"},
		{"oci-archive:/tmp/busybox.tar:1.36", "localhost/busybox:1.36"},
		{"oci-archive:/tmp/busybox.tar.gz", "localhost/busybox.tar.gz:latest"},
		{"oci:/:tag", ""},
		{"oci:/tmp/...:tag", ""},
		{"oci:/tmp/" + strings.Repeat("a", 300) + ":tag", "localhost/" + strings.Repeat("a", 245) + ":tag"},
		{"oci:/tmp/layout:" + strings.Repeat("t", 200), "localhost/layout:" + strings.Repeat("t", 128)},
	} {
		if got := localName(tc.ref); got != tc.want {
			t.Errorf("localName(%q) = %q, want %q", tc.ref, got, tc.want)
		}
	}
}

func TestParseReference(t *testing.T) {
	for _, tc := range []struct {
		ref     string
		wantErr string // "" for success
	}{
		{"oci:/tmp/layout:tag", ""},
		{"oci:/tmp/layout", ""},
		{"oci-archive:/tmp/x.tar:tag", ""},
		{"docker://busybox", ""},
		{"docker://registry.example:5000/team/app:1.2", ""},
		{"docker://registry.example/app@sha256:" + strings.Repeat("a", 64), ""},
		{"docker-archive:/tmp/x.tar", ""},
		{"docker-archive:/tmp/x.tar:app:1", ""},
		{"busybox", ""},
		{"registry.example:5000/team/app:1.2", ""},
		{"containers-storage:busybox", `transport "containers-storage" is not supported`},
		{"dir:/tmp/x", `transport "dir" is not supported`},
		{"docker:busybox", "expected docker://"},
		{"https://registry.example/app", "unknown transport"},
		{"/tmp/layout", "parse image reference"},
		{"Busybox", "parse image reference"},
		{"", "unknown transport"},
		{":x", "parse image reference"},
		{"oci:", "expected docker://"},
		{"oci-archive::tag", "expected docker://"},
		{"oci:/tmp/layout:Bad Tag!", "parse image reference"},
	} {
		_, err := ParseReference(tc.ref)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("ParseReference(%q): %v", tc.ref, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("ParseReference(%q) = %v, want an error containing %q", tc.ref, err, tc.wantErr)
		}
	}
}
