package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kite-runtime/kite/tests/imagebuild"
	"golang.org/x/sys/unix"
)

// A small disk: a tmpfs of a few tens of MiB, owned by the unprivileged test user, on which kite
// runs unprivileged (its main mode) as that user while the test, as root, mounts, fills and
// inspects it. The tests using it are Rootful*, which tests/scripts/e2e.sh runs as root after the
// rootless suite, with KITE_TEST_USER naming the test user.

// smallDisk is one such tmpfs and the test user's environment around it.
type smallDisk struct {
	// mnt is the tmpfs's mount point; data, below it, is kite's --dir.
	mnt, data string
	uid, gid  int
	// home holds the user's HOME, XDG directories and TMPDIR, outside the tmpfs.
	home, tmpdir string
	env          []string
}

// testUser returns the unprivileged user the rootful small-disk tests run kite as.
func testUser(t *testing.T) (uid, gid int) {
	t.Helper()
	name := os.Getenv("KITE_TEST_USER")
	if name == "" {
		name = "kite-test"
	}
	u, err := user.Lookup(name)
	if err != nil {
		needHost(t, "no unprivileged test user %q to run kite as on the small disk (set KITE_TEST_USER): %v", name, err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	if uid == 0 {
		t.Fatalf("the test user %s is root", name)
	}
	return uid, gid
}

// newSmallDisk mounts a tmpfs of sizeMiB and at most inodes inodes for kite's data dir, owned by
// the test user, and unmounts it when the test ends. Needs root.
func newSmallDisk(t *testing.T, sizeMiB, inodes int) *smallDisk {
	t.Helper()
	needRoot(t)
	uid, gid := testUser(t)
	d := &smallDisk{uid: uid, gid: gid}
	// Outside the suite's scratch dir, which root made and the test user cannot enter.
	d.mnt = userDir(t, "", "kite-smalldisk-", uid, gid, 0o755)
	opts := fmt.Sprintf("size=%dm,nr_inodes=%d,mode=0700,uid=%d,gid=%d", sizeMiB, inodes, uid, gid)
	if err := unix.Mount("tmpfs", d.mnt, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		needHost(t, "mount a tmpfs for the small disk: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(d.mnt, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount the small disk: %v", err)
		}
		os.Remove(d.mnt)
	})
	d.data = filepath.Join(d.mnt, "data")
	d.home = userDir(t, "", "kite-smalldisk-home-", uid, gid, 0o700)
	d.tmpdir = userDir(t, d.home, "tmp-", uid, gid, 0o700)
	runtime := userDir(t, d.home, "run-", uid, gid, 0o700)
	d.env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + d.home,
		"TMPDIR=" + d.tmpdir,
		"XDG_RUNTIME_DIR=" + runtime,
		"XDG_CONFIG_HOME=" + filepath.Join(d.home, ".config"),
		"XDG_DATA_HOME=" + filepath.Join(d.home, ".local", "share"),
		"XDG_CACHE_HOME=" + filepath.Join(d.home, ".cache"),
	}
	return d
}

// userDir makes a directory below parent ("": the system's temporary directory) owned by uid,
// removed when the test ends.
func userDir(t *testing.T, parent, prefix string, uid, gid int, mode os.FileMode) string {
	t.Helper()
	dir, err := os.MkdirTemp(parent, prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	return dir
}

// kite runs `kite --dir DATA ARGS...` as the test user, in a process group of its own that is
// killed after limit: a safety net, not a measure.
func (d *smallDisk) kite(t *testing.T, limit time.Duration, args ...string) result {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "kite"), append([]string{"--dir", d.data}, args...)...)
	cmd.Env = d.env
	cmd.Dir = d.home
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:    true,
		Credential: &syscall.Credential{Uid: uint32(d.uid), Gid: uint32(d.gid), Groups: []uint32{}},
	}
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start kite as the test user: %v", err)
	}
	var timedOut atomic.Bool
	timer := time.AfterFunc(limit, func() {
		timedOut.Store(true)
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	})
	err := cmd.Wait()
	timer.Stop()
	r := result{Stdout: stdout.String(), Stderr: stderr.String()}
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	var ee *exec.ExitError
	switch {
	case ws.Signaled():
		r.Code, r.Signaled = 128+int(ws.Signal()), true
	case err == nil || errors.As(err, &ee):
		r.Code = ws.ExitStatus()
	default:
		t.Fatalf("kite %s: %v", strings.Join(args, " "), err)
	}
	if timedOut.Load() {
		t.Errorf("kite %s did not end within %s and was killed: %s", strings.Join(args, " "), limit, r)
	}
	return r
}

