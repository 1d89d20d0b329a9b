package e2e

import (
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// This file has what the tests of kite oci (oci_test.go) share: a bundle's root filesystem made
// of the host's static busybox and the probe, config.json files derived from `kite oci spec`, a
// private --root per test, and the kite oci commands run against it.

// hostBusybox is the static busybox the containers' root filesystems are made of.
const hostBusybox = "/bin/busybox"

// busyboxApplets are linked to busybox in the root filesystem: what the apps and the
// startContainer hooks (which run in it) call.
var busyboxApplets = []string{"sh", "true", "false", "sleep", "cat", "echo", "id", "kill", "readlink"}

// needStaticBusybox makes sure the host has a busybox that runs without a libc in a bundle's root.
func needStaticBusybox(t *testing.T) {
	t.Helper()
	f, err := elf.Open(hostBusybox)
	if err != nil {
		needHost(t, "%s cannot be read as a program (%v); install the busybox-static package (apt-get install busybox-static)", hostBusybox, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			needHost(t, "%s is linked dynamically; the bundles need a static one: apt-get install busybox-static", hostBusybox)
		}
	}
}

// ociEnv is one test's kite oci: its --root, its data dir (where kite compiles seccomp
// profiles), a root filesystem and a directory of the host every container binds at /out,
// read-write, to leave what it saw.
type ociEnv struct {
	dir    string
	data   string
	root   string
	rootfs string
	out    string
	// base is `kite oci spec --rootless`'s config.json, with the /out bind and root.path made
	// absolute, so that every bundle of the test shares the one root filesystem.
	base  specs.Spec
	count int
}

// newOCIEnv makes a test's kite oci. Every container still in its --root when the test ends is
// deleted with --force.
func newOCIEnv(t *testing.T) *ociEnv {
	t.Helper()
	needStaticBusybox(t)
	dir := newScratchDir(t, "oci-")
	e := &ociEnv{dir: dir, data: filepath.Join(dir, "data"), root: filepath.Join(dir, "root"),
		rootfs: filepath.Join(dir, "rootfs"), out: filepath.Join(dir, "out")}
	for _, d := range []string{e.data, e.out} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	makeRootfs(t, e.rootfs)
	t.Cleanup(e.deleteAll)

	// The default config.json, as a user gets it.
	e.base = *e.defaultSpec(t, filepath.Join(dir, "spec"))
	e.base.Root.Path = e.rootfs
	return e
}

// makeRootfs makes a root filesystem in dir, a new directory: busybox with its applets and the
// probe in /bin, and the mount points of kite oci spec's config.json.
func makeRootfs(t *testing.T, dir string) {
	t.Helper()
	// Mount points must exist in a root that is bound read-only.
	for _, d := range []string{"", "bin", "proc", "dev", "sys", "tmp", "out", "etc"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyExecutable(t, hostBusybox, filepath.Join(dir, "bin", "busybox"))
	copyExecutable(t, filepath.Join(binDir, "probe"), filepath.Join(dir, "bin", "probe"))
	for _, a := range busyboxApplets {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
}

// defaultSpec runs kite oci spec --rootless in bundle, a new directory, and returns the
// config.json it wrote with a read-write bind of the env's out directory at /out added.
func (e *ociEnv) defaultSpec(t *testing.T, bundle string) *specs.Spec {
	t.Helper()
	if err := os.Mkdir(bundle, 0o755); err != nil {
		t.Fatal(err)
	}
	wantCode(t, kite(t, e.data, "oci", "spec", "--rootless", "--bundle", bundle), 0, "kite oci spec --rootless")
	var s specs.Spec
	if err := json.Unmarshal(readFile(t, filepath.Join(bundle, "config.json")), &s); err != nil {
		t.Fatalf("decode kite oci spec's config.json: %v", err)
	}
	if s.Root == nil || s.Root.Path != "rootfs" || s.Process == nil || s.Linux == nil {
		t.Fatalf("kite oci spec's config.json has root %+v, process %+v, linux %+v; want rootfs, a process and a linux section", s.Root, s.Process, s.Linux)
	}
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/out", Type: "bind", Source: e.out, Options: []string{"rbind", "rw"}})
	return &s
}

// ownBundle makes a bundle as a user would: a directory with its own rootfs and the config.json
// of kite oci spec --rootless (root.path "rootfs"), edited to run args with /out bound.
func (e *ociEnv) ownBundle(t *testing.T, args ...string) string {
	t.Helper()
	e.count++
	dir := filepath.Join(e.dir, fmt.Sprintf("own%d", e.count))
	s := e.defaultSpec(t, dir)
	makeRootfs(t, filepath.Join(dir, "rootfs"))
	s.Process.Args = args
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func copyExecutable(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// spec returns a deep copy of the base config.json running args.
func (e *ociEnv) spec(t *testing.T, args ...string) *specs.Spec {
	t.Helper()
	data, err := json.Marshal(&e.base)
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	s.Process.Args = args
	return &s
}

// bundle writes s as the config.json of a new bundle directory and returns the directory.
func (e *ociEnv) bundle(t *testing.T, s *specs.Spec) string {
	t.Helper()
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return e.rawBundle(t, data)
}

// rawBundle writes config as a new bundle's config.json, as it is.
func (e *ociEnv) rawBundle(t *testing.T, config []byte) string {
	t.Helper()
	e.count++
	dir := filepath.Join(e.dir, fmt.Sprintf("bundle%d", e.count))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), config, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// oci runs `kite oci --root ROOT ARGS...` to its end.
func (e *ociEnv) oci(t *testing.T, args ...string) result {
	t.Helper()
	return kite(t, e.data, append([]string{"oci", "--root", e.root}, args...)...)
}

// ociCtr is a container kite oci create made. Its monitor, and so its program, keeps create's
// standard output and error: files, which the test reads as the container writes them.
type ociCtr struct {
	id, bundle     string
	stdout, stderr string
}

// stdoutText is what the container wrote to its stdout so far.
func (c *ociCtr) stdoutText(t *testing.T) string {
	t.Helper()
	return string(readFile(t, c.stdout))
}

// stderrText is what the container's monitor and program wrote to stderr so far.
func (c *ociCtr) stderrText(t *testing.T) string {
	t.Helper()
	return string(readFile(t, c.stderr))
}

// tryCreate runs kite oci create for the bundle with extra flags (before the ID) and returns its
// result: Stdout and Stderr are the files' contents when create ended.
func (e *ociEnv) tryCreate(t *testing.T, id, bundle string, o *options, extra ...string) (result, *ociCtr) {
	t.Helper()
	e.count++
	c := &ociCtr{id: id, bundle: bundle,
		stdout: filepath.Join(e.dir, fmt.Sprintf("%s.%d.stdout", id, e.count)),
		stderr: filepath.Join(e.dir, fmt.Sprintf("%s.%d.stderr", id, e.count))}
	if o == nil {
		o = &options{}
	}
	o.stdout, o.stderr = createFile(t, c.stdout), createFile(t, c.stderr)
	args := append([]string{"oci", "--root", e.root, "create", "--bundle", bundle}, extra...)
	r := kiteWith(t, e.data, o, append(args, id)...)
	r.Stdout, r.Stderr = c.stdoutText(t), c.stderrText(t)
	return r, c
}

// create creates container id from bundle, which must succeed.
func (e *ociEnv) create(t *testing.T, id, bundle string, extra ...string) *ociCtr {
	t.Helper()
	r, c := e.tryCreate(t, id, bundle, nil, extra...)
	wantCode(t, r, 0, "kite oci create "+id)
	return c
}

// start runs kite oci start, which must succeed.
func (e *ociEnv) start(t *testing.T, id string) {
	t.Helper()
	wantCode(t, e.oci(t, "start", id), 0, "kite oci start "+id)
}

// state runs kite oci state, which must succeed, and decodes the state.
func (e *ociEnv) state(t *testing.T, id string) specs.State {
	t.Helper()
	r := e.oci(t, "state", id)
	wantCode(t, r, 0, "kite oci state "+id)
	var s specs.State
	if err := json.Unmarshal([]byte(r.Stdout), &s); err != nil {
		t.Fatalf("decode kite oci state %s: %v\n%s", id, err, r)
	}
	if s.ID != id {
		t.Fatalf("kite oci state %s printed the state of %q", id, s.ID)
	}
	return s
}

// waitStatus polls kite oci state until the container has status want, and returns the state.
func (e *ociEnv) waitStatus(t *testing.T, id string, want specs.ContainerState) specs.State {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		s := e.state(t, id)
		if s.Status == want {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s is still %s after %s, want %s", id, s.Status, waitTimeout, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ids is what kite oci list -q prints.
func (e *ociEnv) ids(t *testing.T) []string {
	t.Helper()
	r := e.oci(t, "list", "-q")
	wantCode(t, r, 0, "kite oci list -q")
	return lines(r.Stdout)
}

// listed is what kite oci list --format json prints, by ID.
func (e *ociEnv) listed(t *testing.T) map[string]specs.State {
	t.Helper()
	r := e.oci(t, "list", "--format", "json")
	wantCode(t, r, 0, "kite oci list --format json")
	var states []specs.State
	if err := json.Unmarshal([]byte(r.Stdout), &states); err != nil {
		t.Fatalf("decode kite oci list --format json: %v\n%s", err, r)
	}
	out := map[string]specs.State{}
	for _, s := range states {
		out[s.ID] = s
	}
	return out
}

// rootEntries lists the --root directory; a root that does not exist has none.
func (e *ociEnv) rootEntries(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(e.root)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, en := range entries {
		names = append(names, en.Name())
	}
	return names
}

// wantNothingLeft checks that the --root holds no container, that kite oci lists none, and that no
// process of kite's works on the --root (no monitor, no init).
func (e *ociEnv) wantNothingLeft(t *testing.T, what string) {
	t.Helper()
	names, ids := e.rootEntries(t), e.ids(t)
	if len(names) > 0 {
		t.Errorf("%s: %s holds %v, want nothing", what, e.root, names)
	}
	if len(ids) > 0 {
		t.Errorf("%s: kite oci list -q shows %v, want nothing", what, ids)
	}
	if len(names) > 0 || len(ids) > 0 {
		// A container is left: its processes run, no use waiting for them to end.
		if left := kiteProcsOf(t, e.root); len(left) > 0 {
			t.Errorf("%s: kite's processes for %s run: %+v", what, e.root, left)
		}
		return
	}
	waitProcs(t, goneWithin, what+": kite's processes for "+e.root, func() []hostProc { return kiteProcsOf(t, e.root) })
}

// deleteAll force-deletes whatever containers a test left behind.
func (e *ociEnv) deleteAll() {
	entries, _ := os.ReadDir(e.root)
	for _, en := range entries {
		runKite(e.data, nil, "oci", "--root", e.root, "delete", "--force", en.Name())
	}
}

// wantFile polls until path holds one or more whole lines (the tests' markers are written by echo,
// which may not have written yet when the file appears) and returns its content.
func wantFile(t *testing.T, path, what string) string {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 && b[len(b)-1] == '\n' {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s did not appear within %s", what, path, waitTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// noFile fails the test if path exists.
func noFile(t *testing.T, path, what string) {
	t.Helper()
	if _, err := os.Lstat(path); err == nil {
		t.Errorf("%s: %s exists", what, path)
	} else if !os.IsNotExist(err) {
		t.Fatal(err)
	}
}

// hostTask is a process of the host, told apart from a later one that reuses its pid by its start
// time.
type hostTask struct {
	PID   int
	Start string
	Comm  string
}

// procStat reads the parent and start time (in clock ticks since boot) of pid from
// /proc/PID/stat; ok is false once pid is gone or a zombie.
func procStat(pid int) (ppid int, start, comm string, ok bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", "", false
	}
	s := string(data)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < 0 {
		return 0, "", "", false
	}
	comm = s[open+1 : end]
	// After "pid (comm) ": state ppid pgrp ... starttime is field 22 of the line, 20 here.
	f := strings.Fields(s[end+1:])
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return 0, "", "", false
	}
	ppid, _ = strconv.Atoi(f[1])
	return ppid, f[19], comm, true
}

// running reports whether the task still runs (and is not a zombie).
func (p hostTask) running() bool {
	_, start, _, ok := procStat(p.PID)
	return ok && start == p.Start
}

// descendants lists pid and every process below it on the host.
func descendants(t *testing.T, pid int) []hostTask {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	children := map[int][]hostTask{}
	var self *hostTask
	for _, en := range entries {
		p, err := strconv.Atoi(en.Name())
		if err != nil {
			continue
		}
		ppid, start, comm, ok := procStat(p)
		if !ok {
			continue
		}
		task := hostTask{PID: p, Start: start, Comm: comm}
		if p == pid {
			self = &task
		}
		children[ppid] = append(children[ppid], task)
	}
	if self == nil {
		return nil
	}
	out := []hostTask{*self}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i].PID]...)
	}
	return out
}

// monitor finds the container's monitor, kite-stage1 run ROOT/ID, by its command line: the
// container's process need not be its child.
func (e *ociEnv) monitor(t *testing.T, id string) int {
	t.Helper()
	var found []hostProc
	for _, p := range hostProcs(t) {
		if p.Exe == filepath.Join(binDir, "kite-stage1") && len(p.Argv) == 3 && p.Argv[1] == "run" && p.Argv[2] == filepath.Join(e.root, id) {
			found = append(found, p)
		}
	}
	if len(found) != 1 {
		t.Fatalf("the monitor of container %s (kite-stage1 run %s): found %+v, want one", id, filepath.Join(e.root, id), found)
	}
	return found[0].PID
}

// tasks lists the processes of container id, whose process is pid: its monitor, and its process
// with everything below it.
func (e *ociEnv) tasks(t *testing.T, id string, pid int) []hostTask {
	t.Helper()
	out := descendants(t, e.monitor(t, id))[:1]
	init := descendants(t, pid)
	if len(init) == 0 {
		t.Fatalf("the process of container %s (%d) is gone", id, pid)
	}
	return append(out, init...)
}

// parentOf is the parent of pid, which must run.
func parentOf(t *testing.T, pid int) int {
	t.Helper()
	ppid, _, _, ok := procStat(pid)
	if !ok {
		t.Fatalf("process %d is gone", pid)
	}
	return ppid
}

// nsPids is the NSpid line of /proc/PID/status: pid's number in each pid namespace it is in,
// the host's first.
func nsPids(t *testing.T, pid int) []string {
	t.Helper()
	for _, l := range strings.Split(string(readFile(t, fmt.Sprintf("/proc/%d/status", pid))), "\n") {
		if v, ok := strings.CutPrefix(l, "NSpid:"); ok {
			return strings.Fields(v)
		}
	}
	t.Fatalf("/proc/%d/status has no NSpid line", pid)
	return nil
}

// waitTasksGone polls until none of tasks runs.
func waitTasksGone(t *testing.T, what string, tasks []hostTask) {
	t.Helper()
	deadline := time.Now().Add(goneWithin)
	for {
		left := slices.DeleteFunc(slices.Clone(tasks), func(p hostTask) bool { return !p.running() })
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still running after %s: %+v", what, goneWithin, left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// capMask is the /proc/PID/status form ("00000000a80425fb") of the capabilities named.
func capMask(t *testing.T, names ...string) string {
	t.Helper()
	var m uint64
	for _, n := range names {
		i := slices.Index(capNames, n)
		if i < 0 {
			t.Fatalf("capMask: unknown capability %s", n)
		}
		m |= 1 << i
	}
	return fmt.Sprintf("%016x", m)
}

// capNames are the capabilities by number (capability.h) up to CAP_SYS_CHROOT and the few above
// it the tests name.
var capNames = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
	"CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
	"CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
	"CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP"}
