// Package e2e drives the built kite binaries as a black box, the way a user or a systemd unit
// would, and asserts what the app saw from inside the pod (through the probe in the test images)
// and the exact exit statuses.
//
// It needs KITE_BIN_DIR (kite, kite-stage1, kite-image and probe) and KITE_TEST_IMAGES (layout/,
// an OCI layout with the tags busybox, multilayer and user, and images.tar, an oci-archive of the
// same): `make build images` makes both, `make e2e` runs this suite through tests/scripts/e2e.sh.
// Tests named Rootful* need root; all others are meant for an unprivileged user with a
// /etc/subuid range. A missing host precondition skips a test with the reason, or fails it when
// KITE_CI is set.
package e2e

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

var (
	// binDir holds the binaries under test.
	binDir string
	// layoutDir is the OCI layout with the test images; archivePath is the same as an oci-archive.
	layoutDir, archivePath string
	// scratch holds every data dir and temporary file of this run, so that whatever a test cannot
	// delete (files the pod created as a subordinate uid) stays in one place the caller removes.
	scratch string
	// inCI turns missing host preconditions into failures.
	inCI bool
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	if err := findInputs(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n"+
			"e2e: build the binaries and the test images first: make build images\n"+
			"e2e: then run the suite with make e2e, or set KITE_BIN_DIR=<repo>/bin and KITE_TEST_IMAGES=<repo>/tests/out\n", err)
		return 1
	}
	inCI = os.Getenv("KITE_CI") != ""
	closeInheritedFDs()
	var err error
	if scratch, err = os.MkdirTemp("", "kite-e2e-"); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: create the scratch directory: %v (set TMPDIR to a directory you own)\n", err)
		return 1
	}
	code := m.Run()
	removeBestEffort(scratch)
	return code
}

// findInputs resolves KITE_BIN_DIR and KITE_TEST_IMAGES (by default bin/ and tests/out/ of the
// repository the test runs in) and checks that everything the suite runs is there.
func findInputs() error {
	binDir, layoutDir = os.Getenv("KITE_BIN_DIR"), ""
	images := os.Getenv("KITE_TEST_IMAGES")
	if binDir == "" || images == "" {
		root, err := repoRoot()
		if err != nil {
			return fmt.Errorf("KITE_BIN_DIR or KITE_TEST_IMAGES is not set and %w", err)
		}
		if binDir == "" {
			binDir = filepath.Join(root, "bin")
		}
		if images == "" {
			images = filepath.Join(root, "tests", "out")
		}
	}
	var err error
	if binDir, err = filepath.Abs(binDir); err != nil {
		return err
	}
	if images, err = filepath.Abs(images); err != nil {
		return err
	}
	layoutDir, archivePath = filepath.Join(images, "layout"), filepath.Join(images, "images.tar")
	var missing []string
	for _, name := range []string{"kite", "kite-stage1", "kite-image", "probe"} {
		p := filepath.Join(binDir, name)
		if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
			missing = append(missing, p+" (executable)")
		}
	}
	for _, p := range []string{filepath.Join(layoutDir, "index.json"), filepath.Join(layoutDir, "oci-layout"), archivePath} {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing: %s", strings.Join(missing, ", "))
	}
	return nil
}

// closeInheritedFDs marks every descriptor above stderr that the suite inherited close-on-exec,
// so that kite starts with exactly the descriptors a test gives it: what leaks into the app is
// then kite's doing, whatever shell or CI runner started the suite (TestInheritedFDsClosed covers
// a careless caller on purpose).
func closeInheritedFDs() {
	entries, _ := os.ReadDir("/proc/self/fd")
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
}

// repoRoot finds the kite repository above the working directory (go test runs in tests/e2e).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/kite-runtime/kite\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("the working directory is not inside the kite repository")
		}
		dir = parent
	}
}

// needHost reports a host precondition the test cannot run without: a skip that says why, or a
// failure in CI, where a skipped test would pass silently.
func needHost(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if inCI {
		t.Fatalf("host precondition missing (KITE_CI is set, so this fails): %s", msg)
	}
	t.Skipf("host precondition missing: %s", msg)
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// newDataDir returns a fresh, empty kite data dir for a test that inspects the store or needs a
// first fetch. It is removed, as far as the test user can, when the test ends. (t.TempDir cannot
// be used: it fails the test when it cannot delete files owned by subordinate uids.)
func newDataDir(t *testing.T) string {
	t.Helper()
	return newScratchDir(t, "data-")
}

// newScratchDir returns a fresh directory under scratch, removed when the test ends.
func newScratchDir(t *testing.T, prefix string) string {
	t.Helper()
	name := prefix + unsafeName.ReplaceAllString(t.Name(), "_") + "-"
	dir, err := os.MkdirTemp(scratch, name)
	if err != nil {
		t.Fatalf("create a scratch directory: %v", err)
	}
	t.Cleanup(func() { removeBestEffort(dir) })
	return dir
}

// removeBestEffort deletes what the current user can delete below path (making its own read-only
// directories writable first) and ignores the rest: files a pod created as a subordinate uid
// belong to ids the test user cannot act as. The caller of the suite removes the scratch root.
func removeBestEffort(path string) {
	st, err := os.Lstat(path)
	if err != nil {
		return
	}
	if st.IsDir() {
		if st.Mode().Perm()&0o700 != 0o700 {
			_ = os.Chmod(path, st.Mode().Perm()|0o700)
		}
		entries, _ := os.ReadDir(path)
		for _, e := range entries {
			removeBestEffort(filepath.Join(path, e.Name()))
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrPermission) && !errors.Is(err, fs.ErrNotExist) {
		// A non-empty directory whose entries belong to other ids: nothing more to do.
		return
	}
}

// sharedData is one data dir shared by the tests that do not inspect the store, so that each
// image is fetched only once per run.
var sharedData struct {
	once    sync.Once
	dir     string
	err     error
	fetched map[string]*fetchOnce
	mu      sync.Mutex
}

type fetchOnce struct {
	once sync.Once
	err  error
}

// sharedDir returns the shared data dir with the image tag already stored, so that the test's
// own run does no fetch (and prints nothing of it).
func sharedDir(t *testing.T, tag string) string {
	t.Helper()
	sharedData.once.Do(func() {
		sharedData.dir = filepath.Join(scratch, "shared")
		sharedData.err = os.Mkdir(sharedData.dir, 0o755)
		sharedData.fetched = map[string]*fetchOnce{}
	})
	if sharedData.err != nil {
		t.Fatalf("create the shared data dir: %v", sharedData.err)
	}
	sharedData.mu.Lock()
	f := sharedData.fetched[tag]
	if f == nil {
		f = &fetchOnce{}
		sharedData.fetched[tag] = f
	}
	sharedData.mu.Unlock()
	f.once.Do(func() { f.err = prefetch(sharedData.dir, tag) })
	if f.err != nil {
		t.Fatalf("store the image %s in the shared data dir: %v", tag, f.err)
	}
	return sharedData.dir
}

// prefetch stores the image by running /bin/true from it once.
func prefetch(dir, tag string) error {
	r, err := runKite(dir, nil, "run", "--exec", "/bin/true", layoutRef(tag))
	if err != nil {
		return err
	}
	if r.Code != 0 {
		return fmt.Errorf("kite run --exec /bin/true %s: %s", layoutRef(tag), r)
	}
	return nil
}

// layoutRef names a test image in the OCI layout.
func layoutRef(tag string) string { return "oci:" + layoutDir + ":" + tag }

// archiveRef names a test image in the oci-archive.
func archiveRef(tag string) string { return "oci-archive:" + archivePath + ":" + tag }
