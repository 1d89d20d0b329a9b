package registry

import (
	"encoding/json"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kite-runtime/kite/tests/imagebuild"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var specsV2 = specs.Versioned{SchemaVersion: 2}

// start starts a registry that logs to the test and closes with it.
func start(t *testing.T, opts Options) *Registry {
	t.Helper()
	opts.Logf = t.Logf
	reg, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return reg
}

// smallLayout writes a one-layer image tagged "app" and returns the layout directory.
func smallLayout(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	// Random bytes do not compress: the layer blob stays about 64 KiB, several chunks long.
	rng := rand.New(rand.NewPCG(1, 2))
	content := make([]byte, 64<<10)
	for i := range content {
		content[i] = byte(rng.Uint32())
	}
	img := imagebuild.Image{
		Tag:    "app",
		Layers: [][]imagebuild.Entry{{imagebuild.File("data", 0o644, 0, 0, content)}},
		Config: ocispec.ImageConfig{Cmd: []string{"/data"}},
	}
	if err := imagebuild.WriteLayout(dir, img); err != nil {
		t.Fatal(err)
	}
	return dir
}

// layoutDigest returns the manifest digest index.json gives the image tagged tag.
func layoutDigest(t *testing.T, dir, tag string) string {
	t.Helper()
	var index ocispec.Index
	readJSONFile(t, filepath.Join(dir, "index.json"), &index)
	for _, m := range index.Manifests {
		if m.Annotations[ocispec.AnnotationRefName] == tag {
			return m.Digest.String()
		}
	}
	t.Fatalf("layout %s has no image tagged %q", dir, tag)
	return ""
}

func readJSONFile(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// get sends a GET (or HEAD) to the registry with the given headers and returns the response and
// the body read until it ended or failed.
func get(t *testing.T, reg *Registry, method, path string, header http.Header) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+reg.Addr()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if reg.opts.Username != "" {
		req.SetBasicAuth(reg.opts.Username, reg.opts.Password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// pushed pushes smallLayout's image as team/app:1.2 and returns its manifest.
func pushed(t *testing.T, reg *Registry) (manifestDigest string, m ocispec.Manifest) {
	t.Helper()
	dir := smallLayout(t)
	d, err := reg.PushLayout(dir, "app", "team/app:1.2")
	if err != nil {
		t.Fatal(err)
	}
	readJSONFile(t, filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")), &m)
	return d, m
}

func TestStartServesOnLoopback(t *testing.T) {
	reg := start(t, Options{})
	host, port, err := net.SplitHostPort(reg.Addr())
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("Addr() = %q, want 127.0.0.1:PORT", reg.Addr())
	}
	resp, _, err := get(t, reg, http.MethodGet, "/v2/", nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v2/: %v %v", resp.Status, err)
	}
	// Start's own check and this one.
	reqs := reg.Requests()
	if len(reqs) != 2 || reqs[1] != (Request{Method: "GET", Path: "/v2/", Status: 200}) {
		t.Errorf("Requests() = %+v", reqs)
	}
	if err := reg.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := http.Get("http://" + reg.Addr() + "/v2/"); err == nil {
		t.Error("registry still answers after Close")
	}
}

func TestPushLayoutKeepsManifestBytes(t *testing.T) {
	reg := start(t, Options{})
	dir := smallLayout(t)
	want := layoutDigest(t, dir, "app")
	got, err := reg.PushLayout(dir, "app", "team/app:1.2")
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("PushLayout digest = %s, layout has %s", got, want)
	}
	before := reg.BlobGETs()
	for _, ref := range []string{"1.2", want} {
		resp, body, err := get(t, reg, http.MethodGet, "/v2/team/app/manifests/"+ref, http.Header{"Accept": {ocispec.MediaTypeImageManifest}})
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET manifest %s: %s %v", ref, resp.Status, err)
		}
		if d := digest.FromBytes(body).String(); d != want {
			t.Errorf("manifest %s served with digest %s, want %s", ref, d, want)
		}
		if ct := resp.Header.Get("Content-Type"); ct != ocispec.MediaTypeImageManifest {
			t.Errorf("manifest %s Content-Type %q", ref, ct)
		}
	}
	if n := reg.BlobGETs() - before; n != 0 {
		t.Errorf("manifest GETs counted as %d blob GETs", n)
	}
	if _, err := reg.PushLayout(dir, "nosuchtag", "team/app:2"); err == nil {
		t.Error("PushLayout of a missing tag succeeded")
	}
	if _, err := reg.PushLayout(dir, "app", "team/app"); err == nil {
		t.Error("PushLayout without a tag succeeded")
	}
}

func TestBasicAuth(t *testing.T) {
	reg := start(t, Options{Username: "kite", Password: "s3cret"})
	resp, err := http.Get("http://" + reg.Addr() + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous GET /v2/: %s, want 401", resp.Status)
	}
	if h := resp.Header.Get("WWW-Authenticate"); h != `Basic realm="kite-test-registry"` {
		t.Errorf("WWW-Authenticate = %q", h)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+reg.Addr()+"/v2/", nil)
	req.SetBasicAuth("kite", "wrong")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /v2/ with a wrong password: %v %v", resp.Status, err)
	}

	d, _ := pushed(t, reg) // PushLayout authenticates with the registry's credentials
	if resp, _, err := get(t, reg, http.MethodGet, "/v2/team/app/manifests/"+d, nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("authenticated GET manifest: %v %v", resp.Status, err)
	}
	resp, err = http.Get("http://" + reg.Addr() + "/v2/team/app/manifests/" + d)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous GET manifest: %s, want 401", resp.Status)
	}
}

