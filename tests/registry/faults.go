package registry

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"
)

// defaultChunk is how much of a faulted blob is written at a time when BlobFault.ChunkSize is 0.
const defaultChunk = 32 << 10

// BlobFault changes how GET and HEAD of one blob digest are answered, in every repository. The
// response still claims the requested digest (Docker-Content-Digest), as a lying or broken
// registry would. The zero BlobFault serves the blob unchanged.
type BlobFault struct {
	// Body, when non-nil, is served instead of the stored bytes; the blob need not exist then.
	Body []byte
	// Corrupt inverts the last byte served: same length, another digest. (A gzip layer's last
	// bytes are its length and CRC trailer, so a reader that decompresses may notice first.)
	Corrupt bool
	// Truncate drops the connection once TruncateAt bytes of the blob have been sent, although the
	// headers announced all of it. A Range request is cut at the same offset of the blob, so a
	// client that reconnects to resume gets no further.
	Truncate   bool
	TruncateAt int64
	// ChunkDelay, when set, sends the blob ChunkSize bytes (default 32 KiB) at a time and waits
	// this long between pieces: a slow registry.
	ChunkSize  int
	ChunkDelay time.Duration
}

// FaultBlob makes the registry serve the blob with digest d ("sha256:…") as f says, replacing
// any fault set before.
func (r *Registry) FaultBlob(d string, f BlobFault) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults[d] = f
}

// ClearBlobFault serves the blob with digest d unchanged again.
func (r *Registry) ClearBlobFault(d string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.faults, d)
}

// Hold stops GET responses of one blob part-way until the test releases them, so a test can kill
// a client in the middle of a download.
type Hold struct {
	after       int64
	reached     chan struct{}
	reachedOnce sync.Once
	release     chan struct{}
	releaseOnce sync.Once
}

// HoldBlob makes every GET of the blob with digest d ("sha256:…") send its first `after` bytes,
// flush them to the client and then wait until Release (or until the client goes away or the
// registry closes). after must be less than the blob's size for the client to be left waiting.
// A previous hold of d is released.
func (r *Registry) HoldBlob(d string, after int64) *Hold {
	h := &Hold{after: after, reached: make(chan struct{}), release: make(chan struct{})}
	r.mu.Lock()
	old := r.holds[d]
	r.holds[d] = h
	r.mu.Unlock()
	if old != nil {
		old.Release()
	}
	return h
}

// Reached is closed when the first GET has sent its first bytes and waits at the hold point.
func (h *Hold) Reached() <-chan struct{} { return h.reached }

// Release lets the waiting responses, and any later ones, finish. It may be called more than once.
func (h *Hold) Release() { h.releaseOnce.Do(func() { close(h.release) }) }

// servedManifest is what ServeManifest serves in place of a stored manifest.
type servedManifest struct {
	mediaType string
	data      []byte
}

// ServeManifest makes GET and HEAD of repo's manifest reference (a tag or a digest) answer data
// with Content-Type mediaType, whatever is stored: for example bytes whose digest is not the one
// asked for. Docker-Content-Digest is the digest of data. A nil data serves the stored manifest
// again.
func (r *Registry) ServeManifest(repo, reference, mediaType string, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := repo + "/manifests/" + reference
	if data == nil {
		delete(r.manifests, key)
		return
	}
	r.manifests[key] = servedManifest{mediaType: mediaType, data: bytes.Clone(data)}
}

// serveManifestOverride answers req from ServeManifest's table, and reports whether it did.
func (r *Registry) serveManifestOverride(w http.ResponseWriter, req *http.Request) bool {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return false
	}
	repo, kind, ref, ok := splitPath(req.URL.Path)
	if !ok || kind != "manifests" {
		return false
	}
	r.mu.Lock()
	m, ok := r.manifests[repo+"/manifests/"+ref]
	r.mu.Unlock()
	if !ok {
		return false
	}
	w.Header().Set("Content-Type", m.mediaType)
	w.Header().Set("Content-Length", strconv.Itoa(len(m.data)))
	w.Header().Set("Docker-Content-Digest", digest.FromBytes(m.data).String())
	w.WriteHeader(http.StatusOK)
	if req.Method == http.MethodGet {
		w.Write(m.data)
	}
	return true
}

