package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/kite-runtime/kite/tests/probe/report"
)

// This file has the CVE tests of the pod's mounts: mount targets swapped while a pod starts, and
// images or bundles whose /dev/null or /proc are not what a runtime expects.

// hostMounts lists the host's mount points (the test process's) at or below the directories
// under: where a mount that escaped a pod would land. (Other mounts come and go with whatever
// else the machine runs.)
func hostMounts(t *testing.T, under ...string) []string {
	t.Helper()
	var out []string
	for _, l := range lines(string(readFile(t, "/proc/self/mountinfo"))) {
		f := strings.Fields(l)
		if len(f) <= 4 {
			continue
		}
		for _, dir := range under {
			if f[4] == dir || strings.HasPrefix(f[4], dir+"/") {
				out = append(out, f[4])
			}
		}
	}
	slices.Sort(out)
	return out
}

// wantMasked checks, with a shell script's output, that the masked kernel files read nothing and
// the read-only ones take no write; script is maskScript.
func wantMasked(t *testing.T, what string, r result) {
	t.Helper()
	if r.Code != 0 || r.Stdout != "0\n" {
		t.Errorf("ESCAPE: %s: masked paths: want nothing read and no write, got %s", what, r)
	}
}

// maskScript reads the files kite masks with /dev/null and writes to /proc/sysrq-trigger and
// core_pattern, which are read-only in the pod; it prints the bytes read and what it wrote.
const maskScript = `cat /proc/keys /proc/timer_list 2>/dev/null | wc -c
(echo h > /proc/sysrq-trigger) 2>/dev/null && echo wrote sysrq-trigger
(echo '|/tmp/evil' > /proc/sys/kernel/core_pattern) 2>/dev/null && echo wrote core_pattern
true`

// TestCVE_2025_31133_DevNullSymlink: runc masked paths by binding the container's /dev/null over
// them, and an image (or a race from inside) that made /dev/null a symlink to a kernel file such
// as /proc/sys/kernel/core_pattern got that file bound where a mask should be, or bound writable.
// kite gives each app a /dev of its own (a tmpfs with the host's null device bound in), opens the
// app's /dev/null without following a symlink, refuses it unless it is the null device (1:3),
// and binds that open descriptor, so that nothing can be swapped between the check and the mount.
// Tried: an image whose /dev/null is a symlink to core_pattern, a volume over /dev whose null is
// one, and a kite oci bundle without a /dev mount whose rootfs has one; the masked files stay
// empty and the read-only ones unwritable, or kite refuses, and the host's core_pattern stays.
// No race from inside is tried: the check and the masks use one descriptor, and no pod can make
// the null device a swap would need (mknod(2) of a device takes the host's CAP_MKNOD).
func TestCVE_2025_31133_DevNullSymlink(t *testing.T) {
	recordCVE(t, "CVE-2025-31133", "/dev/null a symlink to core_pattern: in the image, in a volume over /dev, in a kite oci rootfs without /dev")
	dir := sharedDir(t, "busybox")
	corePattern := string(readFile(t, "/proc/sys/kernel/core_pattern"))
	defer func() {
		if now := string(readFile(t, "/proc/sys/kernel/core_pattern")); now != corePattern {
			t.Errorf("ESCAPE: the host's core_pattern is %q, was %q", now, corePattern)
		}
	}()

	t.Run("image", func(t *testing.T) {
		wantMasked(t, "an image with /dev/null a symlink", kite(t, dir, "run", cveRef(t, cveDevNullLink), "--", "sh", "-c", maskScript))
		rep := decodeInfo(t, kite(t, dir, "run", cveRef(t, cveDevNullLink), "--", "probe", "info"))
		for _, p := range []string{"/proc/keys", "/proc/timer_list"} {
			if m, ok := rep.MountAt(p); ok && m.Root != "/null" {
				t.Errorf("ESCAPE: %s is masked with %+v, not the null device", p, m)
			}
		}
		st := probeStat(t, dir, cveRef(t, cveDevNullLink), "/dev/null")["/dev/null"]
		if st.Type != "char" {
			t.Errorf("the app's /dev/null is a %s, want kite's null device", st.Type)
		}
	})

	t.Run("volume", func(t *testing.T) {
		dev := newScratchDir(t, "dev-")
		if err := os.Symlink("/proc/sys/kernel/core_pattern", filepath.Join(dev, "null")); err != nil {
			t.Fatal(err)
		}
		// --net=none: the pod's network helper would report its own failure when the pod's
		// init refuses, before kite prints the init's reason.
		r := kite(t, dir, "run", "--net=none", "-v", dev+":/dev", layoutRef("busybox"), "--", "sh", "-c", maskScript)
		if r.Code == 125 {
			if !strings.Contains(r.Stderr, "/dev/null") {
				t.Errorf("refused without naming /dev/null: %s", r)
			}
			return
		}
		wantMasked(t, "a volume over /dev with null a symlink", r)
	})

	t.Run("oci", func(t *testing.T) {
		e := newOCIEnv(t)
		for _, null := range []string{"symlink", "file"} {
			rootfs := filepath.Join(newScratchDir(t, "rootfs-"), "rootfs")
			makeRootfs(t, rootfs)
			p := filepath.Join(rootfs, "dev", "null")
			var err error
			if null == "symlink" {
				err = os.Symlink("/proc/sys/kernel/core_pattern", p)
			} else {
				err = os.WriteFile(p, []byte("not a device\n"), 0o666)
			}
			if err != nil {
				t.Fatal(err)
			}
			s := e.spec(t, "sh", "-c", strings.ReplaceAll(maskScript, "wc -c", "busybox wc -c"))
			s.Root.Path = rootfs
			s.Mounts = slices.DeleteFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == "/dev" || strings.HasPrefix(m.Destination, "/dev/") })
			s.Linux.Devices = nil
			id := "null-" + null
			r, c := e.tryCreate(t, id, e.bundle(t, s), nil)
			if r.Code != 0 {
				if !strings.Contains(r.Stderr, "/dev/null") {
					t.Errorf("%s /dev/null: create refused without naming it: %s", null, r)
				}
				t.Logf("%s /dev/null: refused: %s", null, strings.TrimSpace(r.Stderr))
				continue
			}
			e.start(t, id)
			e.waitStatus(t, id, specs.StateStopped)
			if out := c.stdoutText(t); out != "0\n" {
				t.Errorf("ESCAPE: %s /dev/null: masked paths in kite oci: %q", null, out)
			}
			e.oci(t, "delete", "--force", id)
		}
	})
}

