package imagestore

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kite-runtime/kite/stage0/rootview"
	digest "github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/types"
)

type entry struct {
	name     string
	typ      byte
	linkname string
}

func tarOf(t *testing.T, entries ...entry) *tar.Reader {
	t.Helper()
	var buf bytes.Buffer
	w := tar.NewWriter(&buf)
	for _, e := range entries {
		if err := w.WriteHeader(&tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.linkname, Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return tar.NewReader(&buf)
}

func TestCheckEntries(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []entry
		wantErr string // "" when the layer is fine
	}{
		{"plain", []entry{{"bin/", tar.TypeDir, ""}, {"bin/sh", tar.TypeReg, ""}, {"sh", tar.TypeLink, "bin/sh"}, {"./etc/x", tar.TypeReg, ""}}, ""},
		{"dotdot that stays inside", []entry{{"bin/../etc/x", tar.TypeReg, ""}}, ""},
		{"same directory twice", []entry{{"etc/", tar.TypeDir, ""}, {"etc", tar.TypeDir, ""}}, ""},
		{"symlink to outside, never written through", []entry{{"link", tar.TypeSymlink, "/etc"}}, ""},
		{"absolute name", []entry{{"/etc/x", tar.TypeReg, ""}}, "absolute name"},
		{"climbing name", []entry{{"bin/../../x", tar.TypeReg, ""}}, "climbs out"},
		{"write through a symlink", []entry{{"link", tar.TypeSymlink, "/etc"}, {"link/passwd", tar.TypeReg, ""}}, `lies below "link"`},
		{"whiteout through a symlink", []entry{{"a/link", tar.TypeSymlink, "/x"}, {"a/link/.wh.victim", tar.TypeReg, ""}}, `lies below "a/link"`},
		{"hard link to an absolute path", []entry{{"h", tar.TypeLink, "/etc/shadow"}}, "absolute name"},
		{"hard link climbing out", []entry{{"h", tar.TypeLink, "../x"}}, "climbs out"},
		{"hard link through a symlink", []entry{{"link", tar.TypeSymlink, "/"}, {"h", tar.TypeLink, "link/etc/shadow"}}, `points below "link"`},
		{"file then symlink", []entry{{"x", tar.TypeReg, ""}, {"x", tar.TypeSymlink, "/"}}, "appears twice"},
	} {
		_, err := checkEntries(tarOf(t, tc.entries...))
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.wantErr)
		}
	}
}

// TestCheckAgainstLowerLayers checks a layer's directories against a lower layer holding a
// symlink: going through it is refused, replacing it with a directory is not.
func TestCheckAgainstLowerLayers(t *testing.T) {
	lower := t.TempDir()
	if err := os.Symlink("/outside", filepath.Join(lower, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(lower, "usr", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	below := rootview.View{lower}
	check := func(entries ...entry) error {
		dirs, err := checkEntries(tarOf(t, entries...))
		if err != nil {
			t.Fatal(err)
		}
		return dirs.checkAgainst(below)
	}
	if err := check(entry{"link/.wh.victim", tar.TypeReg, ""}); err == nil || !strings.Contains(err.Error(), `below "link"`) {
		t.Errorf("whiteout through a lower symlink: %v", err)
	}
	if err := check(entry{"usr/bin/tool", tar.TypeReg, ""}, entry{"new/dir/file", tar.TypeReg, ""}); err != nil {
		t.Errorf("ordinary entries: %v", err)
	}
	if err := check(entry{"link/", tar.TypeDir, ""}, entry{"link/file", tar.TypeReg, ""}); err != nil {
		t.Errorf("a directory replacing the lower symlink: %v", err)
	}
}

// blobSource serves one blob, whatever is asked.
type blobSource struct {
	types.ImageSource
	blob []byte
}

func (s blobSource) GetBlob(context.Context, types.BlobInfo, types.BlobInfoCache) (io.ReadCloser, int64, error) {
	return io.NopCloser(bytes.NewReader(s.blob)), int64(len(s.blob)), nil
}

// TestCheckedSource reads blobs through checkedSource: a good layer streams whole, a bad one
// and a wrong size end the stream with an error that every later read repeats.
func TestCheckedSource(t *testing.T) {
	layer := func(entries ...entry) []byte {
		var buf bytes.Buffer
		w := tar.NewWriter(&buf)
		for _, e := range entries {
			w.WriteHeader(&tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.linkname, Mode: 0o644})
		}
		w.Close()
		return buf.Bytes()
	}
	good := layer(entry{"etc/", tar.TypeDir, ""}, entry{"etc/hostname", tar.TypeReg, ""})
	bad := layer(entry{"link", tar.TypeSymlink, "/"}, entry{"link/etc/shadow", tar.TypeReg, ""})
	read := func(blob []byte, size int64) ([]byte, error) {
		src := checkedSource{ImageSource: blobSource{blob: blob}, seen: &seenLayers{byDigest: map[digest.Digest]*layerDirs{}}}
		info := types.BlobInfo{Digest: digest.FromBytes(blob), Size: size, MediaType: "application/vnd.oci.image.layer.v1.tar"}
		rc, _, err := src.GetBlob(context.Background(), info, nil)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		data, err := io.ReadAll(rc)
		if err != nil {
			// A reader that ended with an error says so again.
			if _, again := rc.Read(make([]byte, 1)); again == nil || again.Error() != err.Error() {
				t.Errorf("a read after the error returned %v, want %v", again, err)
			}
		}
		return data, err
	}
	if data, err := read(good, int64(len(good))); err != nil || !bytes.Equal(data, good) {
		t.Errorf("good layer: %d bytes, %v", len(data), err)
	}
	if _, err := read(bad, int64(len(bad))); err == nil || !strings.Contains(err.Error(), `below "link"`) {
		t.Errorf("bad layer: %v", err)
	}
	if _, err := read(good, int64(len(good))+1); err == nil || !strings.Contains(err.Error(), "size") {
		t.Errorf("wrong size: %v", err)
	}
}
