package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/kite-runtime/kite/tests/imagebuild"
	"github.com/kite-runtime/kite/tests/registry"
	"golang.org/x/sys/unix"
)

// hostileWant is what kite must do with each hostile image (tests/imagebuild's HostileCases).
type hostileWant struct {
	// mention is a pattern kite's message on stderr must match: the offending entry's name or the
	// inconsistency. It is matched with the paths of the test's layout (or archive), data dir and
	// canary replaced by LAYOUT, DATADIR and CANARY, since those paths hold the test's (and so
	// the case's) name.
	mention string
	// mayRun is set for images that are odd but harmless when their content stays inside the
	// root filesystem: kite may refuse them (exit 125, mention) or run them.
	mayRun bool
	// sound is set for images whose layers are valid, so that fetching them may store them; only
	// running them must fail.
	sound bool
	// layoutOnly, when set, says why the case is served only from its OCI layout.
	layoutOnly string
	// inside checks, for an image kite ran, from inside the pod that its content reaches nothing
	// beyond the pod; it returns what it saw, or an error that describes the escape.
	inside func(t *testing.T, pod podRunner) (string, error)
}

// podRunner runs an app of the hostile image, with run flags before the image.
type podRunner func(flags []string, app ...string) result

var hostileWants = map[string]hostileWant{
	"name-dotdot":              {mention: `written-by-dotdot-name`},
	"name-dotdot-inside":       {mention: `written-by-dotdot-inside-name`},
	"name-absolute":            {mention: `written-by-absolute-name`},
	"symlink-absolute-write":   {mention: `escape-abs`},
	"symlink-relative-write":   {mention: `escape-rel`},
	"symlink-parent-mkdir":     {mention: `escape-mkdir`},
	"symlink-then-file":        {mention: `victim-link|(?i)duplicate`},
	"dir-then-symlink":         {mention: `dir-then-link|(?i)duplicate`},
	"hardlink-dotdot":          {mention: `hardlink-dotdot|CANARY/victim`},
	"hardlink-dotdot-clamped":  {mention: `hardlink-dotdot-clamped|CANARY/victim`},
	"hardlink-absolute":        {mention: `hardlink-absolute|CANARY/victim`},
	"hardlink-through-symlink": {mention: `hardlink-through-symlink|hl-escape`},
	// A hard link to a symlink is one more symlink with the same target: tar writes hard-linked
	// symlinks that way, and inside the pod the target resolves within the root.
	"hardlink-to-escaping-symlink":   {mention: `hardlink-to-symlink|escape-victim`, mayRun: true},
	"whiteout-through-symlink":       {mention: `wh-link`},
	"whiteout-through-lower-symlink": {mention: `wh-lower-link`},
	"opaque-through-symlink":         {mention: `opq-link`},
	// The layers are sound: /etc is a symlink into a directory the image does not have, so the
	// image has no user database and its user cannot be found.
	"etc-symlink-user":         {mention: imagebuild.HostileEtcUser, sound: true},
	"layer-digest-mismatch":    {mention: `(?i)digest`},
	"config-digest-mismatch":   {mention: `(?i)digest`},
	"manifest-digest-mismatch": {mention: `(?i)digest`},
	"layer-size-short":         {mention: `(?i)\bsize\b`},
	"layer-size-long":          {mention: `(?i)\bsize\b`},
	"diff-id-mismatch":         {mention: `(?i)diff.?id`},
	"diff-id-missing":          {mention: `(?i)diff.?id|layers`},
	"platform-windows":         {mention: `windows`},
	"platform-s390x":           {mention: `s390x|arm64`},
	// The blob is in the layout (or the registry's repository): kite may use it and ignore the
	// URL, but never fetch it.
	"layer-external-url": {mention: `(?i)url|external`, mayRun: true},
}

// wantFor is the expectation of a case, from hostileWants or hostileFamilyWants.
func wantFor(name string) (hostileWant, bool) {
	if w, ok := hostileWants[name]; ok {
		return w, true
	}
	w, ok := hostileFamilyWants[name]
	return w, ok
}

// The canary's files. passwd and group name imagebuild.HostileEtcUser, so that a kite that
// resolves the image's user through a symlink on the host runs the app as canaryUID.
const canaryUID = 4242

var canaryFiles = map[string]string{
	"victim":   "the canary's victim: nothing may change, replace, link or hide it\n",
	"passwd":   fmt.Sprintf("%s:x:%d:%d:canary:/:/bin/sh\n", imagebuild.HostileEtcUser, canaryUID, canaryUID),
	"group":    fmt.Sprintf("%s:x:%d:\n", imagebuild.HostileEtcUser, canaryUID),
	"sub/file": "a file in a directory of the canary\n",
}

