package e2e

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kite-runtime/kite/tests/imagebuild"
	"github.com/kite-runtime/kite/tests/probe/report"
	"github.com/kite-runtime/kite/tests/registry"
)

// TestOCIArchive runs an image from an oci-archive.
func TestOCIArchive(t *testing.T) {
	dir := sharedDir(t, "busybox")
	r := runImage(t, dir, archiveRef("busybox"), "id")
	wantCode(t, r, 0, "id from an oci-archive")
	if !strings.HasPrefix(r.Stdout, "uid=0(root)") {
		t.Fatalf("id printed %q, want uid=0(root) ...", r.Stdout)
	}
}

// TestLayers checks the multilayer image as the app sees it: file owners other than root survive
// the store's id mapping, and the whiteout and the opaque directory of the top layer hide what
// the layers below hold.
func TestLayers(t *testing.T) {
	needSubIDs(t)
	checkLayers(t, sharedDir(t, "multilayer"))
}

// checkLayers is TestLayers in the data dir dir (the rootful test uses it too).
func checkLayers(t *testing.T, dir string) {
	t.Helper()
	stats := probeStat(t, dir, layoutRef("multilayer"), "/data/owned-by-1000", "/data", "/data/gone", "/opaque/old", "/opaque/new")
	for _, p := range []string{"/data/owned-by-1000", "/data"} {
		if s := stats[p]; s.Error != "" || s.UID != 1000 || s.GID != 1000 {
			t.Errorf("%s: %+v, want uid 1000 gid 1000", p, s)
		}
	}
	if s := stats["/data/owned-by-1000"]; s.Type != "file" || s.Mode != "0644" {
		t.Errorf("/data/owned-by-1000: %+v, want a file with mode 0644", s)
	}
	for _, p := range []string{"/data/gone", "/opaque/old"} {
		if s := stats[p]; !strings.Contains(s.Error, "no such file") {
			t.Errorf("%s: %+v, want it absent (whiteout / opaque directory ignored)", p, s)
		}
	}
	if s := stats["/opaque/new"]; s.Error != "" || s.Type != "file" {
		t.Errorf("/opaque/new: %+v, want a file", s)
	}
}

// TestImageUser runs the user image, whose config names kiteuser: the app runs as uid and gid
// 1000 with the supplementary group kitegroup (2000) from the image's /etc/group, and kiteuser's
// home.
func TestImageUser(t *testing.T) {
	needSubIDs(t)
	// No arguments: the image's Entrypoint and Cmd are `probe info`.
	dir := sharedDir(t, "user")
	checkUser(t, decodeInfo(t, runImage(t, dir, layoutRef("user"))))
}

func checkUser(t *testing.T, rep report.Report) {
	t.Helper()
	if rep.UID != 1000 || rep.EUID != 1000 || rep.GID != 1000 || rep.EGID != 1000 {
		t.Errorf("uid/euid/gid/egid = %d/%d/%d/%d, want 1000 for all", rep.UID, rep.EUID, rep.GID, rep.EGID)
	}
	if !slices.Contains(rep.Groups, 2000) {
		t.Errorf("groups = %v, want them to contain 2000 (kitegroup)", rep.Groups)
	}
	if !slices.Contains(rep.Env, "HOME=/home/kiteuser") {
		t.Errorf("env = %q, want HOME=/home/kiteuser", rep.Env)
	}
	if rep.Cwd != "/home/kiteuser" {
		t.Errorf("cwd = %q, want the image's WorkingDir /home/kiteuser", rep.Cwd)
	}
}

// TestZstdLayers runs an image whose layers are zstd-compressed, fetched from a layout and from a
// registry.
func TestZstdLayers(t *testing.T) {
	layout := filepath.Join(newScratchDir(t, "zstd-"), "layout")
	marker := imagebuild.File("zstd-marker", 0o644, 0, 0, []byte("decompressed from zstd\n"))
	err := imagebuild.WriteLayout(layout, imagebuild.Image{
		Tag:    "zstd",
		Layers: [][]imagebuild.Entry{busyboxEntries(t), {marker}},
		Zstd:   true,
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := newDataDir(t)
	r := runImage(t, dir, "oci:"+layout+":zstd", "cat", "/zstd-marker")
	if r.Code != 0 || r.Stdout != "decompressed from zstd\n" {
		t.Fatalf("run a zstd image from a layout: %s", r)
	}
	e := startRegistry(t, registry.Options{})
	if _, err := e.reg.PushLayout(layout, "zstd", "team/zstd:1"); err != nil {
		t.Fatal(err)
	}
	r = e.kite(t, newDataDir(t), "run", "--insecure-options=image", e.ref("team/zstd:1"), "--", "cat", "/zstd-marker")
	if r.Code != 0 || r.Stdout != "decompressed from zstd\n" {
		t.Fatalf("run a zstd image from a registry: %s", r)
	}
}
