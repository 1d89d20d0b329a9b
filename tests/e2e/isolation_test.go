package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kite-runtime/kite/tests/probe/report"
)

// TestPodView checks what the app sees of its pod: identity and id maps, hostname, working
// directory, environment, mounts and open files.
func TestPodView(t *testing.T) {
	rep := probeInfo(t, sharedDir(t, "multilayer"), layoutRef("multilayer"))

	t.Run("identity", func(t *testing.T) {
		if rep.UID != 0 || rep.GID != 0 || rep.EUID != 0 || rep.EGID != 0 {
			t.Errorf("uid/gid/euid/egid = %d/%d/%d/%d, want 0 (the image sets no user)", rep.UID, rep.GID, rep.EUID, rep.EGID)
		}
	})
	t.Run("uid_map", func(t *testing.T) { checkIDMap(t, "uid_map", rep.UIDMap, os.Getuid(), "/etc/subuid") })
	t.Run("gid_map", func(t *testing.T) { checkIDMap(t, "gid_map", rep.GIDMap, os.Getgid(), "/etc/subgid") })
	t.Run("hostname", func(t *testing.T) {
		if !strings.HasPrefix(rep.Hostname, "kite-") || len(rep.Hostname) <= len("kite-") {
			t.Errorf("hostname = %q, want kite-<pod id>", rep.Hostname)
		}
	})
	t.Run("cwd", func(t *testing.T) {
		if rep.Cwd != "/data" {
			t.Errorf("cwd = %q, want the image's WorkingDir /data", rep.Cwd)
		}
	})
	t.Run("env", func(t *testing.T) {
		if !slices.Contains(rep.Env, "KITE_IMAGE=multilayer") {
			t.Errorf("env = %q, want the image's KITE_IMAGE=multilayer", rep.Env)
		}
		if !slices.ContainsFunc(rep.Env, func(kv string) bool { return strings.HasPrefix(kv, "PATH=/") }) {
			t.Errorf("env = %q, want the image's PATH", rep.Env)
		}
		// The caller's environment is not the app's.
		for _, kv := range rep.Env {
			if strings.HasPrefix(kv, "KITE_BIN_DIR=") || strings.HasPrefix(kv, "_KITE_") {
				t.Errorf("env has %q, which belongs to the caller or to kite", kv)
			}
		}
	})
	t.Run("mounts", func(t *testing.T) { checkMounts(t, rep) })
	t.Run("fds", func(t *testing.T) { checkFDs(t, rep) })
}

// checkIDMap checks an id map seen inside: as root, the identity of the whole range; else 0 → the
// caller's own id, then the caller's first subordinate range from 1 on.
func checkIDMap(t *testing.T, name, text string, own int, subFile string) {
	t.Helper()
	m := parseIDMap(t, text)
	if os.Geteuid() == 0 {
		if want := []idRange{{0, 0, 4294967295}}; !slices.Equal(m, want) {
			t.Fatalf("%s = %q, want \"0 0 4294967295\" for root", name, text)
		}
		return
	}
	if m[0] != (idRange{0, uint64(own), 1}) {
		t.Fatalf("%s = %q: first line want \"0 %d 1\"", name, text, own)
	}
	needSubIDs(t)
	sub := subRanges(subFile)
	if len(m) < 2 || m[1] != (idRange{1, sub[0].Host, sub[0].Size}) {
		t.Fatalf("%s = %q: want a second line \"1 %d %d\" (the first range in %s)", name, text, sub[0].Host, sub[0].Size, subFile)
	}
}

func checkMounts(t *testing.T, rep report.Report) {
	t.Helper()
	want := map[string]string{"/": "overlay", "/proc": "proc", "/dev": "tmpfs", "/sys": "sysfs", "/tmp": "tmpfs"}
	for point, fstype := range want {
		m, ok := rep.MountAt(point)
		if !ok {
			t.Errorf("nothing mounted on %s", point)
			continue
		}
		if m.FSType != fstype {
			t.Errorf("%s is %s, want %s", point, m.FSType, fstype)
		}
	}
	if m, ok := rep.MountAt("/sys"); ok && !slices.Contains(strings.Split(m.Options, ","), "ro") {
		t.Errorf("/sys is mounted %q, want read-only (ro)", m.Options)
	}
	if t.Failed() {
		t.Logf("mounts inside the pod: %+v", rep.Mounts)
	}
}

// checkFDs fails if the app holds more than stdin, stdout and stderr: any other descriptor is
// kite's (or the caller's) and may lead out of the pod (CVE-2024-21626 leaked a host directory).
func checkFDs(t *testing.T, rep report.Report) {
	t.Helper()
	for _, fd := range rep.FDs {
		if fd.FD > 2 {
			t.Errorf("the app has fd %d open (%s); want only 0, 1 and 2", fd.FD, fd.Target)
		}
	}
}

// TestInheritedFDsClosed starts kite with descriptors its caller left open by mistake (no
// LISTEN_FDS or other request to pass them on), one of them a host directory as in
// CVE-2024-21626: the app must not get them.
func TestInheritedFDsClosed(t *testing.T) {
	dir := sharedDir(t, "busybox")
	hostDir, err := os.Open(scratch)
	if err != nil {
		t.Fatal(err)
	}
	defer hostDir.Close()
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	// fds 3 to 9: low ones may be reused by kite's own descriptors on the way (the monitor passes
	// the sync socket as fd 3), so the host directory comes last.
	extra := []*os.File{devNull, devNull, devNull, devNull, devNull, devNull, hostDir}
	r := kiteWith(t, dir, &options{extraFiles: extra}, runArgs(layoutRef("busybox"), "probe", "info")...)
	checkFDs(t, decodeInfo(t, r))
}

// TestAppUmask checks the app gets the pod's umask (0022), not the caller's.
func TestAppUmask(t *testing.T) {
	dir := sharedDir(t, "busybox")
	cmd := exec.Command("/bin/sh", "-c", `umask 077; exec "$@"`, "sh",
		filepath.Join(binDir, "kite"), "--dir", dir, "run", layoutRef("busybox"), "--",
		"sh", "-c", "umask")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kite run: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "0022" {
		t.Errorf("umask in the app = %q, want 0022 whatever the caller's", got)
	}
}