// want runs kite as the test user and fails the test unless it exits 0.
func (d *smallDisk) want(t *testing.T, args ...string) result {
	t.Helper()
	r := d.kite(t, runTimeout, args...)
	wantCode(t, r, 0, "kite "+strings.Join(args, " "))
	return r
}

// free returns the bytes and inodes free on the filesystem of path.
func freeOn(t *testing.T, path string) (bytes, inodes int64) {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		t.Fatalf("statfs %s: %v", path, err)
	}
	return int64(st.Bavail) * st.Bsize, int64(st.Ffree)
}

// fill makes a file on the small disk, outside the data dir, that leaves about leave bytes free,
// and returns a function that removes it again.
func (d *smallDisk) fill(t *testing.T, leave int64) func() {
	t.Helper()
	free, _ := freeOn(t, d.mnt)
	p := filepath.Join(d.mnt, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if size := free - leave; size > 0 {
		if err := unix.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
			t.Fatalf("fill the small disk: %v", err)
		}
	}
	return func() {
		if err := os.Remove(p); err != nil {
			t.Errorf("free the small disk: %v", err)
		}
	}
}

// noSpace matches kite's message for a full disk: the system's words for ENOSPC.
var noSpace = regexp.MustCompile(`(?i)no space left on device|disk quota exceeded`)

// wantRefusedForSpace checks a refusal for lack of space: exit status 125 and a message that says
// so and names where (a path on the small disk).
func (d *smallDisk) wantRefusedForSpace(t *testing.T, r result, what string) {
	t.Helper()
	if r.Code != 125 {
		t.Errorf("%s on a full disk: want exit status 125, got %s", what, r)
		return
	}
	if !noSpace.MatchString(r.Stderr) || !strings.Contains(r.Stderr, d.mnt) {
		t.Errorf("%s on a full disk: the message does not say that the disk is full and where: %q", what, r.Stderr)
	}
}

// checkStoreClean is checkClean of torture_test.go for the small disk: no pod left once gc has
// run, no stray layer, no fetch leftovers, no process, no mount below the data dir.
func (d *smallDisk) checkStoreClean(t *testing.T) {
	t.Helper()
	r := d.kite(t, runTimeout, "image", "verify")
	if r.Code != 0 {
		t.Errorf("kite image verify: want a clean store, got %s", r)
	}
	d.want(t, "gc", "--grace-period", "0", "--expire-prepared", "0s")
	d.want(t, "image", "gc")
	p := &problems{t: t, what: "the small disk's data dir"}
	p.checkClean(d.data, "")
}

