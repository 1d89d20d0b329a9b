package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kite-runtime/kite/tests/imagebuild"
)

// bombWant is what the message of a refused bomb must say: the disk or its inodes ran out, or kite
// found the layer too big.
var bombWant = regexp.MustCompile(`(?i)no space left on device|too (big|large|many)|exceeds|limit|sparse file`)

// escapeSlack is how much free space the host's temporary filesystem may lose while a bomb is
// fetched: the writes of everything else on the machine meanwhile (other tests, builds) take
// hundreds of MiB on a busy one, so only a loss of a tenth of what the bomb expands to, and at
// least 1 GiB, counts. Smaller escapes are looked for where kite would write them: TMPDIR,
// /var/tmp and the user's home.
func escapeSlack(o imagebuild.BombOptions) int64 {
	return max(o.ZeroBytes/10, 1<<30)
}

// homeLimit is how much the test user's home (XDG directories, TMPDIR) may hold after a bomb:
// kite keeps a few small runtime files there, never layer data.
const homeLimit = 1 << 20

// TestRootfulBombs runs each decompression and inode bomb of tests/imagebuild, as the test user,
// on a small disk (48 MiB, 20000 inodes) that already holds a good image. The zero bombs expand
// to KITE_BOMB_GIB GiB (1 by default, 20 times the disk; 32 with KITE_HARDENING_DIR set), the
// inode bombs hold KITE_BOMB_INODES entries (100000, five times the disk's inodes; 500000 with
// KITE_HARDENING_DIR set), the sparse file claims 1 TiB. kite must either refuse the
// image (exit status 125, a message saying what ran out or was too big, and the store as it was:
// same listing, clean verify, no stray layer or temporary file) or contain it (stored and run
// within the small disk). Either way nothing may be written outside the data dir: the host's
// temporary filesystem keeps its free space (roughly), and TMPDIR and /var/tmp get nothing of
// kite's. The runs have a generous time limit as a safety net; how long they take is only logged.
func TestRootfulBombs(t *testing.T) {
	needRoot(t)
	gib, inodes := 1, 100000
	if os.Getenv("KITE_HARDENING_DIR") != "" {
		gib, inodes = 32, 500000
	}
	gib = envInt(t, "KITE_BOMB_GIB", gib)
	opts := imagebuild.BombOptions{
		Base:       busyboxEntries(t),
		ZeroBytes:  int64(gib) << 30,
		Inodes:     envInt(t, "KITE_BOMB_INODES", inodes),
		SparseSize: 1 << 40,
	}
	limit := 3*time.Minute + time.Duration(gib)*20*time.Second
	uid, gid := testUser(t)
	layouts := userDir(t, "", "kite-bombs-", uid, gid, 0o755)
	for _, c := range imagebuild.BombCases() {
		t.Run(c.Name, func(t *testing.T) {
			layout := filepath.Join(layouts, c.Name)
			if err := c.Write(layout, opts); err != nil {
				t.Fatalf("write the bomb: %v", err)
			}
			defer os.RemoveAll(layout)
			chownTree(t, layout, uid, gid)
			ref := "oci:" + layout + ":bomb"
			d := newSmallDisk(t, 48, 20000)
			d.want(t, "fetch", "-q", layoutRef("busybox"))

			before := listing(t, d.data)
			hostFree, _ := freeOn(t, os.TempDir())
			varTmp := entriesOf(t, "/var/tmp")
			began := time.Now()
			r := d.kite(t, limit, "run", ref, "--", "sh", "-c", "ls -ln / >/dev/null")
			took := time.Since(began)
			hostFreeAfter, _ := freeOn(t, os.TempDir())

			var escaped []string
			if lost := hostFree - hostFreeAfter; lost > escapeSlack(opts) {
				escaped = append(escaped, fmt.Sprintf("%s lost %d MiB of free space", os.TempDir(), lost>>20))
			}
			if used := treeSize(t, d.home); used > homeLimit {
				escaped = append(escaped, fmt.Sprintf("the user's home %s holds %d KiB", d.home, used>>10))
			}
			if left := d.tmpdirEntries(t); len(left) > 0 {
				escaped = append(escaped, fmt.Sprintf("TMPDIR holds %v", left))
			}
			for e := range entriesOf(t, "/var/tmp") {
				if !varTmp[e] {
					escaped = append(escaped, "/var/tmp/"+e+" is new")
				}
			}
			for _, e := range escaped {
				t.Errorf("ESCAPED: %s", e)
			}

			outcome, detail := "", ""
			switch r.Code {
			case 125:
				outcome, detail = "refused", tableCell(r.Stderr)
				if !bombWant.MatchString(r.Stderr) {
					t.Errorf("the refusal does not say what ran out or was too big: %q", r.Stderr)
				}
				if diffs := diffListings(before, listing(t, d.data)); len(diffs) > 0 {
					t.Errorf("the refused bomb changed the data dir:\n%s", strings.Join(diffs, "\n"))
				}
			case 0:
				outcome, detail = "contained", "stored and run within the small disk"
				free, inodes := freeOn(t, d.mnt)
				t.Logf("kite stored the bomb; the small disk has %d KiB and %d inodes free", free>>10, inodes)
				// The store must still be whole; the bomb goes again.
				d.want(t, "image", "rm", ref)
			default:
				outcome, detail = "FAILED", fmt.Sprintf("exit status %d: %s", r.Code, tableCell(r.Stderr))
				t.Errorf("want exit status 125 (refused) or 0 (contained), got %s", r)
			}
			if len(escaped) > 0 {
				outcome, detail = "ESCAPED", strings.Join(escaped, "; ")
			}
			t.Logf("%s after %s: %s", outcome, took.Round(time.Millisecond), detail)
			d.checkStoreClean(t)
			d.want(t, "run", "--pull-policy=never", layoutRef("busybox"), "--", "true")
			if t.Failed() && outcome != "ESCAPED" {
				outcome = "FAILED"
			}
			hardeningRow(t, "hostile-bombs.tsv", c.Name, bombSize(c.Name, opts), outcome, detail)
		})
	}
}

// bombSize describes what a bomb expands to, for the results table.
func bombSize(name string, o imagebuild.BombOptions) string {
	switch {
	case strings.HasPrefix(name, "inode"):
		return strconv.Itoa(o.Inodes) + " entries"
	case strings.HasPrefix(name, "sparse"):
		return strconv.FormatInt(o.SparseSize>>30, 10) + " GiB sparse"
	}
	return strconv.FormatInt(o.ZeroBytes>>30, 10) + " GiB of zeros"
}

// tableCell is the first line of s, for a table cell.
func tableCell(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.ReplaceAll(line, "\t", " ")
}

// entriesOf returns the names in dir (none when it does not exist).
func entriesOf(t *testing.T, dir string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, e := range entries {
		out[e.Name()] = true
	}
	return out
}

// chownTree gives everything below root to uid, so that the test user can read it.
func chownTree(t *testing.T, root string, uid, gid int) {
	t.Helper()
	err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// treeSize adds up the sizes of the regular files below root.
func treeSize(t *testing.T, root string) int64 {
	t.Helper()
	var total int64
	err := filepath.Walk(root, func(_ string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			total += info.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("measure %s: %v", root, err)
	}
	return total
}
