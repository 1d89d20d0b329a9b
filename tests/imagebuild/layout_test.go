package imagebuild

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// A static stand-in for the probe: these tests check the layout, not the probe, and must not
// need the Go toolchain.
const fakeProbe = DefaultBusybox

// image is one image of a layout as read back by readLayout.
type image struct {
	manifest ocispec.Manifest
	config   ocispec.Image
	layers   [][]tarEntry
}

type tarEntry struct {
	hdr  tar.Header
	data []byte
}

func standardLayout(t *testing.T) string {
	t.Helper()
	images, err := StandardImages(DefaultBusybox, fakeProbe)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	if err := WriteLayout(dir, images...); err != nil {
		t.Fatal(err)
	}
	return dir
}

// readLayout checks everything a consumer relies on: the oci-layout file, that every blob's sha256
// matches its name, that descriptors' sizes and media types are right and that diff_ids are the
// digests of the uncompressed layers. It returns the images by tag.
func readLayout(t *testing.T, dir string) map[string]image {
	t.Helper()
	var layout ocispec.ImageLayout
	readJSON(t, filepath.Join(dir, ocispec.ImageLayoutFile), &layout)
	if layout.Version != ocispec.ImageLayoutVersion {
		t.Errorf("imageLayoutVersion = %q", layout.Version)
	}

	blobDir := filepath.Join(dir, "blobs", "sha256")
	names, err := os.ReadDir(blobDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(blobDir, n.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if got := digest.FromBytes(data).Encoded(); got != n.Name() {
			t.Errorf("blob %s has sha256 %s", n.Name(), got)
		}
	}
	blob := func(d ocispec.Descriptor, mediaType string) []byte {
		t.Helper()
		if d.MediaType != mediaType {
			t.Errorf("descriptor %s has media type %q, want %q", d.Digest, d.MediaType, mediaType)
		}
		data, err := os.ReadFile(filepath.Join(blobDir, d.Digest.Encoded()))
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(data)) != d.Size {
			t.Errorf("descriptor %s has size %d, blob has %d bytes", d.Digest, d.Size, len(data))
		}
		return data
	}

	var index ocispec.Index
	readJSON(t, filepath.Join(dir, ocispec.ImageIndexFile), &index)
	if index.SchemaVersion != 2 || index.MediaType != ocispec.MediaTypeImageIndex {
		t.Errorf("index schemaVersion %d mediaType %q", index.SchemaVersion, index.MediaType)
	}
	images := make(map[string]image)
	for _, md := range index.Manifests {
		tag := md.Annotations[ocispec.AnnotationRefName]
		var img image
		if err := json.Unmarshal(blob(md, ocispec.MediaTypeImageManifest), &img.manifest); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(blob(img.manifest.Config, ocispec.MediaTypeImageConfig), &img.config); err != nil {
			t.Fatal(err)
		}
		if img.config.OS != "linux" || img.config.Architecture != runtime.GOARCH {
			t.Errorf("%s: platform %s/%s", tag, img.config.OS, img.config.Architecture)
		}
		if len(img.config.RootFS.DiffIDs) != len(img.manifest.Layers) || len(img.config.History) != len(img.manifest.Layers) {
			t.Fatalf("%s: %d layers, %d diff_ids, %d history entries", tag, len(img.manifest.Layers), len(img.config.RootFS.DiffIDs), len(img.config.History))
		}
		for i, ld := range img.manifest.Layers {
			zr, err := gzip.NewReader(bytes.NewReader(blob(ld, ocispec.MediaTypeImageLayerGzip)))
			if err != nil {
				t.Fatal(err)
			}
			raw, err := io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
			if d := digest.FromBytes(raw); d != img.config.RootFS.DiffIDs[i] {
				t.Errorf("%s layer %d: diff_id %s, uncompressed digest %s", tag, i, img.config.RootFS.DiffIDs[i], d)
			}
			img.layers = append(img.layers, readTar(t, bytes.NewReader(raw)))
		}
		images[tag] = img
	}
	return images
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
}

func readTar(t *testing.T, r io.Reader) []tarEntry {
	t.Helper()
	var entries []tarEntry
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return entries
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, tarEntry{*hdr, data})
	}
}