// tmpdirEntries lists what is in the test user's TMPDIR: kite writes its temporary files below
// its data dir, never there.
func (d *smallDisk) tmpdirEntries(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(d.tmpdir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// TestRootfulFullDisk fills the small disk under kite fetch and under kite run, as the test user.
func TestRootfulFullDisk(t *testing.T) {
	t.Run("fetch", testFullDiskFetch)
	t.Run("run", testFullDiskRun)
}

// testFullDiskFetch fetches an image of two 4 MiB layers of random data with about 6 MiB free: the
// fetch fails with exit status 125 and a message saying the disk is full and where, and leaves
// the store as it was (the image stored before still verifies and runs, no half-written image
// or layer). Once the disk has room again, the same fetch succeeds.
func testFullDiskFetch(t *testing.T) {
	d := newSmallDisk(t, 48, 20000)
	d.want(t, "fetch", "-q", layoutRef("busybox"))
	layout := filepath.Join(userDir(t, "", "kite-bigimage-", d.uid, d.gid, 0o755), "layout")
	if err := imagebuild.BigImage(layout, "big", busyboxEntries(t), 2, 4<<20, 1); err != nil {
		t.Fatalf("write the big image: %v", err)
	}
	ref := "oci:" + layout + ":big"
	before := listing(t, d.data)
	unfill := d.fill(t, 6<<20)
	r := d.kite(t, runTimeout, "fetch", "-q", ref)
	d.wantRefusedForSpace(t, r, "kite fetch")
	ok := r.Code == 125
	if list := d.want(t, "image", "list", "--quiet").Stdout; len(strings.Fields(list)) != 1 {
		t.Errorf("after the failed fetch the store lists %q, want the busybox image alone", list)
		ok = false
	}
	if diffs := diffListings(before, listing(t, d.data)); len(diffs) > 0 {
		t.Errorf("the failed fetch changed the data dir:\n%s", strings.Join(diffs, "\n"))
		ok = false
	}
	d.checkStoreClean(t)
	d.want(t, "run", "--pull-policy=never", layoutRef("busybox"), "--", "true")
	unfill()
	d.want(t, "fetch", "-q", ref)
	r = d.want(t, "run", "--pull-policy=never", ref, "--", "sh", "-c", "wc -c < /random-0; wc -c < /random-1")
	if r.Stdout != "4194304\n4194304\n" {
		t.Errorf("the big image after the disk had room: want two 4 MiB files, got %q", r.Stdout)
		ok = false
	}
	d.checkStoreClean(t)
	if left := d.tmpdirEntries(t); len(left) > 0 {
		t.Errorf("kite left %v in TMPDIR", left)
	}
	hardeningRow(t, "torture.tsv", "full-disk-fetch", "1", boolCount(ok && !t.Failed()), boolCount(!ok || t.Failed()), "-")
}

// testFullDiskRun runs pods on a full small disk. With the disk full before kite starts, either
// kite refuses (exit status 125, saying the disk is full and where) or the app, which writes a
// file, fails on its own; either way the pod is left in a state gc removes. An app that fills the
// disk itself gets ENOSPC and its exit status is kite's; then gc gives the space back and the
// same app, bounded, succeeds.
func testFullDiskRun(t *testing.T) {
	d := newSmallDisk(t, 48, 20000)
	d.want(t, "fetch", "-q", layoutRef("busybox"))
	ok := true
	write := []string{"run", layoutRef("busybox"), "--", "sh", "-c", "head -c 4194304 /dev/zero > /written && echo wrote"}

	unfill := d.fill(t, 0)
	r := d.kite(t, runTimeout, write...)
	switch {
	case r.Code == 125:
		t.Logf("kite refused to run on the full disk: %s", strings.TrimSpace(r.Stderr))
		d.wantRefusedForSpace(t, r, "kite run")
	case r.Code != 0 && noSpace.MatchString(r.Stderr) && !strings.Contains(r.Stdout, "wrote"):
		t.Logf("the app failed on the full disk by itself: %s", r)
	default:
		t.Errorf("kite run on a full disk: want exit status 125 or the app's failure to write, got %s", r)
		ok = false
	}
	p := &problems{t: t, what: "after the run on a full disk"}
	p.waitNoProcs(d.data, "")
	for _, pod := range d.pods(t) {
		if pod.State == "running" || pod.State == "embryo" {
			t.Errorf("pod %s is %s after kite ended", pod.UUID, pod.State)
			ok = false
		}
	}
	d.checkStoreClean(t)
	unfill()
	if r := d.want(t, write...); r.Stdout != "wrote\n" {
		t.Errorf("the app once the disk had room: got %s", r)
		ok = false
	}
	d.want(t, "gc", "--grace-period", "0")

	// The app fills the disk itself, and says how its write ended.
	r = d.kite(t, runTimeout, "run", layoutRef("busybox"), "--", "sh", "-c",
		"dd if=/dev/zero of=/fill bs=1M 2>/dev/null; echo dd ended $?; exit 7")
	if r.Code != 7 || r.Stdout != "dd ended 1\n" {
		t.Errorf("an app that fills the disk: want its own exit status 7 after dd failed, got %s", r)
		ok = false
	}
	if pods := d.pods(t); len(pods) != 1 || pods[0].State != "exited" || pods[0].ExitCode == nil || *pods[0].ExitCode != 7 {
		t.Errorf("the pod that filled the disk: want it exited with 7, got %+v", pods)
		ok = false
	}
	d.checkStoreClean(t)
	if free, _ := freeOn(t, d.mnt); free < 32<<20 {
		t.Errorf("gc left %d bytes free on the 48 MiB disk: the filled pod's space was not given back", free)
		ok = false
	}
	if r := d.want(t, write...); r.Stdout != "wrote\n" {
		t.Errorf("the bounded app after gc: got %s", r)
		ok = false
	}
	d.checkStoreClean(t)
	if left := d.tmpdirEntries(t); len(left) > 0 {
		t.Errorf("kite left %v in TMPDIR", left)
	}
	hardeningRow(t, "torture.tsv", "full-disk-run", "1", boolCount(ok && !t.Failed()), boolCount(!ok || t.Failed()), "-")
}

// pods lists the small disk's pods.
func (d *smallDisk) pods(t *testing.T) []podJSON {
	t.Helper()
	r := d.want(t, "list", "--format", "json")
	var out []podJSON
	if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
		t.Fatalf("kite list --format json: %v\n%s", err, r.Stdout)
	}
	return out
}

func boolCount(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
