package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// storedImage is one entry of `kite image list --format json`.
type storedImage struct {
	ID       string    `json:"id"`
	Names    []string  `json:"names"`
	Digest   string    `json:"digest"`
	Size     int64     `json:"size"`
	LastUsed time.Time `json:"lastUsed"`
	Pods     []string  `json:"pods"`
}

func imageList(t *testing.T, dir string) map[string]storedImage {
	t.Helper()
	r := kite(t, dir, "image", "list", "--format", "json")
	wantCode(t, r, 0, "image list")
	var list []storedImage
	if err := json.Unmarshal([]byte(r.Stdout), &list); err != nil {
		t.Fatalf("decode image list: %v\n%s", err, r)
	}
	out := map[string]storedImage{}
	for _, img := range list {
		out[img.ID] = img
	}
	return out
}

// TestFetchTransports fetches one image from each local transport, a docker archive made by kite
// image export included, and finds it by each name in list and inspect.
func TestFetchTransports(t *testing.T) {
	dir := newDataDir(t)
	r := kite(t, dir, "fetch", layoutRef("busybox"), archiveRef("multilayer"))
	wantCode(t, r, 0, "fetch two images")
	ids := strings.Fields(r.Stdout)
	if len(ids) != 2 {
		t.Fatalf("fetch printed %q, want two image IDs", r.Stdout)
	}
	list := imageList(t, dir)
	if got := list[ids[0]].Names; !slices.Contains(got, "localhost/layout:busybox") {
		t.Errorf("names of the layout image = %q, want localhost/layout:busybox", got)
	}
	if list[ids[1]].Size <= 0 || list[ids[1]].LastUsed.IsZero() {
		t.Errorf("multilayer image: %+v, want a size and a last use", list[ids[1]])
	}

	out := newScratchDir(t, "export-")
	docker := filepath.Join(out, "busybox-docker.tar")
	wantCode(t, kite(t, dir, "image", "export", ids[0][:12], "docker-archive:"+docker), 0, "export to a docker archive")
	other := newDataDir(t)
	r = kite(t, other, "fetch", "docker-archive:"+docker)
	wantCode(t, r, 0, "fetch the docker archive")
	if strings.TrimSpace(r.Stdout) != ids[0] {
		t.Errorf("the docker archive stored image %q, want the exported %s", r.Stdout, ids[0])
	}
	if got := imageList(t, other)[ids[0]].Names; !slices.Contains(got, "localhost/layout:busybox") {
		t.Errorf("the docker archive's image is named %q, want the exported name", got)
	}
	r = kite(t, other, "run", "--pull-policy=never", "localhost/layout:busybox", "--", "echo", "from the archive")
	if r.Code != 0 || r.Stdout != "from the archive\n" {
		t.Errorf("run the image fetched from the docker archive: %s", r)
	}

	for _, name := range []string{ids[0], ids[0][:8], "localhost/layout:busybox", layoutRef("busybox")} {
		r := kite(t, dir, "image", "inspect", name)
		wantCode(t, r, 0, "image inspect "+name)
		var info struct {
			ID       string          `json:"id"`
			Manifest json.RawMessage `json:"manifest"`
			Config   struct {
				Architecture string `json:"architecture"`
			} `json:"config"`
		}
		if err := json.Unmarshal([]byte(r.Stdout), &info); err != nil || info.ID != ids[0] || len(info.Manifest) == 0 || info.Config.Architecture == "" {
			t.Errorf("image inspect %s: %v\n%s", name, err, r)
		}
	}
	r = kite(t, dir, "image", "inspect", "nosuchimage")
	wantCode(t, r, 125, "inspect an image that is not stored")
}

// TestImageRemoveAndGC removes images by ID prefix and by name, refuses to remove the image of a
// running pod, and collects what no pod refers to.
func TestImageRemoveAndGC(t *testing.T) {
	dir := newDataDir(t)
	r := kite(t, dir, "fetch", layoutRef("busybox"), layoutRef("multilayer"), layoutRef("user"))
	wantCode(t, r, 0, "fetch three images")
	ids := strings.Fields(r.Stdout)

	p := start(t, dir, nil, runArgs(layoutRef("busybox"), "probe", "trap", "TERM")...)
	waitOutput(t, p, "ready")
	r = kite(t, dir, "image", "rm", ids[0][:12])
	wantCode(t, r, 125, "remove the image of a running pod")
	if !strings.Contains(r.Stderr, "running pod") {
		t.Errorf("stderr does not name the pod: %q", r.Stderr)
	}
	// kite forwards SIGTERM to the app, whose trap makes it exit.
	p.cmd.Process.Signal(syscall.SIGTERM)
	wantCode(t, finish(t, p), 0, "the trapping app after SIGTERM")

	r = kite(t, dir, "image", "rm", "localhost/layout:user")
	wantCode(t, r, 0, "remove by name")
	if strings.TrimSpace(r.Stdout) != ids[2] {
		t.Errorf("image rm printed %q, want %s", r.Stdout, ids[2])
	}
	r = kite(t, dir, "run", "--pull-policy=never", layoutRef("user"), "--", "true")
	wantCode(t, r, 125, "run a removed image, never pulling")

	// The busybox image has an (exited) pod; the multilayer one has none and goes.
	r = kite(t, dir, "image", "gc", "--grace-period", "0s")
	wantCode(t, r, 0, "image gc")
	if strings.TrimSpace(r.Stdout) != ids[1] {
		t.Errorf("image gc removed %q, want only the image no pod refers to, %s", r.Stdout, ids[1])
	}
	list := imageList(t, dir)
	if _, ok := list[ids[0]]; !ok || len(list) != 1 {
		t.Errorf("after gc the store holds %v, want only the busybox image", list)
	}
	r = kite(t, dir, "image", "gc")
	if r.Code != 0 || r.Stdout != "" {
		t.Errorf("image gc with the default grace period removed a fresh image: %s", r)
	}
}