// TestHostileImages runs each hostile image against a data dir that already holds a good image,
// with a canary directory outside the data dir that the image's names, symlinks and hard links aim
// at, and an http server that the image names as a layer's external source. Each image is served
// from its OCI layout, from an oci-archive and from the loopback registry (all three for every
// case when KITE_HARDENING_DIR or KITE_HOSTILE_ALL is set, otherwise the layout for every case and
// the other two for hostileEverywhere). kite must refuse each image with exit status 125 and a
// message naming the problem, print nothing on stdout and leave the data dir as it was; the
// images marked mayRun it may run instead, and then what the pod sees is checked from inside.
// Either way the host stays as it was (hostSnapshot: the canary, kite's binaries, the mount
// table, what lies beside the data dir and the store), the server sees no request and kite's
// resident memory stays below hostileMaxRSS.
func TestHostileImages(t *testing.T) {
	testHostile(t, newDataDir, "")
}

// TestRootfulHostileVFS runs the hostile images as root against stores that use the vfs driver
// (data dirs on an overlayfs mount, as in TestRootfulVFS), which applies each layer onto a copy of
// the layers below it rather than into an empty directory.
func TestRootfulHostileVFS(t *testing.T) {
	needRoot(t)
	mnt := overlayScratch(t)
	testHostile(t, func(t *testing.T) string {
		t.Helper()
		dir, err := os.MkdirTemp(mnt, "data-")
		if err != nil {
			t.Fatal(err)
		}
		return dir
	}, " (root, vfs)")
}

// hostileMaxRSS bounds kite's resident memory (the largest of kite and what it waited for) on a
// hostile image: the huge documents are 24 MiB, and reading one whole, several times over, is
// what must not happen.
const hostileMaxRSS = 512 << 20

// hostileEverywhere are the cases the default run also serves from an oci-archive and from the
// registry: one or two of each family.
var hostileEverywhere = []string{
	"symlink-absolute-write", "whiteout-through-lower-symlink", "manifest-digest-mismatch",
	"layer-external-url", "pax-path-dotdot", "across-layers-symlink-write", "device-char-mem",
	"xattr-user-overlay-opaque", "mediatype-unknown-layer", "huge-manifest",
}

func hostileAllTransports() bool {
	return os.Getenv("KITE_HARDENING_DIR") != "" || os.Getenv("KITE_HOSTILE_ALL") != ""
}

func testHostile(t *testing.T, newDir func(*testing.T) string, flavor string) {
	var requests atomic.Int64
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.NotFound(w, r)
	}))
	defer server.Close()
	reg := startRegistry(t, registry.Options{})
	table := &hostileTable{flavor: flavor}
	defer table.print(t)

	// A data dir is used for one case after another as long as kite refuses them (and so leaves
	// it as it was); an image kite stored gets the next case a fresh one.
	var dir string
	freshDir := func(t *testing.T) string {
		dir = newDir(t)
		wantCode(t, runImage(t, dir, layoutRef("busybox"), "true"), 0, "the good image")
		return dir
	}
	parent := t
	for _, c := range imagebuild.HostileCases() {
		t.Run(c.Name, func(t *testing.T) {
			want, ok := wantFor(c.Name)
			if !ok {
				t.Fatalf("no expectation for the hostile case %s (%s): add it to hostileWants", c.Name, c.Problem)
			}
			canary := newCanary(t)
			src := &hostileSource{layout: filepath.Join(newScratchDir(t, "layout-"), "layout"), reg: reg}
			opts := imagebuild.HostileOptions{Tag: "hostile", Base: busyboxEntries(t), Canary: canary, URL: server.URL}
			if err := c.Write(src.layout, opts); err != nil {
				t.Fatalf("write the hostile image: %v", err)
			}
			for _, transport := range hostileTransports {
				if transport != viaLayout && (want.layoutOnly != "" || !hostileAllTransports() && !slices.Contains(hostileEverywhere, c.Name)) {
					continue
				}
				t.Run(transport, func(t *testing.T) {
					if dir == "" {
						freshDir(parent)
					}
					row := runHostileCase(t, c, want, src, transport, dir, canary, &requests)
					if row.stored {
						dir = ""
					}
					table.add(t, c.Name, transport, row)
				})
			}
		})
	}
}

// hostileRow is how one case ended through one transport.
type hostileRow struct {
	outcome, detail string
	// stored is set when kite may have changed the data dir.
	stored bool
}