func TestRawPushes(t *testing.T) {
	reg := start(t, Options{})
	blob := []byte("not a layer")
	bd, err := reg.PutBlob("hostile/x", blob)
	if err != nil {
		t.Fatal(err)
	}
	if bd != digest.FromBytes(blob).String() {
		t.Errorf("PutBlob digest %s", bd)
	}
	if resp, body, err := get(t, reg, http.MethodGet, "/v2/hostile/x/blobs/"+bd, nil); err != nil || resp.StatusCode != http.StatusOK || string(body) != string(blob) {
		t.Errorf("GET blob: %v %q %v", resp.Status, body, err)
	}

	// An image manifest whose config and layer were never pushed is stored as given.
	missing := digest.FromString("never pushed")
	m, _ := json.Marshal(ocispec.Manifest{
		Versioned: specsV2,
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: missing, Size: 1},
		Layers:    []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: missing, Size: 1}},
	})
	md, err := reg.PutManifest("hostile/x", "dangling", ocispec.MediaTypeImageManifest, m)
	if err != nil {
		t.Fatalf("manifest with missing blobs: %v", err)
	}
	// So is any byte string under a digest that is not its own.
	junk := []byte("{not json")
	if _, err := reg.PutManifest("hostile/x", md, "application/vnd.oci.image.manifest.v1+json", junk); err != nil {
		t.Fatalf("junk under another digest: %v", err)
	}
	if resp, body, _ := get(t, reg, http.MethodGet, "/v2/hostile/x/manifests/"+md, nil); resp.StatusCode != http.StatusOK || string(body) != string(junk) {
		t.Errorf("GET manifest %s: %s %q, want the junk", md, resp.Status, body)
	}
	// An index is parsed, and the manifests it lists must be in the repository.
	idx, _ := json.Marshal(ocispec.Index{
		Versioned: specsV2,
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageManifest, Digest: missing, Size: 1}},
	})
	if _, err := reg.PutManifest("hostile/x", "idx", ocispec.MediaTypeImageIndex, idx); err == nil {
		t.Error("index listing a missing manifest was accepted")
	}
}