// TestCVE_2019_16884_ProcSymlink: runc mounted /proc wherever the image's /proc led, a symlink
// included, and its AppArmor profile, written through /proc/self/attr, then went to a file of the
// image's: the container ran unconfined. kite has no AppArmor to lose, but its masks and
// read-only paths are paths in /proc: stage1 refuses to mount proc or sysfs anywhere but where
// config.json says, so an image whose /proc is a symlink is refused, and one whose /proc is a
// directory with files of its own gets the kernel's proc over it. Asserted from inside (the
// mount's type, the image's files hidden, the masks) and for kite oci's bundles.
func TestCVE_2019_16884_ProcSymlink(t *testing.T) {
	recordCVE(t, "CVE-2019-16884", "/proc a symlink (image, kite oci rootfs) and /proc with fake files: proc mounted on /proc only, masks applied")
	dir := sharedDir(t, "busybox")

	t.Run("symlink", func(t *testing.T) {
		r := kite(t, dir, "run", cveRef(t, cveProcLink), "--", "probe", "info")
		if r.Code == 0 {
			rep := decodeInfo(t, r)
			t.Errorf("ESCAPE: an image whose /proc is a symlink to /var ran, with mounts %+v", rep.Mounts)
		}
		wantCode(t, r, 125, "an image whose /proc is a symlink")
		if !strings.Contains(r.Stderr, "/proc") || !strings.Contains(r.Stderr, "symlink") {
			t.Errorf("the refusal does not say why: %q", r.Stderr)
		}
	})

	t.Run("fake", func(t *testing.T) {
		ref := cveRef(t, cveProcFake)
		rep := decodeInfo(t, kite(t, dir, "run", ref, "--", "probe", "info"))
		if m, ok := rep.MountAt("/proc"); !ok || m.FSType != "proc" {
			t.Errorf("/proc is %+v, want the kernel's proc", m)
		}
		checkMaskedMounts(t, rep)
		var paths []string
		for p := range cveFakeProcFiles {
			paths = append(paths, p)
		}
		r := kite(t, dir, "run", ref, "--", "sh", "-c", "cat "+strings.Join(paths, " ")+" 2>/dev/null; true")
		for _, content := range cveFakeProcFiles {
			if strings.Contains(r.Stdout, strings.TrimSpace(content)) {
				t.Errorf("ESCAPE: the image's own /proc shows through: %q", r.Stdout)
			}
		}
		wantMasked(t, "an image with a /proc of its own", kite(t, dir, "run", ref, "--", "sh", "-c", maskScript))
	})

	t.Run("oci", func(t *testing.T) {
		e := newOCIEnv(t)
		rootfs := filepath.Join(newScratchDir(t, "rootfs-"), "rootfs")
		makeRootfs(t, rootfs)
		if err := os.Remove(filepath.Join(rootfs, "proc")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("tmp", filepath.Join(rootfs, "proc")); err != nil {
			t.Fatal(err)
		}
		s := e.spec(t, "probe", "info")
		s.Root.Path = rootfs
		r, c := e.tryCreate(t, "proclink", e.bundle(t, s), nil)
		if r.Code == 0 {
			e.start(t, "proclink")
			e.waitStatus(t, "proclink", specs.StateStopped)
			t.Errorf("ESCAPE: a rootfs whose /proc is a symlink ran: %q", c.stdoutText(t))
			return
		}
		if !strings.Contains(r.Stderr, "/proc") || !strings.Contains(r.Stderr, "symlink") {
			t.Errorf("the refusal does not say why: %s", r)
		}
	})
}

// checkMaskedMounts checks the masks of kite's default masked paths in a probe report.
func checkMaskedMounts(t *testing.T, rep report.Report) {
	t.Helper()
	for _, p := range []string{"/proc/keys", "/proc/timer_list"} {
		if _, err := os.Stat(p); err != nil {
			continue // the host kernel has none to mask
		}
		if m, ok := rep.MountAt(p); !ok || m.Root != "/null" {
			t.Errorf("ESCAPE: %s: %+v, want the null device bound over it", p, m)
		}
	}
	if m, ok := rep.MountAt("/proc/sys"); !ok || !hasOption(m.Options, "ro") {
		t.Errorf("ESCAPE: /proc/sys: %+v, want read-only", m)
	}
}

// TestCVE_2021_30465_MountRace: runc resolved a mount's target inside the container's root and
// then mounted on the path by name, so a container sharing a volume with the one being started
// could swap a directory on the way for a symlink in between and have the mount land outside
// the root (over the new container's /proc, defeating its masks). The test's pod A swaps a
// directory of a shared host volume with a symlink to a host canary directory
// (renameat2(RENAME_EXCHANGE), as fast as it can) while pod B starts again and again with that
// volume and a second host directory mounted on the swapped path. Each start of B must either
// be refused (125) or show B's app the second directory's bind inside its own root (a mount that
// lands outside the root is detached with the old root and never seen), with /proc still the
// kernel's; the host's mount table and the canary must not change.
func TestCVE_2021_30465_MountRace(t *testing.T) {
	recordCVE(t, "CVE-2021-30465", fmt.Sprintf("%d pod starts with a nested volume target that another pod swaps with a symlink to a host canary (renameat2 loop)", rounds(30, 300)))
	needSubIDs(t)
	dir := sharedDir(t, "busybox")
	canary := newCanary(t)
	canaryBefore := canaryState(t, canary)
	shared := newScratchDir(t, "shared-")
	if err := os.Mkdir(filepath.Join(shared, "target"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(canary, filepath.Join(shared, "decoy")); err != nil {
		t.Fatal(err)
	}
	nested := newScratchDir(t, "nested-")
	writeFile(t, filepath.Join(nested, "kite-nested-marker"), "the nested volume\n")
	watched := []string{canary, shared, nested, "/proc", "/sys", "/dev"}
	mountsBefore := hostMounts(t, watched...)

	runningPod(t, dir, nil, "cve-30465-swapper", []string{"--net=none", "-v", shared + ":/vol"},
		"exec probe swap /vol/target /vol/decoy 600")
	starts, refused := rounds(30, 300), 0
	for i := 0; i < starts; i++ {
		r := kite(t, dir, "run", "--net=none", "-v", shared+":/vol", "-v", nested+":/vol/target", layoutRef("busybox"), "--", "probe", "info")
		if r.Code == 125 {
			refused++
			t.Logf("start %d refused: %s", i, strings.TrimSpace(r.Stderr))
			continue
		}
		rep := decodeInfo(t, r)
		var at []string
		for _, m := range rep.Mounts {
			if strings.HasSuffix(m.Root, "/"+filepath.Base(nested)) {
				at = append(at, m.MountPoint)
			}
		}
		if len(at) == 0 {
			t.Errorf("ESCAPE: start %d: the nested volume is nowhere in the pod's root: it was mounted outside", i)
		}
		if m, ok := rep.MountAt("/proc"); !ok || m.FSType != "proc" {
			t.Errorf("ESCAPE: start %d: /proc is %+v", i, m)
		}
		for _, p := range at {
			if p == "/proc" || strings.HasPrefix(p, "/proc/") || p == "/sys" || strings.HasPrefix(p, "/sys/") || p == "/dev" {
				t.Errorf("ESCAPE: start %d: the nested volume landed on %s", i, p)
			}
		}
	}
	t.Logf("%d starts of the pod while the other swapped its target: %d refused, the rest mounted inside the root", starts, refused)
	compareCanary(t, canaryBefore, canaryState(t, canary))
	if after := hostMounts(t, watched...); !slices.Equal(after, mountsBefore) {
		t.Errorf("ESCAPE: the host's mount table changed:\nbefore %v\nafter  %v", mountsBefore, after)
	}
	if refused == starts {
		t.Errorf("all %d starts were refused: the race was never run", starts)
	}
}
