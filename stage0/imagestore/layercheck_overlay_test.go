package imagestore

import (
	"archive/tar"
	"bytes"
	"strings"
	"testing"
)

// TestOverlayXattrsRefused checks that a layer may carry extended attributes, but none in
// overlayfs's namespaces, which would change what the pod's overlay shows.
func TestOverlayXattrsRefused(t *testing.T) {
	for _, tc := range []struct {
		xattr   string
		refused bool
	}{
		{"user.mime_type", false},
		{"security.capability", false},
		{"user.overlay.opaque", true},
		{"user.overlay.redirect", true},
		{"trusted.overlay.opaque", true},
		{"trusted.overlay.metacopy", true},
	} {
		var buf bytes.Buffer
		w := tar.NewWriter(&buf)
		hdr := &tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755, Format: tar.FormatPAX,
			PAXRecords: map[string]string{"SCHILY.xattr." + tc.xattr: "y"}}
		if err := w.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		_, err := checkEntries(tar.NewReader(&buf))
		if refused := err != nil; refused != tc.refused || refused && !strings.Contains(err.Error(), tc.xattr) {
			t.Errorf("%s: %v, want refused %v", tc.xattr, err, tc.refused)
		}
	}
}

// TestIsLayer checks which descriptor media types are checked as layers: every layer type, and
// none (docker schema 1 gives its layers no media type), but not a config's or an unknown one.
func TestIsLayer(t *testing.T) {
	for mt, want := range map[string]bool{
		"application/vnd.oci.image.layer.v1.tar+gzip":                  true,
		"application/vnd.oci.image.layer.v1.tar+zstd":                  true,
		"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": true,
		"application/vnd.docker.image.rootfs.diff.tar.gzip":            true,
		"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip":    true,
		"": true,
		"application/vnd.oci.image.config.v1+json":       false,
		"application/vnd.docker.container.image.v1+json": false,
		"application/vnd.kite-runtime.test.unknown":      false,
	} {
		if got := isLayer(mt); got != want {
			t.Errorf("isLayer(%q) = %v, want %v", mt, got, want)
		}
	}
}