func runHostileCase(t *testing.T, c imagebuild.HostileCase, want hostileWant, src *hostileSource, transport, dir, canary string, requests *atomic.Int64) hostileRow {
	ref := src.ref(t, transport, c.Name)
	o, global := src.options(transport)
	// The pods run without a network (--net none): the images are under test, not pasta, and
	// with a network a pod that fails to start is reported as pasta failing to join it.
	pod := func(flags []string, app ...string) result {
		args := append(append(append(slices.Clone(global), "run", "--net", "none"), flags...), ref)
		if len(app) > 0 {
			args = append(append(args, "--"), app...)
		}
		return kiteWith(t, dir, o, args...)
	}

	requests.Store(0)
	listingBefore := listing(t, dir)
	before := takeSnapshot(t, dir, canary)
	r, maxRSS := runMeasured(t, dir, o, append(slices.Clone(global), "run", "--net", "none", ref, "--", "true")...)
	row := hostileRow{stored: r.Code != 125}
	var escapes []string
	if r.Stdout != "" {
		t.Errorf("stdout is the app's, but kite printed %q", r.Stdout)
	}
	if maxRSS > hostileMaxRSS {
		t.Errorf("kite's resident memory reached %d MiB (bound %d MiB)", maxRSS>>20, hostileMaxRSS>>20)
	}
	switch {
	case r.Code == 125:
		row.outcome = "refused"
		msg := hostileMessage(r.Stderr, src, dir, canary)
		row.detail = lastLine(msg)
		t.Logf("refused: %s", strings.TrimSpace(r.Stderr))
		if !regexp.MustCompile(want.mention).MatchString(msg) {
			t.Errorf("stderr does not name the problem (%s, matching %q): %q", c.Problem, want.mention, msg)
		}
		if !want.sound {
			compareListings(t, listingBefore, withoutBlobInfoCache(listingBefore, listing(t, dir)))
		} else {
			row.stored = true
		}
	case r.Code == 0 && want.mayRun:
		row.outcome, row.detail = "contained", "ran"
		if want.inside != nil {
			seen, err := want.inside(t, pod)
			row.detail = seen
			if err != nil {
				escapes = append(escapes, "inside the pod: "+err.Error())
			}
		}
		if want.inside == nil {
			describeAccepted(t, dir, pod, listingBefore, listing(t, dir))
		}
	default:
		row.outcome, row.detail = "unexpected", fmt.Sprintf("exit status %d: %s", r.Code, lastLine(hostileMessage(r.Stderr, src, dir, canary)))
		t.Errorf("%s: want exit status 125, got %s", c.Problem, r)
		if r.Code == 0 {
			describeAccepted(t, dir, pod, listingBefore, listing(t, dir))
		}
	}
	if n := requests.Load(); n > 0 {
		escapes = append(escapes, fmt.Sprintf("kite sent %d requests to the external blob source the image named", n))
	}
	escapes = append(escapes, before.escapes(takeSnapshot(t, dir, canary))...)
	if len(escapes) > 0 {
		row.outcome, row.detail = "ESCAPED", strings.Join(escapes, "; ")
		t.Errorf("ESCAPE: %s:\n%s", c.Problem, strings.Join(escapes, "\n"))
	}
	if strings.HasPrefix(c.Name, "huge-") {
		row.detail += fmt.Sprintf(" (kite's maxrss %d MiB)", maxRSS>>20)
	}
	return row
}

// blobInfoCache is the image library's record of where it saw which blob (in a registry's
// repository, say). A fetch from a registry adds to it before any blob is checked; it names
// blobs, it holds none of them.
const blobInfoCache = "storage/blob-info-cache/blob-info-cache-v1.sqlite"

// withoutBlobInfoCache is after with the blob info cache as it was in before, if it was there.
func withoutBlobInfoCache(before, after map[string]string) map[string]string {
	if was, ok := before[blobInfoCache]; ok {
		after[blobInfoCache] = was
	}
	return after
}

// runMeasured runs kite to its end and returns, with the result, the largest resident set of
// kite and of the processes it waited for (getrusage's ru_maxrss, which wait4 reports for the
// child and its reaped descendants), in bytes.
func runMeasured(t *testing.T, dir string, o *options, args ...string) (result, int64) {
	t.Helper()
	p := start(t, dir, o, args...)
	r := finish(t, p)
	var maxRSS int64
	if ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		maxRSS = ru.Maxrss << 10
	}
	return r, maxRSS
}

