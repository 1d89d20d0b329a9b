package e2e

// Regression tests of published container-runtime escapes, one test a CVE, named
// TestCVE_YYYY_NNNNN_<what>. Each says what the original bug was and how kite answers it, then
// tries the attack and judges from inside the pod (through the probe) and on the host. This file
// has what they share and the tests of kite run's own process; cve_enter_test.go has kite
// enter's, cve_mount_test.go the mount races and images that replace kernel paths.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kite-runtime/kite/tests/imagebuild"
)

// hardeningEnv names the directory `make hardening` collects results from; unset, tests write
// no results.
const hardeningEnv = "KITE_HARDENING_DIR"

// recordCVE appends "ID<TAB>pass|fail|skip<TAB>tried" to $KITE_HARDENING_DIR/cve.tsv when the
// test ends. Call it first, so that its cleanup runs after every other.
func recordCVE(t *testing.T, id, tried string) {
	t.Helper()
	t.Cleanup(func() {
		dir := os.Getenv(hardeningEnv)
		if dir == "" {
			return
		}
		outcome := "pass"
		switch {
		case t.Failed():
			outcome = "fail"
		case t.Skipped():
			// A host precondition was missing: nothing was shown either way.
			outcome = "skip"
		}
		f, err := os.OpenFile(filepath.Join(dir, "cve.tsv"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			t.Errorf("record the result: %v", err)
			return
		}
		defer f.Close()
		if _, err := fmt.Fprintf(f, "%s\t%s\t%s\n", id, outcome, tried); err != nil {
			t.Errorf("record the result: %v", err)
		}
	})
}

// rounds is n in the default run and more when the hardening results are collected.
func rounds(n, hardening int) int {
	if os.Getenv(hardeningEnv) != "" {
		return hardening
	}
	return n
}

// binarySums is the sha256 of each kite binary in bin.
func binarySums(t *testing.T, bin string) map[string]string {
	t.Helper()
	sums := map[string]string{}
	for _, name := range []string{"kite", "kite-stage1", "kite-image"} {
		sum := sha256.Sum256(readFile(t, filepath.Join(bin, name)))
		sums[name] = hex.EncodeToString(sum[:])
	}
	return sums
}

// wantSameBinaries fails the test if a kite binary in bin changed since before.
func wantSameBinaries(t *testing.T, bin string, before map[string]string) {
	t.Helper()
	for name, sum := range binarySums(t, bin) {
		if before[name] != sum {
			t.Errorf("ESCAPE: %s changed: sha256 %s, was %s", filepath.Join(bin, name), sum, before[name])
		}
	}
}

// userOwnedBinaries copies kite and kite-stage1 into a directory of the test user's, as a build
// in one's home directory is: root in the pod is that user, so only the kernel's protection of
// running programs and kite's, not file permissions, stands between the pod and the binaries.
func userOwnedBinaries(t *testing.T) string {
	t.Helper()
	bin := newScratchDir(t, "bin-")
	for _, name := range []string{"kite", "kite-stage1"} {
		if err := os.WriteFile(filepath.Join(bin, name), readFile(t, filepath.Join(binDir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(binDir, "kite-image"), filepath.Join(bin, "kite-image")); err != nil {
		t.Fatal(err)
	}
	return bin
}

// Tags of the images of cveLayout.
const (
	// cveExeLink's command is /bin/evil, a symlink to /proc/self/exe.
	cveExeLink = "exe-link"
	// cveWorkdirFD's WorkingDir is /proc/self/fd/7.
	cveWorkdirFD = "workdir-fd"
	// cveDevNullLink's /dev/null is a symlink to /proc/sys/kernel/core_pattern.
	cveDevNullLink = "devnull-link"
	// cveProcLink's /proc is a symlink to /var.
	cveProcLink = "proc-link"
	// cveProcFake's /proc is a directory with files of its own (cveFakeProcFiles).
	cveProcFake = "proc-fake"
)

// cveFakeProcFiles are what cveProcFake's /proc holds, and none of them may be seen in a pod.
var cveFakeProcFiles = map[string]string{
	"/proc/kite-fake-marker":          "the image's own /proc\n",
	"/proc/sys/kernel/core_pattern":   "|/tmp/evil %p\n",
	"/proc/self/attr/current":         "unconfined\n",
	"/proc/sys/kernel/kite-fake-leaf": "fake\n",
}

var cveLayoutOnce struct {
	once sync.Once
	dir  string
	err  error
}

// cveLayout writes, once per run, an OCI layout with the images the CVE tests attack kite with,
// each the busybox image with a layer of its own. It lives in the shared data dir's scratch, and
// refs are cveRef(tag).
func cveLayout(t *testing.T) string {
	t.Helper()
	base := busyboxEntries(t)
	l := &cveLayoutOnce
	l.once.Do(func() {
		l.dir = filepath.Join(scratch, "cve-layout")
		cfg := func(c ocispec.ImageConfig) ocispec.ImageConfig {
			c.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
			if c.Cmd == nil {
				c.Cmd = []string{"/bin/sh"}
			}
			return c
		}
		// /proc as a symlink: the base layer without its /proc directory, so that no layer
		// replaces one type with another.
		var noProc []imagebuild.Entry
		for _, e := range base {
			if e.Name != "proc/" {
				noProc = append(noProc, e)
			}
		}
		fake := []imagebuild.Entry{imagebuild.Dir("/proc", 0o755, 0, 0), imagebuild.Dir("/proc/sys", 0o755, 0, 0),
			imagebuild.Dir("/proc/sys/kernel", 0o755, 0, 0), imagebuild.Dir("/proc/self", 0o755, 0, 0),
			imagebuild.Dir("/proc/self/attr", 0o755, 0, 0)}
		for name, content := range cveFakeProcFiles {
			fake = append(fake, imagebuild.File(name, 0o644, 0, 0, []byte(content)))
		}
		l.err = imagebuild.WriteLayout(l.dir,
			imagebuild.Image{Tag: cveExeLink, Layers: [][]imagebuild.Entry{base, {imagebuild.Symlink("/bin/evil", "/proc/self/exe")}},
				Config: cfg(ocispec.ImageConfig{Cmd: []string{"/bin/evil"}})},
			imagebuild.Image{Tag: cveWorkdirFD, Layers: [][]imagebuild.Entry{base},
				Config: cfg(ocispec.ImageConfig{WorkingDir: "/proc/self/fd/7", Cmd: []string{"pwd"}})},
			imagebuild.Image{Tag: cveDevNullLink, Layers: [][]imagebuild.Entry{base, {imagebuild.Dir("/dev", 0o755, 0, 0),
				imagebuild.Symlink("/dev/null", "/proc/sys/kernel/core_pattern")}}, Config: cfg(ocispec.ImageConfig{})},
			imagebuild.Image{Tag: cveProcLink, Layers: [][]imagebuild.Entry{append(noProc, imagebuild.Symlink("/proc", "/var"))},
				Config: cfg(ocispec.ImageConfig{})},
			imagebuild.Image{Tag: cveProcFake, Layers: [][]imagebuild.Entry{base, fake}, Config: cfg(ocispec.ImageConfig{})},
		)
	})
	if l.err != nil {
		t.Fatalf("write the CVE test images: %v", l.err)
	}
	return l.dir
}

// cveRef names an image of cveLayout.
func cveRef(t *testing.T, tag string) string {
	t.Helper()
	return "oci:" + cveLayout(t) + ":" + tag
}

// TestCVE_2019_5736_ProcSelfExe: runc ran the container's command after joining it, so a command
// of /proc/self/exe (or a library it loaded) reached runc's own binary, which the container then
// reopened for writing once runc had exited, and replaced on the host. kite's stage1 refuses to
// run itself as an app (126, the exec target is compared with /proc/self/exe in the app's root),
// for kite run and kite oci alike; its pod init and the processes kite enter adds are not
// dumpable and hold more capabilities than the app, so the app cannot open their /proc/PID/exe;
// and a running program cannot be written (ETXTBSY). Tried with kite's binaries as root installs
// them and as the test user's own copies, from the command line, an image's entrypoint symlink
// and a kite oci config.json, through /proc/1/exe with and without CAP_SYS_PTRACE, and against
// the process kite enter adds, watched for from inside during repeated enters.
func TestCVE_2019_5736_ProcSelfExe(t *testing.T) {
	recordCVE(t, "CVE-2019-5736", "run /proc/self/exe (flag, image symlink, kite oci), write /proc/1/exe with and without CAP_SYS_PTRACE, open kite enter's /proc/PID/exe; binaries' sha256 unchanged")
	dir := sharedDir(t, "busybox")
	before := binarySums(t, binDir)
	defer wantSameBinaries(t, binDir, before)

	t.Run("command", func(t *testing.T) {
		for _, args := range [][]string{
			{"run", "--exec", "/proc/self/exe", layoutRef("busybox")},
			{"run", layoutRef("busybox"), "--", "/proc/self/exe", "init", "/"},
			{"run", cveRef(t, cveExeLink)},
		} {
			r := kite(t, dir, args...)
			wantCode(t, r, 126, strings.Join(args, " "))
			if !strings.Contains(r.Stderr, "CVE-2019-5736") {
				t.Errorf("%v: stderr does not say why: %q", args, r.Stderr)
			}
		}
		// The init's binary through its /proc entry, which the app may not even follow.
		wantCode(t, kite(t, dir, "run", layoutRef("busybox"), "--", "/proc/1/exe"), 126, "run /proc/1/exe")
	})

	t.Run("write", func(t *testing.T) {
		bin := userOwnedBinaries(t)
		own := binarySums(t, bin)
		// Open for writing, and also hold a read descriptor to reopen for writing through
		// /proc/self/fd (the original exploit's two steps).
		const script = `for p in /proc/1/exe /proc/self/exe; do
  if (echo x >> $p) 2>/dev/null; then echo "wrote $p"; fi
  if (exec 3<$p && echo x >> /proc/self/fd/3) 2>/dev/null; then echo "reopened $p"; fi
done; echo done`
		for _, flags := range [][]string{nil, {"--cap-add", "sys_ptrace"}, {"--insecure-options=capabilities"}} {
			args := append(append([]string{"run"}, flags...), layoutRef("busybox"), "--", "sh", "-c", script)
			r := kiteWith(t, dir, &options{bin: bin}, args...)
			wantCode(t, r, 0, strings.Join(args, " "))
			// /proc/self/exe is the shell, busybox of the pod's own overlay: ETXTBSY as well.
			if strings.TrimSpace(r.Stdout) != "done" {
				t.Errorf("%v: the pod wrote to a running program: %s", flags, r)
			}
		}
		wantSameBinaries(t, bin, own)
	})

	t.Run("oci", func(t *testing.T) {
		// kite oci's program is the same stage1's app: /proc/self/exe is refused there too.
		e := newOCIEnv(t)
		for i, args := range [][]string{{"/proc/self/exe", "init", "/"}, {"/proc/1/exe"}} {
			id := fmt.Sprintf("selfexe%d", i)
			r, c := e.tryCreate(t, id, e.bundle(t, e.spec(t, args...)), nil)
			if r.Code == 0 {
				res := e.oci(t, "start", id)
				e.waitStatus(t, id, "stopped")
				if res.Code == 0 {
					t.Errorf("%v: kite oci start ran it: %s, the container's stderr %q", args, res, c.stderrText(t))
				}
				r = res
			}
			if args[0] == "/proc/self/exe" && !strings.Contains(r.Stderr, "CVE-2019-5736") {
				t.Errorf("%v: refused without saying why: %s", args, r)
			}
			e.oci(t, "delete", "--force", id)
		}
	})

	t.Run("enter", func(t *testing.T) {
		bin := userOwnedBinaries(t)
		own := binarySums(t, bin)
		for _, p := range watchEnters(t, dir, &options{bin: bin}, "cve-5736-watch") {
			if slices.Contains(p.Access, "exe-write") || kiteAccess(p) && slices.Contains(p.Access, "exe") {
				t.Errorf("ESCAPE: the pod's app got %v of process %d (%q before, %q after, exe %q) while kite entered it", p.Access, p.PID, p.Comm, p.CommAfter, p.Exe)
			}
		}
		wantSameBinaries(t, bin, own)
	})
}

// TestCVE_2024_21626_WorkingDirFD: runc leaked a descriptor of the host's /sys/fs/cgroup into the
// container's init, and a working directory of /proc/self/fd/7 put the container's process in
// the host's filesystem before its exec. kite refuses a working directory in /proc at kite run
// (from the flag or the image), closes every descriptor but stdio and the passed ones before
// exec, and stage1 checks that the directory it entered is inside the app's root (getcwd(2) says
// "(unreachable)" otherwise), which covers kite oci, whose config.json it applies literally.
// Asserted from inside: no descriptor but 0, 1, 2 with a careless caller's directory descriptors
// open, the pod's init's descriptors out of reach, and for kite oci the program never runs
// outside its root.
func TestCVE_2024_21626_WorkingDirFD(t *testing.T) {
	recordCVE(t, "CVE-2024-21626", "working directory /proc/self/fd/N (flag, image, kite oci cwd), caller's directory fds (run, enter), kite's processes' fd and cwd from inside")
	dir := sharedDir(t, "busybox")

	t.Run("run", func(t *testing.T) {
		for n := 3; n < 10; n++ {
			before := listing(t, dir)
			r := kite(t, dir, "run", "-w", fmt.Sprintf("/proc/self/fd/%d", n), layoutRef("busybox"), "--", "pwd")
			wantCode(t, r, 125, fmt.Sprintf("-w /proc/self/fd/%d", n))
			if !strings.Contains(r.Stderr, "must not be in /proc") || r.Stdout != "" {
				t.Errorf("-w /proc/self/fd/%d: %s", n, r)
			}
			compareListings(t, before, listing(t, dir))
		}
		r := kite(t, dir, "run", cveRef(t, cveWorkdirFD))
		wantCode(t, r, 125, "an image whose WorkingDir is /proc/self/fd/7")
		if !strings.Contains(r.Stderr, "must not be in /proc") || r.Stdout != "" {
			t.Errorf("WorkingDir /proc/self/fd/7: %s", r)
		}
	})

	t.Run("fds", func(t *testing.T) {
		// The caller leaves host directories open on 3 to 9 (the test's scratch, /, the data
		// dir); the app holds none, and the pod's init (pid 1 inside) shows it none either.
		extra := hostDirFDs(t, dir)
		const script = `probe info > /tmp/info.json || exit 1
for f in /proc/1/fd/* /proc/1/cwd /proc/1/root; do
  if (cd $f) 2>/dev/null; then echo "entered $f"; fi
  if ls $f/ >/dev/null 2>&1; then echo "listed $f/"; fi
done
cat /tmp/info.json`
		r := kiteWith(t, dir, &options{extraFiles: extra}, "run", layoutRef("busybox"), "--", "sh", "-c", script)
		wantCode(t, r, 0, "the descriptors' script")
		checkFDScript(t, r, "the app reached into the pod's init")
	})

	t.Run("enter", func(t *testing.T) {
		// kite enter's caller leaves host directories open too; the command holds none, and
		// the process it runs under (its parent, kite-stage1 enter) shows it none either.
		runningPod(t, dir, nil, "cve-21626", []string{"--net=none"}, "echo ready; sleep 60")
		const script = `probe info > /tmp/info.json || exit 1
for f in /proc/$PPID/fd/* /proc/$PPID/cwd /proc/$PPID/root /proc/1/fd/* /proc/1/cwd; do
  if (cd $f) 2>/dev/null; then echo "entered $f"; fi
done
cat /tmp/info.json`
		r := kiteWith(t, dir, &options{extraFiles: hostDirFDs(t, dir)}, "enter", "cve-21626", "--", "sh", "-c", script)
		wantCode(t, r, 0, "the descriptors' script under kite enter")
		checkFDScript(t, r, "ESCAPE: kite enter's command reached into kite's processes")
	})

	t.Run("oci", func(t *testing.T) {
		e := newOCIEnv(t)
		for _, cwd := range []string{"/proc/self/fd/3", "/proc/self/fd/4", "/proc/self/fd/5", "/proc/self/fd/6", "/proc/self/fd/7", "/proc/self/fd/8", "/proc/1/cwd"} {
			s := e.spec(t, "/bin/sh", "-c", "echo cwd $(pwd)")
			s.Process.Cwd = cwd
			id := "cwd" + strconv.Itoa(e.count)
			r, c := e.tryCreate(t, id, e.bundle(t, s), &options{extraFiles: hostDirFDs(t, e.data)})
			if r.Code != 0 {
				// Refused at create: fine, as long as it says so.
				if r.Stderr == "" {
					t.Errorf("cwd %s: create failed without a word: %s", cwd, r)
				}
				t.Logf("cwd %s: create refused: %s", cwd, strings.TrimSpace(r.Stderr))
				continue
			}
			res := e.oci(t, "start", id)
			if res.Code == 0 {
				e.waitStatus(t, id, "stopped")
			}
			out := c.stdoutText(t)
			t.Logf("cwd %s: start exit status %d: %q, the container: %q", cwd, res.Code, strings.TrimSpace(res.Stderr), strings.TrimSpace(c.stderrText(t)))
			if strings.Contains(out, "cwd ") {
				t.Errorf("ESCAPE: with cwd %s the program ran: %q", cwd, out)
			}
			e.oci(t, "delete", "--force", id)
		}
		// A descriptor of a host directory passed on on purpose (--preserve-fds), and the
		// working directory through it: the program must still not start outside its root.
		s := e.spec(t, "/bin/sh", "-c", "echo cwd $(pwd)")
		s.Process.Cwd = "/proc/self/fd/3"
		hostDir, err := os.Open(e.out)
		if err != nil {
			t.Fatal(err)
		}
		defer hostDir.Close()
		r, c := e.tryCreate(t, "cwdpassed", e.bundle(t, s), &options{extraFiles: []*os.File{hostDir}}, "--preserve-fds", "1")
		if r.Code == 0 {
			res := e.oci(t, "start", "cwdpassed")
			e.waitStatus(t, "cwdpassed", "stopped")
			if out := c.stdoutText(t); strings.Contains(out, "cwd ") {
				t.Errorf("ESCAPE: with cwd /proc/self/fd/3, a host directory passed with --preserve-fds, the program ran: %q", out)
			}
			t.Logf("cwd through a passed descriptor: start exit status %d: %q, the container: %q", res.Code, strings.TrimSpace(res.Stderr), strings.TrimSpace(c.stderrText(t)))
		} else {
			t.Logf("cwd through a passed descriptor: create refused: %s", strings.TrimSpace(r.Stderr))
		}
	})
}

// hostDirFDs opens directories of the host for a careless caller to leave open: the scratch root,
// dir, / and /proc/self/fd/.. (the caller's /proc), 7 of them so they reach fd 9.
func hostDirFDs(t *testing.T, dir string) []*os.File {
	t.Helper()
	var files []*os.File
	for _, p := range []string{"/", scratch, dir, "/tmp", "/proc", "/etc", scratch} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		files = append(files, f)
	}
	return files
}

// checkFDScript reads what a descriptors' script printed: the paths it could enter or list (there
// must be none; escape says what one would mean), then the probe's report, whose descriptors
// checkFDs judges.
func checkFDScript(t *testing.T, r result, escape string) {
	t.Helper()
	out := strings.SplitN(r.Stdout, "{", 2)
	if strings.TrimSpace(out[0]) != "" {
		t.Errorf("%s: %q", escape, out[0])
	}
	if len(out) != 2 {
		t.Fatalf("no probe report: %s", r)
	}
	rep, _ := decodeReport(t, "{"+out[1])
	checkFDs(t, rep)
}