// TestImageVerify damages a stored layer on disk and checks that kite image verify finds it,
// removes the damaged image, and that the image can be fetched and run again.
func TestImageVerify(t *testing.T) {
	for _, damage := range []string{"changed", "deleted"} {
		t.Run(damage, func(t *testing.T) {
			dir := newDataDir(t)
			wantCode(t, kite(t, dir, "fetch", layoutRef("busybox")), 0, "fetch")
			r := kite(t, dir, "image", "verify")
			if r.Code != 0 {
				t.Fatalf("verify of an intact store: %s", r)
			}
			victim := findLayerFile(t, dir, "etc/passwd")
			if damage == "changed" {
				if err := os.WriteFile(victim, []byte("root:x:0:0:changed:/:/bin/sh\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			} else if err := os.Remove(victim); err != nil {
				t.Fatal(err)
			}
			r = kite(t, dir, "image", "verify", "--format", "json")
			wantCode(t, r, 1, "verify a damaged store")
			var report []struct {
				ID      string   `json:"id"`
				Errors  []string `json:"errors"`
				Removed bool     `json:"removed"`
			}
			if err := json.Unmarshal([]byte(r.Stdout), &report); err != nil || len(report) != 1 || !report[0].Removed || len(report[0].Errors) == 0 {
				t.Fatalf("verify report: %v\n%s", err, r)
			}
			wantCode(t, kite(t, dir, "image", "verify"), 0, "verify after the repair")
			r = runImage(t, dir, layoutRef("busybox"), "grep", "-c", "^root:", "/etc/passwd")
			if r.Code != 0 || r.Stdout != "1\n" {
				t.Errorf("run after the repair: %s", r)
			}
		})
	}
}

// findLayerFile returns the path of rel in the store's layer directories.
func findLayerFile(t *testing.T, dir, rel string) string {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(dir, "storage", "*", "*", "diff", rel))
	if len(matches) == 0 {
		matches, _ = filepath.Glob(filepath.Join(dir, "storage", "vfs", "dir", "*", rel))
	}
	if len(matches) != 1 {
		t.Fatalf("found %d copies of %s in the store, want 1: %v", len(matches), rel, matches)
	}
	return matches[0]
}

// TestStorageDriverVFS makes a vfs store on request, runs from it, and refuses to switch the
// store's driver later.
func TestStorageDriverVFS(t *testing.T) {
	dir := newDataDir(t)
	wantCode(t, kite(t, dir, "--storage-driver", "vfs", "fetch", layoutRef("busybox")), 0, "fetch into a vfs store")
	if _, err := os.Stat(filepath.Join(dir, "storage", "vfs-layers")); err != nil {
		t.Fatalf("no vfs store: %v", err)
	}
	r := runImage(t, dir, layoutRef("busybox"), "echo", "from vfs")
	if r.Code != 0 || r.Stdout != "from vfs\n" {
		t.Errorf("run from the vfs store: %s", r)
	}
	// The pod ran on its own copy of the image, which the image cannot outlive; nothing is
	// removed, the record included.
	r = kite(t, dir, "image", "rm", "localhost/layout:busybox")
	wantCode(t, r, 125, "remove an image a vfs pod copied")
	if !strings.Contains(r.Stderr, "root filesystem of pod") {
		t.Errorf("stderr does not name the pod: %q", r.Stderr)
	}
	wantCode(t, kite(t, dir, "run", "--pull-policy=never", layoutRef("busybox"), "--", "true"), 0, "run after the refused rm")
	r = kite(t, dir, "--storage-driver", "overlay", "fetch", layoutRef("user"))
	wantCode(t, r, 125, "fetch with another driver")
	if !strings.Contains(r.Stderr, "never changes driver") {
		t.Errorf("stderr does not explain: %q", r.Stderr)
	}
}