func find(entries []tarEntry, name string) (tarEntry, bool) {
	for _, e := range entries {
		if e.hdr.Name == name {
			return e, true
		}
	}
	return tarEntry{}, false
}

func TestStandardImages(t *testing.T) {
	images := readLayout(t, standardLayout(t))
	if len(images) != 3 {
		t.Fatalf("layout has images %v, want busybox, multilayer, user", slices.Sorted(maps.Keys(images)))
	}
	bb, ml, user := images[TagBusybox], images[TagMultilayer], images[TagUser]

	if len(bb.layers) != 1 || len(ml.layers) != 3 || len(user.layers) != 1 {
		t.Fatalf("layer counts busybox %d multilayer %d user %d, want 1 3 1", len(bb.layers), len(ml.layers), len(user.layers))
	}
	if ml.manifest.Layers[0].Digest != bb.manifest.Layers[0].Digest || user.manifest.Layers[0].Digest != bb.manifest.Layers[0].Digest {
		t.Error("multilayer and user do not share the busybox layer")
	}

	hostBusybox, err := os.ReadFile(DefaultBusybox)
	if err != nil {
		t.Fatal(err)
	}
	base := bb.layers[0]
	for _, c := range []struct {
		name       string
		typ        byte
		mode       int64
		uid, gid   int
		linkname   string
		wantData   []byte
		dataSubstr string
	}{
		{name: "bin/busybox", typ: tar.TypeReg, mode: 0o755, wantData: hostBusybox},
		{name: "usr/bin/probe", typ: tar.TypeReg, mode: 0o755},
		{name: "bin/sh", typ: tar.TypeSymlink, mode: 0o777, linkname: "busybox"},
		{name: "bin/ls", typ: tar.TypeSymlink, mode: 0o777, linkname: "busybox"},
		{name: "etc/passwd", typ: tar.TypeReg, mode: 0o644, dataSubstr: "kiteuser:x:1000:1000:kite user:/home/kiteuser:/bin/sh\n"},
		{name: "etc/group", typ: tar.TypeReg, mode: 0o644, dataSubstr: "kitegroup:x:2000:kiteuser\n"},
		{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		{name: "root/", typ: tar.TypeDir, mode: 0o700},
		{name: "home/kiteuser/", typ: tar.TypeDir, mode: 0o755, uid: 1000, gid: 1000},
		{name: "proc/", typ: tar.TypeDir, mode: 0o755},
		{name: "sys/", typ: tar.TypeDir, mode: 0o755},
		{name: "dev/", typ: tar.TypeDir, mode: 0o755},
		{name: "var/", typ: tar.TypeDir, mode: 0o755},
	} {
		e, ok := find(base, c.name)
		if !ok {
			t.Errorf("busybox layer has no %s", c.name)
			continue
		}
		h := e.hdr
		if h.Typeflag != c.typ || h.Mode != c.mode || h.Uid != c.uid || h.Gid != c.gid || h.Linkname != c.linkname {
			t.Errorf("%s: type %c mode %o owner %d:%d link %q; want type %c mode %o owner %d:%d link %q",
				c.name, h.Typeflag, h.Mode, h.Uid, h.Gid, h.Linkname, c.typ, c.mode, c.uid, c.gid, c.linkname)
		}
		if c.wantData != nil && !bytes.Equal(e.data, c.wantData) {
			t.Errorf("%s: content differs", c.name)
		}
		if !strings.Contains(string(e.data), c.dataSubstr) {
			t.Errorf("%s: content %q lacks %q", c.name, e.data, c.dataSubstr)
		}
	}
	// Strictly increasing names also mean no duplicates, e.g. no bin/busybox symlink to itself.
	for i := 1; i < len(base); i++ {
		if base[i-1].hdr.Name >= base[i].hdr.Name {
			t.Errorf("busybox layer not sorted: %q before %q", base[i-1].hdr.Name, base[i].hdr.Name)
		}
	}

	owned, ok := find(ml.layers[1], "data/owned-by-1000")
	if !ok || owned.hdr.Uid != 1000 || owned.hdr.Gid != 1000 || owned.hdr.Mode != 0o644 || string(owned.data) != "kite\n" {
		t.Errorf("multilayer layer 2 data/owned-by-1000 = %+v %q", owned.hdr, owned.data)
	}
	if d, ok := find(ml.layers[1], "data/"); !ok || d.hdr.Uid != 1000 || d.hdr.Mode != 0o755 {
		t.Errorf("multilayer layer 2 data/ = %+v", d.hdr)
	}
	for _, name := range []string{"data/gone", "opaque/old"} {
		if _, ok := find(ml.layers[1], name); !ok {
			t.Errorf("multilayer layer 2 has no %s", name)
		}
	}
	for _, name := range []string{"data/.wh.gone", "opaque/.wh..wh..opq", "opaque/new"} {
		if e, ok := find(ml.layers[2], name); !ok || e.hdr.Typeflag != tar.TypeReg {
			t.Errorf("multilayer layer 3 has no regular file %s", name)
		}
	}

	for _, c := range []struct {
		tag  string
		got  ocispec.ImageConfig
		want ocispec.ImageConfig
	}{
		{TagBusybox, bb.config.Config, ocispec.ImageConfig{Env: []string{defaultPath}, Cmd: []string{"/bin/sh"}}},
		{TagMultilayer, ml.config.Config, ocispec.ImageConfig{Env: []string{defaultPath, "KITE_IMAGE=multilayer"}, Cmd: []string{"/bin/sh"}, WorkingDir: "/data"}},
		{TagUser, user.config.Config, ocispec.ImageConfig{User: "kiteuser", Env: []string{defaultPath}, Entrypoint: []string{"/usr/bin/probe"}, Cmd: []string{"info"}, WorkingDir: "/home/kiteuser"}},
	} {
		got, _ := json.Marshal(c.got)
		want, _ := json.Marshal(c.want)
		if !bytes.Equal(got, want) {
			t.Errorf("%s config = %s, want %s", c.tag, got, want)
		}
	}
}

func TestDeterministic(t *testing.T) {
	a, b := standardLayout(t), standardLayout(t)
	for _, name := range []string{"index.json", "oci-layout"} {
		da, _ := os.ReadFile(filepath.Join(a, name))
		db, _ := os.ReadFile(filepath.Join(b, name))
		if !bytes.Equal(da, db) {
			t.Errorf("%s differs between two builds", name)
		}
	}
}

// TestCustomLayers checks that WriteLayout writes entries exactly as given, including ones a
// hostile image would carry.
func TestCustomLayers(t *testing.T) {
	entries := []Entry{
		{Name: "../escape", Type: tar.TypeReg, Mode: 0o4755, UID: 7, GID: 8, Content: []byte("x")},
		{Name: "/abs/path", Type: tar.TypeSymlink, Mode: 0o777, Linkname: "/etc/shadow"},
		{Name: "dev/null", Type: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
		{Name: "hard", Type: tar.TypeLink, Linkname: "../escape"},
		{Name: "fifo", Type: tar.TypeFifo, Mode: 0o600, UID: 70000, GID: 70000},
	}
	dir := t.TempDir()
	if err := WriteLayout(dir, Image{Tag: "hostile", Layers: [][]Entry{entries}}); err != nil {
		t.Fatal(err)
	}
	got := readLayout(t, dir)["hostile"].layers[0]
	if len(got) != len(entries) {
		t.Fatalf("got %d entries, want %d", len(got), len(entries))
	}
	for i, e := range entries {
		h := got[i].hdr
		if h.Name != e.Name || h.Typeflag != e.Type || h.Mode != e.Mode || h.Uid != e.UID || h.Gid != e.GID ||
			h.Linkname != e.Linkname || h.Devmajor != e.Devmajor || h.Devminor != e.Devminor || !bytes.Equal(got[i].data, e.Content) {
			t.Errorf("entry %d = %+v %q, want %+v", i, h, got[i].data, e)
		}
	}
}

func TestWriteLayoutErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteLayout(dir, Image{Tag: "a"}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("WriteLayout into a non-empty dir: %v", err)
	}
	if err := WriteLayout(t.TempDir(), Image{Tag: "a"}, Image{Tag: "a"}); err == nil {
		t.Error("WriteLayout with a duplicate tag succeeded")
	}
	if err := WriteLayout(t.TempDir(), Image{}); err == nil {
		t.Error("WriteLayout without a tag succeeded")
	}
}

func TestReplaceLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	first := Image{Tag: "one", Layers: [][]Entry{{File("/first", 0o644, 0, 0, []byte("1"))}}}
	second := Image{Tag: "two", Layers: [][]Entry{{File("/second", 0o644, 0, 0, []byte("2"))}}}
	if err := ReplaceLayout(dir, first); err != nil {
		t.Fatal(err)
	}
	if err := ReplaceLayout(dir, second); err != nil {
		t.Fatal(err)
	}
	images := readLayout(t, dir)
	if _, ok := images["two"]; !ok || len(images) != 1 {
		t.Errorf("after replace the layout has %v, want only two", slices.Sorted(maps.Keys(images)))
	}
	blobs, _ := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if len(blobs) != 3 {
		t.Errorf("after replace %d blobs, want 3 (layer, config, manifest): old blobs left behind", len(blobs))
	}
	if siblings, _ := os.ReadDir(filepath.Dir(dir)); len(siblings) != 1 {
		t.Errorf("temporary directories left beside the layout: %v", siblings)
	}

	notLayout := t.TempDir()
	keep := filepath.Join(notLayout, "precious")
	if err := os.WriteFile(keep, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ReplaceLayout(notLayout, second); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("ReplaceLayout over a non-layout directory: %v", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("the refused directory lost its file: %v", err)
	}
}

func TestWriteArchive(t *testing.T) {
	dir := standardLayout(t)
	archive := filepath.Join(t.TempDir(), "images.tar")
	if err := WriteArchive(dir, archive); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries := readTar(t, f)

	var want []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if rel, _ := filepath.Rel(dir, p); err == nil && !d.IsDir() {
			want = append(want, rel)
		}
		return err
	})
	for _, name := range want {
		e, ok := find(entries, name)
		if !ok {
			t.Errorf("archive has no %s", name)
			continue
		}
		data, _ := os.ReadFile(filepath.Join(dir, name))
		if !bytes.Equal(e.data, data) {
			t.Errorf("archive's %s differs from the layout's", name)
		}
	}
	for _, name := range []string{"index.json", "oci-layout", "blobs/", "blobs/sha256/"} {
		if _, ok := find(entries, name); !ok {
			t.Errorf("archive has no %s", name)
		}
	}
}

func TestBusyboxLayerErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "busybox")
	notELF := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	dynamic, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if !isDynamic(t, dynamic) {
		// The test binary is static when built without cgo; any dynamically linked tool will do.
		dynamic = "/bin/ls"
	}
	for _, c := range []struct {
		busybox, probe, want string
	}{
		{missing, fakeProbe, "does not exist; install the static build: apt-get install busybox-static"},
		{dynamic, fakeProbe, "is dynamically linked; install the static build: apt-get install busybox-static"},
		{notELF, fakeProbe, "not an ELF executable"},
		{DefaultBusybox, dynamic, "probe: " + dynamic + " is dynamically linked; build it with CGO_ENABLED=0"},
		{DefaultBusybox, missing, "probe: " + missing + " does not exist"},
	} {
		_, err := BusyboxLayer(c.busybox, c.probe)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("BusyboxLayer(%s, %s) = %v, want an error containing %q", c.busybox, c.probe, err, c.want)
		}
	}
}

func isDynamic(t *testing.T, path string) bool {
	t.Helper()
	_, err := readStatic(path)
	return err != nil && strings.Contains(err.Error(), "dynamically linked")
}

func TestWhiteoutNames(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{Whiteout("/data/gone").Name, "data/.wh.gone"},
		{Whiteout("top").Name, ".wh.top"},
		{Opaque("/opaque").Name, "opaque/.wh..wh..opq"},
		{Opaque("/a/b/").Name, "a/b/.wh..wh..opq"},
		{Dir("/a/b/", 0o755, 0, 0).Name, "a/b/"},
		{File("//x/../y", 0o644, 0, 0, nil).Name, "y"},
	} {
		if c.got != c.want {
			t.Errorf("name %q, want %q", c.got, c.want)
		}
	}
}