func TestCorruptAndReplacedBlob(t *testing.T) {
	reg := start(t, Options{})
	_, m := pushed(t, reg)
	layer := m.Layers[0]
	path := "/v2/team/app/blobs/" + layer.Digest.String()

	reg.FaultBlob(layer.Digest.String(), BlobFault{Corrupt: true})
	resp, body, err := get(t, reg, http.MethodGet, path, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET corrupted blob: %v %v", resp.Status, err)
	}
	if int64(len(body)) != layer.Size || digest.FromBytes(body) == layer.Digest {
		t.Errorf("corrupted blob: %d bytes with digest %s; want %d bytes, another digest", len(body), digest.FromBytes(body), layer.Size)
	}
	if h := resp.Header.Get("Docker-Content-Digest"); h != layer.Digest.String() {
		t.Errorf("Docker-Content-Digest = %q, want the requested digest", h)
	}

	reg.FaultBlob(layer.Digest.String(), BlobFault{Body: []byte("something else")})
	if _, body, _ := get(t, reg, http.MethodGet, path, nil); string(body) != "something else" {
		t.Errorf("replaced blob served %q", body)
	}

	reg.ClearBlobFault(layer.Digest.String())
	if _, body, _ := get(t, reg, http.MethodGet, path, nil); digest.FromBytes(body) != layer.Digest {
		t.Error("blob still faulted after ClearBlobFault")
	}
}

func TestServeManifest(t *testing.T) {
	reg := start(t, Options{})
	d, _ := pushed(t, reg)
	other := []byte(`{"schemaVersion":2}`)
	reg.ServeManifest("team/app", d, ocispec.MediaTypeImageManifest, other)
	resp, body, _ := get(t, reg, http.MethodGet, "/v2/team/app/manifests/"+d, nil)
	if string(body) != string(other) || resp.Header.Get("Docker-Content-Digest") != digest.FromBytes(other).String() {
		t.Errorf("ServeManifest: got %q (Docker-Content-Digest %s)", body, resp.Header.Get("Docker-Content-Digest"))
	}
	reg.ServeManifest("team/app", d, "", nil)
	if _, body, _ := get(t, reg, http.MethodGet, "/v2/team/app/manifests/"+d, nil); digest.FromBytes(body).String() != d {
		t.Error("stored manifest not served again after ServeManifest(nil)")
	}
}

func TestTruncatedBlob(t *testing.T) {
	reg := start(t, Options{})
	_, m := pushed(t, reg)
	layer := m.Layers[0]
	path := "/v2/team/app/blobs/" + layer.Digest.String()
	const cut = 1000
	reg.FaultBlob(layer.Digest.String(), BlobFault{Truncate: true, TruncateAt: cut})

	resp, body, err := get(t, reg, http.MethodGet, path, nil)
	if resp.ContentLength != layer.Size {
		t.Errorf("Content-Length %d, want the full %d", resp.ContentLength, layer.Size)
	}
	if len(body) != cut || err != io.ErrUnexpectedEOF {
		t.Errorf("truncated GET: %d bytes, %v; want %d bytes, unexpected EOF", len(body), err, cut)
	}
	// A client resuming at the cut gets nothing more.
	resp, body, err = get(t, reg, http.MethodGet, path, http.Header{"Range": {"bytes=1000-"}})
	if resp.StatusCode != http.StatusPartialContent || len(body) != 0 || err != io.ErrUnexpectedEOF {
		t.Errorf("resumed GET: %s, %d bytes, %v", resp.Status, len(body), err)
	}
	// Before the cut a range is served.
	resp, body, err = get(t, reg, http.MethodGet, path, http.Header{"Range": {"bytes=10-19"}})
	if resp.StatusCode != http.StatusPartialContent || len(body) != 10 || err != nil {
		t.Errorf("range before the cut: %s, %d bytes, %v", resp.Status, len(body), err)
	}
	if n := reg.BlobGETs(); n != 3 {
		t.Errorf("BlobGETs() = %d, want 3", n)
	}
}

