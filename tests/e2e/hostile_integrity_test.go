package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// hostSnapshot is what a hostile image must leave as it was on the host, recorded before kite
// runs it and compared afterwards: the canary directory it aims at, kite's own binaries, the mount
// table the test sees, and what lies beside the data dir and beside the store inside it.
type hostSnapshot struct {
	canary   map[string]string
	binaries map[string]string
	mounts   []string
	// dataSiblings are the entries of the data dir's parent; storeSiblings those of the data dir
	// itself, where the store (DATADIR/storage) lives beside kite's other directories.
	dataSiblings, storeSiblings []string
}

// kiteDataEntries are the entries kite itself makes in its data dir: a hostile image may make
// kite create one of these (e.g. run/ on a first fetch), never anything else.
var kiteDataEntries = []string{"images", "pods", "run", "seccomp", "storage"}

func takeSnapshot(t *testing.T, dataDir, canary string) hostSnapshot {
	t.Helper()
	return hostSnapshot{
		canary:        canaryState(t, canary),
		binaries:      binaryDigests(t),
		mounts:        mountTable(t),
		dataSiblings:  entryNames(t, filepath.Dir(dataDir)),
		storeSiblings: entryNames(t, dataDir),
	}
}

// escapes compares after with s and describes, one line each, every way the host changed: an
// escape from the image, whatever kite printed.
func (s hostSnapshot) escapes(after hostSnapshot) []string {
	var out []string
	for _, d := range diffListings(s.canary, after.canary) {
		out = append(out, "canary "+d)
	}
	for _, d := range diffListings(s.binaries, after.binaries) {
		out = append(out, "kite binary "+d)
	}
	for _, m := range setDiff(after.mounts, s.mounts) {
		if !otherSessionMount(m) {
			out = append(out, "mount table gained: "+m)
		}
	}
	for _, m := range setDiff(s.mounts, after.mounts) {
		if !otherSessionMount(m) {
			out = append(out, "mount table lost: "+m)
		}
	}
	for _, n := range setDiff(after.dataSiblings, s.dataSiblings) {
		out = append(out, "new beside the data dir: "+n)
	}
	for _, n := range setDiff(s.dataSiblings, after.dataSiblings) {
		out = append(out, "gone beside the data dir: "+n)
	}
	for _, n := range setDiff(after.storeSiblings, s.storeSiblings) {
		if !slices.Contains(kiteDataEntries, n) {
			out = append(out, "new beside the store (DATADIR/storage): "+n)
		}
	}
	for _, n := range setDiff(s.storeSiblings, after.storeSiblings) {
		out = append(out, "gone beside the store (DATADIR/storage): "+n)
	}
	return out
}

// setDiff lists what a has and b has not.
func setDiff(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// otherSessionMount reports whether a mount table line (mountTable's form) has its mount point
// in the system's temporary directory but outside this test's scratch directory: other test
// suites on a shared host mount their scratch filesystems there (a small tmpfs as a full disk, an
// overlay for a vfs store) while this test runs. Everything a hostile image names on the host
// (the canary) and everything of kite's (the data dir) lies inside this test's scratch directory,
// whose mounts are all compared, as are those outside /tmp.
func otherSessionMount(line string) bool {
	mountPoint, _, _ := strings.Cut(line, " ")
	inScratch := mountPoint == scratch || strings.HasPrefix(mountPoint, scratch+"/") || strings.HasPrefix(scratch, mountPoint+"/")
	return strings.HasPrefix(mountPoint, "/tmp/") && !inScratch
}

// digestCache keeps the sha256 of each binary by the stat fields that any change of its content
// changes: the kernel sets the change time on every write, chmod and rename, and nothing can set
// it back (utimensat sets only the access and modification times). Hashing ~50 MB of binaries
// twice per case would cost the suite most of its minute.
var digestCache = map[string]string{}

// binaryDigests is the sha256 of kite, kite-stage1 and kite-image in KITE_BIN_DIR.
func binaryDigests(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, name := range []string{"kite", "kite-stage1", "kite-image"} {
		p := filepath.Join(binDir, name)
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			out[name] = "unreadable: " + err.Error()
			continue
		}
		key := fmt.Sprintf("%s %d:%d size %d mtime %d.%d ctime %d.%d", p, st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
		if d, ok := digestCache[key]; ok {
			out[name] = d
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			out[name] = "unreadable: " + err.Error()
			continue
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			out[name] = "unreadable: " + err.Error()
			continue
		}
		out[name] = "sha256 " + hex.EncodeToString(h.Sum(nil))
		digestCache[key] = out[name]
	}
	return out
}

// mountTable is /proc/self/mountinfo as a sorted set of "MOUNTPOINT SOURCE FSTYPE OPTIONS
// SUPEROPTIONS": mount ids and parents are left out (they are the kernel's numbering), everything
// that says what is mounted where and how is kept.
func mountTable(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatalf("read the mount table: %v", err)
	}
	var out []string
	for line := range strings.Lines(string(data)) {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
		before, after, ok := strings.Cut(strings.TrimSpace(line), " - ")
		f, g := strings.Fields(before), strings.Fields(after)
		if !ok || len(f) < 6 || len(g) < 3 {
			t.Fatalf("unexpected mountinfo line %q", line)
		}
		out = append(out, fmt.Sprintf("%s %s %s %s %s root=%s", f[4], g[1], g[0], f[5], g[2], f[3]))
	}
	slices.Sort(out)
	return out
}

// entryNames lists the names in dir, sorted.
func entryNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("list %s: %v", dir, err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}
