package imagebuild

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// topLayer decodes, with archive/tar (as the runtime's checker and store do), the top layer of
// the one image of the layout in dir.
func topLayer(t *testing.T, dir string) []tarEntry {
	t.Helper()
	e, err := readLayoutEdit(dir)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(e.blobPath(e.manifest.Layers[len(e.manifest.Layers)-1].Digest))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return readTar(t, bytes.NewReader(raw))
}

// TestHostileHeaderCases checks that a tar reader sees the hostile name or target that only the
// PAX record or GNU long-name block gives, and not the harmless ustar field beside it.
func TestHostileHeaderCases(t *testing.T) {
	base := []Entry{Dir("/bin", 0o755, 0, 0)}
	climb := Climbing(testCanary)
	for _, c := range []struct {
		write          func(string, HostileOptions) error
		name, linkname string
		typ            byte
	}{
		{HostilePAXPathDotDot, climb + "/written-by-pax-path", "", tar.TypeReg},
		{HostilePAXPathAbsolute, testCanary + "/written-by-pax-absolute", "", tar.TypeReg},
		{HostilePAXLinkpathHardlink, "pax-hardlink", climb + "/victim", tar.TypeLink},
		{HostilePAXLinkpathSymlinkWrite, "pax-link", testCanary, tar.TypeSymlink},
		{HostileGNULongNameDotDot, climb + "/written-by-gnu-longname", "", tar.TypeReg},
		{HostileGNULongNameAbsolute, testCanary + "/" + strings.Repeat("d", 120) + "/written-by-gnu-absolute", "", tar.TypeReg},
		{HostileGNULongLinkHardlink, "gnu-hardlink", climb + "/victim", tar.TypeLink},
		{HostileGNULongLinkSymlinkWrite, "gnu-link", climb, tar.TypeSymlink},
		{HostileRootDotSymlink, ".", testCanary, tar.TypeSymlink},
		{HostileRootSlashSymlink, "/", testCanary, tar.TypeSymlink},
		{HostileWhiteoutOfDotDot, ".wh...", "", tar.TypeReg},
		{HostileCharDevices, "hostile-dev-mem", "", tar.TypeChar},
		{HostileFIFODotDot, climb + "/fifo-by-dotdot", "", tar.TypeFifo},
	} {
		dir := filepath.Join(t.TempDir(), "layout")
		if err := c.write(dir, HostileOptions{Base: base, Canary: testCanary}); err != nil {
			t.Fatal(err)
		}
		entries := topLayer(t, dir)
		e, ok := find(entries, c.name)
		if !ok || e.hdr.Linkname != c.linkname || e.hdr.Typeflag != c.typ {
			var got []string
			for _, e := range entries {
				got = append(got, e.hdr.Name+" -> "+e.hdr.Linkname)
			}
			t.Errorf("no entry %q (type %c) -> %q in %q", c.name, c.typ, c.linkname, got)
		}
	}
}

// TestHostileSpecialCases checks the device numbers, modes and xattrs of the special files.
func TestHostileSpecialCases(t *testing.T) {
	base := []Entry{Dir("/usr/bin", 0o755, 0, 0), File("/usr/bin/probe", 0o755, 0, 0, []byte("probe"))}
	write := func(w func(string, HostileOptions) error) []tarEntry {
		dir := filepath.Join(t.TempDir(), "layout")
		if err := w(dir, HostileOptions{Base: base, Canary: testCanary}); err != nil {
			t.Fatal(err)
		}
		return topLayer(t, dir)
	}
	if e, ok := find(write(HostileCharDevices), "hostile-dev-mem"); !ok || e.hdr.Devmajor != 1 || e.hdr.Devminor != 1 {
		t.Errorf("hostile-dev-mem: %+v", e.hdr)
	}
	if e, ok := find(write(HostileSetuidRoot), "hostile-setuid"); !ok || e.hdr.Mode != 0o4755 || string(e.data) != "probe" {
		t.Errorf("hostile-setuid: %+v", e.hdr)
	}
	e, ok := find(write(HostileFileCapability), "hostile-file-caps")
	capability := e.hdr.PAXRecords["SCHILY.xattr.security.capability"]
	if !ok || len(capability) != 20 || capability[3] != 2 || capability[0] != 1 || capability[6]&(1<<(capSysAdmin-16)) == 0 {
		t.Errorf("hostile-file-caps: security.capability %x", capability)
	}
	if e, ok := find(write(HostileUserOpaque), "etc/"); !ok || e.hdr.PAXRecords["SCHILY.xattr.user.overlay.opaque"] != "y" {
		t.Errorf("etc/: %+v", e.hdr)
	}
}

// TestHostileManifestCases writes every document-level case and checks the few properties the
// e2e test relies on: the huge documents are huge, the cycles are cycles, the media types lie.
func TestHostileManifestCases(t *testing.T) {
	base := []Entry{Dir("/bin", 0o755, 0, 0)}
	for _, c := range manifestCases() {
		dir := filepath.Join(t.TempDir(), "layout")
		if err := c.Write(dir, HostileOptions{Base: base, Canary: testCanary}); err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		var index ocispec.Index
		readJSON(t, filepath.Join(dir, ocispec.ImageIndexFile), &index)
		top := index.Manifests[0]
		blob, err := os.ReadFile(LayoutBlobPath(dir, top.Digest))
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		var doc struct {
			MediaType string               `json:"mediaType"`
			Manifests []ocispec.Descriptor `json:"manifests"`
		}
		if err := json.Unmarshal(blob, &doc); err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		switch c.Name {
		case "huge-manifest", "huge-index":
			if len(blob) < HugeDocumentSize {
				t.Errorf("%s: %d bytes", c.Name, len(blob))
			}
		case "index-self-cycle":
			if len(doc.Manifests) != 1 || doc.Manifests[0].Digest != top.Digest {
				t.Errorf("%s: %s names %+v", c.Name, top.Digest, doc.Manifests)
			}
		case "index-mutual-cycle":
			other, err := os.ReadFile(LayoutBlobPath(dir, doc.Manifests[0].Digest))
			if err != nil || !strings.Contains(string(other), top.Digest.String()) {
				t.Errorf("%s: the second index does not name the first: %v", c.Name, err)
			}
		case "mediatype-index-as-manifest":
			if top.MediaType != ocispec.MediaTypeImageManifest || doc.MediaType != ocispec.MediaTypeImageIndex {
				t.Errorf("%s: descriptor %s, document %s", c.Name, top.MediaType, doc.MediaType)
			}
		case "mediatype-manifest-as-index":
			if top.MediaType != ocispec.MediaTypeImageIndex || doc.MediaType != ocispec.MediaTypeImageManifest {
				t.Errorf("%s: descriptor %s, document %s", c.Name, top.MediaType, doc.MediaType)
			}
		}
	}
}