// serveFaultedBlob answers a GET or HEAD of a blob that has a fault or a hold, and reports whether
// it did; other requests go to the in-process registry.
func (r *Registry) serveFaultedBlob(w http.ResponseWriter, req *http.Request) bool {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return false
	}
	repo, kind, ref, ok := splitPath(req.URL.Path)
	if !ok || kind != "blobs" {
		return false
	}
	r.mu.Lock()
	fault, faulted := r.faults[ref]
	hold := r.holds[ref]
	r.mu.Unlock()
	if !faulted && hold == nil {
		return false
	}

	body := fault.Body
	if body == nil {
		stored, err := r.storedBlob(req, repo, ref)
		if err != nil {
			// Not stored or not a digest: the registry's own error answer is the right one.
			return false
		}
		body = stored
	}
	if fault.Corrupt && len(body) > 0 {
		body = bytes.Clone(body)
		body[len(body)-1] ^= 0xff
	}

	size := int64(len(body))
	start, end := int64(0), size
	status := http.StatusOK
	if rng := req.Header.Get("Range"); rng != "" {
		var ok bool
		if start, end, ok = parseRange(rng, size); !ok {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", size))
			writeError(w, http.StatusRequestedRangeNotSatisfiable, "BLOB_UNKNOWN", "range not satisfiable")
			return true
		}
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end-1, size))
		status = http.StatusPartialContent
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(end-start, 10))
	w.Header().Set("Docker-Content-Digest", ref)
	w.WriteHeader(status)
	if req.Method == http.MethodGet {
		r.writeBlob(w, req, body, start, end, fault, hold)
	}
	return true
}

// storedBlob returns the bytes the registry holds for digest ref.
func (r *Registry) storedBlob(req *http.Request, repo, ref string) ([]byte, error) {
	h, err := v1.NewHash(ref)
	if err != nil {
		return nil, err
	}
	rc, err := r.blobs.Get(req.Context(), repo, h)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// writeBlob writes body[start:end] as the fault and the hold say. Offsets are offsets into the
// whole blob, so Range requests meet the same cut and the same hold point.
func (r *Registry) writeBlob(w http.ResponseWriter, req *http.Request, body []byte, start, end int64, f BlobFault, hold *Hold) {
	chunk := int64(f.ChunkSize)
	if chunk <= 0 {
		chunk = defaultChunk
	}
	rc := http.NewResponseController(w)
	for pos := start; pos < end; {
		if hold != nil && pos >= hold.after {
			rc.Flush()
			if !r.waitRelease(req, hold) {
				return
			}
			hold = nil
		}
		if f.Truncate && pos >= f.TruncateAt {
			rc.Flush()
			// Aborting, rather than returning, closes the connection at once with no clean end,
			// as a dropped connection would.
			panic(http.ErrAbortHandler)
		}
		if f.ChunkDelay > 0 && pos > start {
			rc.Flush()
			if !r.sleep(req, f.ChunkDelay) {
				return
			}
		}
		next := min(end, pos+chunk)
		if hold != nil && pos < hold.after {
			next = min(next, hold.after)
		}
		if f.Truncate && pos < f.TruncateAt {
			next = min(next, f.TruncateAt)
		}
		if _, err := w.Write(body[pos:next]); err != nil {
			return
		}
		pos = next
	}
}

// waitRelease signals that a response reached the hold point and waits for Release. It reports
// false when the client went away or the registry closed first.
func (r *Registry) waitRelease(req *http.Request, h *Hold) bool {
	h.reachedOnce.Do(func() { close(h.reached) })
	select {
	case <-h.release:
		return true
	case <-req.Context().Done():
	case <-r.done:
	}
	return false
}

// sleep waits d, or reports false when the client went away or the registry closed first.
func (r *Registry) sleep(req *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-req.Context().Done():
	case <-r.done:
	}
	return false
}

// parseRange parses a single "bytes=FIRST-" or "bytes=FIRST-LAST" range of a blob of size bytes and
// returns it as [start, end).
func parseRange(h string, size int64) (start, end int64, ok bool) {
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found {
		return 0, 0, false
	}
	first, last, found := strings.Cut(spec, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(first, 10, 64)
	if err != nil || start < 0 || start >= size {
		return 0, 0, false
	}
	end = size
	if last != "" {
		l, err := strconv.ParseInt(last, 10, 64)
		if err != nil || l < start {
			return 0, 0, false
		}
		end = min(size, l+1)
	}
	return start, end, true
}
