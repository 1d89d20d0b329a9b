package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kite-runtime/kite/tests/registry"
)

// layoutLayers returns the layer digests of the test layout's image tag, bottom-most first.
func layoutLayers(t *testing.T, tag string) []string {
	t.Helper()
	var index struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(layoutDir, "index.json")), &index); err != nil {
		t.Fatal(err)
	}
	for _, m := range index.Manifests {
		if m.Annotations["org.opencontainers.image.ref.name"] != tag {
			continue
		}
		var manifest struct {
			Layers []struct {
				Digest string `json:"digest"`
			} `json:"layers"`
		}
		hex := strings.TrimPrefix(m.Digest, "sha256:")
		if err := json.Unmarshal(readFile(t, filepath.Join(layoutDir, "blobs", "sha256", hex)), &manifest); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, l := range manifest.Layers {
			out = append(out, l.Digest)
		}
		return out
	}
	t.Fatalf("no tag %s in the test layout", tag)
	return nil
}

// TestFetchKilled kills kite (SIGKILL, with its helpers) while it downloads a layer of a
// multi-layer image, then fetches again: the second fetch succeeds, the image runs, kite image
// verify finds nothing wrong, and the killed fetch's temporary files are gone.
func TestFetchKilled(t *testing.T) {
	layers := layoutLayers(t, "multilayer")
	for _, tc := range []struct {
		name  string
		layer string // the layer whose download is cut
		after int64
	}{
		// The lower layers are complete and stored when the kill comes.
		{"during the top layer", layers[len(layers)-1], 64},
		// Nothing is complete yet.
		{"during the bottom layer", layers[0], 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startRegistry(t, registry.Options{})
			e.push(t, "multilayer", "team/multi:1")
			dir := newDataDir(t)
			hold := e.reg.HoldBlob(tc.layer, tc.after)
			p := start(t, dir, e.opts, "--insecure-options=image", "fetch", e.ref("team/multi:1"))
			select {
			case <-hold.Reached():
			case <-time.After(waitTimeout):
				t.Fatalf("kite never reached the held layer: %s", p.stderr.String())
			}
			// The other layers are small; give their downloads a moment to be stored.
			time.Sleep(200 * time.Millisecond)
			p.kill()
			if r, _ := p.wait(); !r.Signaled || r.Code != 128+int(syscall.SIGKILL) {
				t.Fatalf("kite was not killed: %s", r)
			}
			hold.Release()
			// No record or image points at what the kill left half-done.
			if list := imageList(t, dir); len(list) != 0 {
				t.Errorf("after the kill the store lists %v, want no image", list)
			}
			r := e.kite(t, dir, "run", "--pull-policy=never", e.ref("team/multi:1"), "--", "true")
			wantCode(t, r, 125, "run the image whose fetch was killed, never pulling")

			id := wantID(t, e.kite(t, dir, "--insecure-options=image", "fetch", e.ref("team/multi:1")), "fetch after the kill")
			wantCode(t, e.kite(t, dir, "image", "verify"), 0, "verify after the kill")
			r = e.kite(t, dir, "run", "--pull-policy=never", e.ref("team/multi:1"), "--", "cat", "/opaque/new")
			wantCode(t, r, 0, "run the image fetched after the kill")
			list := imageList(t, dir)
			if len(list) != 1 || list[id].ID != id {
				t.Errorf("the store holds %v, want the one image", list)
			}
			if entries, err := os.ReadDir(filepath.Join(dir, "tmp")); err == nil && len(entries) > 0 {
				t.Errorf("temporary files of the killed fetch remain: %v", entries)
			}
			// What the killed fetch left in the store (complete lower layers) is now used, or
			// collected by gc; nothing is damaged.
			wantCode(t, e.kite(t, dir, "image", "gc"), 0, "gc")
		})
	}
}

// TestConcurrentFetches fetches one image from a slow registry in two kites at once: both
// succeed with the same image ID, and the store holds the image once.
func TestConcurrentFetches(t *testing.T) {
	e := startRegistry(t, registry.Options{})
	e.push(t, "multilayer", "team/multi:1")
	layers := layoutLayers(t, "multilayer")
	e.reg.FaultBlob(layers[0], registry.BlobFault{ChunkSize: 256 << 10, ChunkDelay: 20 * time.Millisecond})
	dir := newDataDir(t)

	var wg sync.WaitGroup
	results := make([]result, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := runKite(dir, e.opts, "--insecure-options=image", "fetch", e.ref("team/multi:1"))
			if err != nil {
				t.Error(err)
			}
			results[i] = r
		}()
	}
	wg.Wait()
	a := wantID(t, results[0], "first concurrent fetch")
	b := wantID(t, results[1], "second concurrent fetch")
	if a != b {
		t.Errorf("the concurrent fetches stored %s and %s, want one image", a, b)
	}
	if list := imageList(t, dir); len(list) != 1 {
		t.Errorf("the store holds %d images, want 1", len(list))
	}
	wantCode(t, e.kite(t, dir, "image", "verify"), 0, "verify after concurrent fetches")
}