// lastLine is the last line of kite's message: its error, after any warnings.
func lastLine(s string) string {
	s = strings.TrimSpace(s)
	s = s[strings.LastIndexByte(s, '\n')+1:]
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

var busyboxLayerOnce struct {
	once    sync.Once
	entries []imagebuild.Entry
	err     error
}

// busyboxEntries is the busybox layer of the test images, built the way mkimage builds it, so that
// the store already holds it after the good image and an image built on it adds only its own layers.
func busyboxEntries(t *testing.T) []imagebuild.Entry {
	t.Helper()
	b := &busyboxLayerOnce
	b.once.Do(func() {
		b.entries, b.err = imagebuild.BusyboxLayer(imagebuild.DefaultBusybox, filepath.Join(binDir, "probe"))
	})
	if b.err != nil {
		needHost(t, "the base layer of the hostile images: %v", b.err)
	}
	return b.entries
}

// newCanary returns a directory outside the data dir holding canaryFiles, writable by the test
// user and so by root of kite-image's user namespace: an escape is not stopped by permissions.
func newCanary(t *testing.T) string {
	t.Helper()
	canary := newScratchDir(t, "canary-")
	for name, content := range canaryFiles {
		p := filepath.Join(canary, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return canary
}

// canaryState describes the canary and everything below it: type, mode, owner, link count, size,
// modification and change times, extended attributes, symlink targets and the sha256 of files.
// The change time catches a hard link made and removed again, and a chmod or chown through a link.
func canaryState(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(root, p)
		if err != nil {
			out[rel] = "unreadable: " + err.Error()
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			out[rel] = "gone"
			return nil
		}
		desc := fmt.Sprintf("mode %o owner %d:%d links %d size %d mtime %d.%09d ctime %d.%09d xattrs [%s]",
			st.Mode, st.Uid, st.Gid, st.Nlink, st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec, xattrs(p))
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFREG:
			data, err := os.ReadFile(p)
			if err != nil {
				desc += " unreadable: " + err.Error()
			} else {
				sum := sha256.Sum256(data)
				desc += " sha256 " + hex.EncodeToString(sum[:])
			}
		case syscall.S_IFLNK:
			target, _ := os.Readlink(p)
			desc += " -> " + target
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatalf("describe the canary %s: %v", root, err)
	}
	return out
}

// xattrs lists the extended attributes of p (without following a symlink) with their values.
func xattrs(p string) string {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return ""
		}
		return "error: " + err.Error()
	}
	var out []string
	for name := range strings.SplitSeq(string(buf[:n]), "\x00") {
		if name == "" {
			continue
		}
		val := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(p, name, val)
		if err != nil {
			out = append(out, name+"=<"+err.Error()+">")
			continue
		}
		out = append(out, fmt.Sprintf("%s=%q", name, val[:m]))
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// compareCanary fails the test, loudly, if the canary changed, and reports whether it did.
func compareCanary(t *testing.T, before, after map[string]string) bool {
	t.Helper()
	diffs := diffListings(before, after)
	if len(diffs) == 0 {
		return false
	}
	t.Errorf("ESCAPE: the image changed the canary directory outside the data dir:\n%s", strings.Join(diffs, "\n"))
	return true
}

// layerPath matches a path of the data dir inside a stored layer (or, for vfs, a pod's copy of
// the image) and captures the path inside the image.
var layerPath = regexp.MustCompile(`^storage/(?:overlay/[0-9a-f]{64}/diff|vfs/dir/[0-9a-f]{64})/(.+)$`)

// describeAccepted logs where an image kite accepted put its hostile content: the entries of
// the store's layers that were not there before, by their path inside the image, and what an app
// sees of the image's top-level names and of its identity. The caller checks the host again
// afterwards: running the image must not change it either.
func describeAccepted(t *testing.T, dir string, pod podRunner, before, after map[string]string) {
	t.Helper()
	inImage := func(l map[string]string) map[string]string {
		out := map[string]string{}
		for p, desc := range l {
			if m := layerPath.FindStringSubmatch(p); m != nil {
				out["/"+m[1]] = desc
			}
		}
		return out
	}
	had := inImage(before)
	var stored []string
	for p, desc := range inImage(after) {
		if had[p] != desc {
			stored = append(stored, fmt.Sprintf("  %s  %s", p, desc))
		}
	}
	slices.Sort(stored)
	t.Logf("kite accepted the image; its layers now hold (paths inside the image):\n%s", strings.Join(stored, "\n"))
	r := pod(nil, "sh", "-c", "id; cd / && ls -lan | grep -v -e ' proc$' -e ' sys$' -e ' dev$'")
	t.Logf("inside the pod (exit status %d):\n%s%s", r.Code, r.Stdout, r.Stderr)
}