func TestSlowBlob(t *testing.T) {
	reg := start(t, Options{})
	_, m := pushed(t, reg)
	layer := m.Layers[0]
	reg.FaultBlob(layer.Digest.String(), BlobFault{ChunkSize: 64, ChunkDelay: 20 * time.Millisecond})
	begin := time.Now()
	_, body, err := get(t, reg, http.MethodGet, "/v2/team/app/blobs/"+layer.Digest.String(), http.Header{"Range": {"bytes=0-255"}})
	if err != nil || len(body) != 256 {
		t.Fatalf("slow GET: %d bytes, %v", len(body), err)
	}
	if took := time.Since(begin); took < 60*time.Millisecond {
		t.Errorf("4 chunks with 3 pauses of 20ms took only %v", took)
	}
}

func TestHoldBlob(t *testing.T) {
	reg := start(t, Options{})
	_, m := pushed(t, reg)
	layer := m.Layers[0]
	const after = 4096
	hold := reg.HoldBlob(layer.Digest.String(), after)

	type result struct {
		body []byte
		err  error
	}
	firstBytes := make(chan int, 1)
	done := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + reg.Addr() + "/v2/team/app/blobs/" + layer.Digest.String())
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		head := make([]byte, after)
		n, err := io.ReadFull(resp.Body, head)
		firstBytes <- n
		if err != nil {
			done <- result{err: err}
			return
		}
		rest, err := io.ReadAll(resp.Body)
		done <- result{append(head, rest...), err}
	}()

	select {
	case <-hold.Reached():
	case <-time.After(10 * time.Second):
		t.Fatal("no GET reached the hold point")
	}
	if n := <-firstBytes; n != after {
		t.Fatalf("client read %d bytes before the hold, want %d", n, after)
	}
	select {
	case r := <-done:
		t.Fatalf("GET finished while held: %d bytes, %v", len(r.body), r.err)
	case <-time.After(200 * time.Millisecond):
	}
	hold.Release()
	select {
	case r := <-done:
		if r.err != nil || digest.FromBytes(r.body) != layer.Digest {
			t.Errorf("released GET: %d bytes, %v", len(r.body), r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("GET did not finish after Release")
	}
}

// A held response must not keep Close waiting: the e2e tests kill clients mid-download and
// close the registry with the response still held.
func TestCloseEndsHeldResponse(t *testing.T) {
	reg := start(t, Options{})
	_, m := pushed(t, reg)
	layer := m.Layers[0]
	hold := reg.HoldBlob(layer.Digest.String(), 10)
	go func() {
		resp, err := http.Get("http://" + reg.Addr() + "/v2/team/app/blobs/" + layer.Digest.String())
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	<-hold.Reached()
	closed := make(chan error, 1)
	go func() { closed <- reg.Close() }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for a held response")
	}
}

// An index entry of the layout is pushed as an index, its images first.
func TestPushLayoutIndex(t *testing.T) {
	reg := start(t, Options{})
	dir := smallLayout(t)
	var top ocispec.Index
	readJSONFile(t, filepath.Join(dir, "index.json"), &top)
	image := top.Manifests[0]
	image.Annotations = nil
	nested, err := json.Marshal(ocispec.Index{Versioned: specsV2, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{image}})
	if err != nil {
		t.Fatal(err)
	}
	nd := digest.FromBytes(nested)
	if err := os.WriteFile(filepath.Join(dir, "blobs", "sha256", nd.Encoded()), nested, 0o644); err != nil {
		t.Fatal(err)
	}
	top.Manifests = append(top.Manifests, ocispec.Descriptor{
		MediaType:   ocispec.MediaTypeImageIndex,
		Digest:      nd,
		Size:        int64(len(nested)),
		Annotations: map[string]string{ocispec.AnnotationRefName: "multi"},
	})
	b, err := json.Marshal(top)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}

	got, err := reg.PushLayout(dir, "multi", "team/multi:1")
	if err != nil {
		t.Fatal(err)
	}
	if got != nd.String() {
		t.Errorf("PushLayout digest %s, want %s", got, nd)
	}
	if resp, _, _ := get(t, reg, http.MethodGet, "/v2/team/multi/manifests/"+image.Digest.String(), nil); resp.StatusCode != http.StatusOK {
		t.Errorf("the index's image was not pushed: %s", resp.Status)
	}
}
