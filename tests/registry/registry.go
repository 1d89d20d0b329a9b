// Package registry is the OCI/docker registry that kite's tests start for themselves: an
// in-process registry (go-containerregistry's pkg/registry) served over plain HTTP on
// 127.0.0.1, so pull tests never leave the machine.
//
// Around that registry it adds what the tests need and a real registry never does: optional basic
// auth, blobs served corrupted, cut short, slowly or held part-way until the test releases them,
// manifests served with other bytes, a log of requests, raw pushes of arbitrary bytes and cosign
// ("sigstore attachment") signatures that containers/image verifies.
//
// The package needs neither cgo nor kite's build tags, so the e2e test binary can link it.
package registry

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
)

// identityHeader carries a random token on every response, so Start can tell that the server
// answering on the port is this one and not some other process that raced for it.
const identityHeader = "X-Kite-Test-Registry"

// realm is the basic-auth realm announced in WWW-Authenticate.
const realm = "kite-test-registry"

// Options configure a Registry.
type Options struct {
	// Username and Password, when either is set, make every request need HTTP basic auth with
	// exactly these; other requests get 401 with a Basic challenge, which is what containers/image
	// answers with credentials.
	Username, Password string
	// Logf receives one line per request from the underlying registry (t.Logf fits; it is called
	// only from request handlers, and none runs once Close has returned). Nil discards the lines:
	// the e2e suite's output stays readable.
	Logf func(format string, args ...any)
}

// Request is one request the registry received.
type Request struct {
	Method string
	Path   string
	// Status is the response status, or 0 while the request is still being answered.
	Status int
}

// Registry is a running registry. Its methods are safe for concurrent use.
type Registry struct {
	opts   Options
	addr   string
	token  string
	srv    *http.Server
	inner  http.Handler
	blobs  ggcr.BlobHandler
	client *http.Client

	mu        sync.Mutex
	closed    bool
	done      chan struct{} // closed by Close: held and slow responses give up
	handlers  sync.WaitGroup
	requests  []Request
	faults    map[string]BlobFault
	holds     map[string]*Hold
	manifests map[string]servedManifest
}

// Start serves a new, empty registry on 127.0.0.1 with a port the kernel picks. It returns once a
// GET /v2/ has been answered by this very server.
func Start(opts Options) (*Registry, error) {
	token := make([]byte, 16)
	if _, err := rand.Read(token); err != nil {
		return nil, fmt.Errorf("registry token: %w", err)
	}
	blobs := ggcr.NewInMemoryBlobHandler()
	r := &Registry{
		opts:  opts,
		token: hex.EncodeToString(token),
		blobs: blobs,
		inner: ggcr.New(ggcr.Logger(newLogger(opts.Logf)), ggcr.WithBlobHandler(blobs)),
		// A transport of its own, so Close drops only this registry's idle connections.
		client:    &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone(), Timeout: time.Minute},
		done:      make(chan struct{}),
		faults:    make(map[string]BlobFault),
		holds:     make(map[string]*Hold),
		manifests: make(map[string]servedManifest),
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen on loopback: %w", err)
	}
	// Refuse anything but a loopback address with a real port: the tests promise never to serve
	// beyond this machine.
	tcp, ok := ln.Addr().(*net.TCPAddr)
	if !ok || !tcp.IP.IsLoopback() || tcp.Port == 0 {
		ln.Close()
		return nil, fmt.Errorf("listener address %v is not a loopback TCP port", ln.Addr())
	}
	r.addr = tcp.String()
	// The server's own error log stays on stderr: it reports panics in the handlers below, and
	// Logf may be a test's t.Logf, which must not be called once that test has ended.
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 10 * time.Second}
	go r.srv.Serve(ln)

	if err := r.checkIdentity(); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// checkIdentity makes one authenticated GET /v2/ and checks the answer carries this server's token.
func (r *Registry) checkIdentity() error {
	resp, err := r.do(http.MethodGet, "/v2/", "", nil)
	if err != nil {
		return fmt.Errorf("check registry on %s: %w", r.addr, err)
	}
	resp.Body.Close()
	if resp.Header.Get(identityHeader) != r.token {
		return fmt.Errorf("check registry on %s: another server answered GET /v2/ (%s)", r.addr, resp.Status)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("check registry on %s: GET /v2/: %s", r.addr, resp.Status)
	}
	return nil
}

// Addr is the registry's "127.0.0.1:PORT", the host part of image references.
func (r *Registry) Addr() string { return r.addr }

// Close stops the registry: it ends held and slow responses, closes every connection and returns
// once no request handler runs any more, so nothing logs after a test has finished.
func (r *Registry) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	close(r.done)
	r.mu.Unlock()
	err := r.srv.Close()
	r.handlers.Wait()
	r.client.CloseIdleConnections()
	return err
}

// Requests returns every request received so far, in arrival order.
func (r *Registry) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.requests...)
}

// BlobGETs counts the GET requests for blobs so far (any repository, any digest, any answer), so
// a test can check that a second pull downloaded nothing.
func (r *Registry) BlobGETs() int {
	n := 0
	for _, req := range r.Requests() {
		if _, kind, _, ok := splitPath(req.Path); ok && kind == "blobs" && req.Method == http.MethodGet {
			n++
		}
	}
	return n
}

// serve logs the request, checks credentials and applies the test's faults before handing the
// request to the in-process registry.
func (r *Registry) serve(w http.ResponseWriter, req *http.Request) {
	// Handlers only start while the registry is open, so Close's Wait never races an Add.
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		http.Error(w, "registry closed", http.StatusServiceUnavailable)
		return
	}
	r.handlers.Add(1)
	index := len(r.requests)
	r.requests = append(r.requests, Request{Method: req.Method, Path: req.URL.Path})
	r.mu.Unlock()
	defer r.handlers.Done()

	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		r.mu.Lock()
		r.requests[index].Status = sw.status
		r.mu.Unlock()
	}()
	sw.Header().Set(identityHeader, r.token)

	if !r.authorized(req) {
		sw.Header().Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", realm))
		writeError(sw, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
		return
	}
	if r.serveManifestOverride(sw, req) || r.serveFaultedBlob(sw, req) {
		return
	}
	r.inner.ServeHTTP(sw, req)
}

func (r *Registry) authorized(req *http.Request) bool {
	if r.opts.Username == "" && r.opts.Password == "" {
		return true
	}
	user, pass, ok := req.BasicAuth()
	return ok && user == r.opts.Username && pass == r.opts.Password
}

// writeError writes a distribution-spec error body, which clients show to the user.
func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`+"\n", code, message)
}

// splitPath splits "/v2/REPO/KIND/REF" into its parts; kind is "blobs", "manifests" or whatever
// else stands in that place (an upload's path splits into kind "uploads").
func splitPath(p string) (repo, kind, ref string, ok bool) {
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return "", "", "", false
	}
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return "", "", "", false
	}
	rest, ref = rest[:i], rest[i+1:]
	i = strings.LastIndexByte(rest, '/')
	if i <= 0 || ref == "" {
		return "", "", "", false
	}
	return rest[:i], rest[i+1:], ref, true
}

// statusWriter remembers the status of a response for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController flush through to the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// newLogger turns logf into the *log.Logger the in-process registry writes to.
func newLogger(logf func(string, ...any)) *log.Logger {
	if logf == nil {
		return log.New(io.Discard, "", 0)
	}
	return log.New(logfWriter(logf), "registry: ", 0)
}

type logfWriter func(string, ...any)

func (f logfWriter) Write(p []byte) (int, error) {
	f("%s", strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
