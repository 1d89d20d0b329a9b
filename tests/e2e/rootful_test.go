package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRootful runs pods as root: kite still isolates them in a user namespace, with the identity
// mapping of the whole id range, so the image's owners are the host's.
func TestRootful(t *testing.T) {
	needRoot(t)
	dir := newDataDir(t)

	t.Run("id", func(t *testing.T) {
		r := runImage(t, dir, layoutRef("busybox"), "id")
		wantCode(t, r, 0, "id")
		if !strings.HasPrefix(r.Stdout, "uid=0(root) gid=0(root)") {
			t.Fatalf("id printed %q, want uid=0(root) gid=0(root)", r.Stdout)
		}
	})
	t.Run("id maps", func(t *testing.T) {
		rep := probeInfo(t, dir, layoutRef("busybox"))
		for name, text := range map[string]string{"uid_map": rep.UIDMap, "gid_map": rep.GIDMap} {
			if m := parseIDMap(t, text); len(m) != 1 || m[0] != (idRange{0, 0, 4294967295}) {
				t.Errorf("%s = %q, want \"0 0 4294967295\"", name, text)
			}
		}
		if rep.UID != 0 || rep.EUID != 0 {
			t.Errorf("uid/euid = %d/%d, want 0", rep.UID, rep.EUID)
		}
	})
	t.Run("layers", func(t *testing.T) { checkLayers(t, dir) })
	t.Run("user", func(t *testing.T) { checkUser(t, decodeInfo(t, runImage(t, dir, layoutRef("user")))) })
	t.Run("pod lifecycle", func(t *testing.T) {
		run := start(t, dir, nil, "run", "--name", "rootful", layoutRef("busybox"), "--", "sh", "-c", "echo ready; sleep 60")
		waitOutput(t, run, "ready")
		in := decodeInfo(t, kite(t, dir, "enter", "rootful", "--", "probe", "info"))
		if in.CapEff != dockerDefaultCaps || in.Seccomp != 2 || in.NoNewPrivs != 1 {
			t.Errorf("kite enter as root: CapEff %s, Seccomp %d, NoNewPrivs %d", in.CapEff, in.Seccomp, in.NoNewPrivs)
		}
		wantCode(t, kite(t, dir, "stop", "rootful"), 0, "kite stop")
		wantCode(t, finish(t, run), 143, "the stopped pod")
		before := len(podEntries(t, dir))
		wantCode(t, kite(t, dir, "rm", "rootful"), 0, "kite rm")
		wantCode(t, kite(t, dir, "run", "--rm", layoutRef("busybox"), "--", "true"), 0, "kite run --rm")
		if after := len(podEntries(t, dir)); after != before-1 {
			t.Errorf("%d pods before kite rm and a kite run --rm, %d after; want one fewer", before, after)
		}
	})
}

// TestRootfulVFS keeps the data directory on an overlayfs mount, where the store cannot use
// overlayfs itself and falls back to the vfs driver: each pod then runs on its own copy of the
// image, which must show the same files, owners, whiteouts and opaque directories. Mounting the
// overlay needs root.
func TestRootfulVFS(t *testing.T) {
	needRoot(t)
	mnt := overlayScratch(t)
	dir := filepath.Join(mnt, "data")

	checkLayers(t, dir)
	if _, err := os.Stat(filepath.Join(dir, "storage", "vfs")); err != nil {
		t.Fatalf("the store did not fall back to vfs: %v", err)
	}
	pods, err := filepath.Glob(filepath.Join(dir, "pods", "run", "*", "apps", "*", "rootfs.json"))
	if err != nil || len(pods) == 0 {
		t.Fatalf("no pod directories: %v", err)
	}
	data, err := os.ReadFile(pods[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"bind"`) || strings.Contains(string(data), `"overlay"`) {
		t.Errorf("rootfs.json of a vfs pod = %s, want a bind-mounted copy", data)
	}
	// Each pod has its own copy: a file one pod writes is not in the next pod's root.
	wantCode(t, runImage(t, dir, layoutRef("busybox"), "sh", "-c", "echo x > /written"), 0, "write in one pod")
	if r := runImage(t, dir, layoutRef("busybox"), "test", "-e", "/written"); r.Code != 1 {
		t.Errorf("a file written in one pod is visible in another (test -e exited %d)", r.Code)
	}
}

// TestRootfulRefusesSetuid installs setuid-root copies of kite and kite-stage1 and runs them as
// nobody: they need no privileges and must refuse to run with ones they were not started with.
func TestRootfulRefusesSetuid(t *testing.T) {
	needRoot(t)
	dir := newScratchDir(t, "setuid-")
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ bin, arg string }{{"kite", "version"}, {"kite-stage1", "run"}} {
		copyPath := filepath.Join(dir, c.bin)
		if err := os.WriteFile(copyPath, readFile(t, filepath.Join(binDir, c.bin)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(copyPath, 0o755|os.ModeSetuid); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", copyPath, c.arg, dir).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 125 {
			t.Errorf("a setuid %s run as nobody: %v, want exit status 125; output %q", c.bin, err, out)
			continue
		}
		if !strings.Contains(string(out), "setuid") {
			t.Errorf("%s's refusal does not say why: %q", c.bin, out)
		}
	}
}

// overlayScratch returns a directory on a fresh overlayfs mount, where the store cannot use
// overlayfs itself and falls back to the vfs driver. Mounting needs root.
func overlayScratch(t *testing.T) string {
	t.Helper()
	base := newScratchDir(t, "overlay-")
	for _, d := range []string{"lower", "upper", "work", "mnt"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mnt := filepath.Join(base, "mnt")
	opts := "lowerdir=" + filepath.Join(base, "lower") + ",upperdir=" + filepath.Join(base, "upper") + ",workdir=" + filepath.Join(base, "work")
	if err := unix.Mount("overlay", mnt, "overlay", 0, opts); err != nil {
		t.Fatalf("mount an overlay for the data directories: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	return mnt
}
