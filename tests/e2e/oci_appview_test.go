package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/kite-runtime/kite/tests/probe/report"
)

// TestOCIAppView checks, from inside, that the program gets what config.json asks for: id maps,
// capability sets, no_new_privs, a seccomp filter, hostname, sysctls, cwd, environment and rlimits,
// namespaces, a read-only or writable root, devices bound from the host and the root's propagation.
func TestOCIAppView(t *testing.T) {
	e := newOCIEnv(t)
	const none = "0000000000000000"
	caps := func(rep report.Report) string {
		return strings.Join([]string{rep.CapBnd, rep.CapPrm, rep.CapEff, rep.CapInh, rep.CapAmb}, " ")
	}

	t.Run("default", func(t *testing.T) {
		rep, _ := decodeReport(t, ociRunToEnd(t, e, "default", e.spec(t, "probe", "info")))
		// kite oci spec --rootless maps only the caller, to 0.
		for name, m := range map[string]string{"uid_map": rep.UIDMap, "gid_map": rep.GIDMap} {
			own := os.Getuid()
			if name == "gid_map" {
				own = os.Getgid()
			}
			if got, want := parseIDMap(t, m), []idRange{{0, uint64(own), 1}}; !slices.Equal(got, want) {
				t.Errorf("%s = %q, want \"0 %d 1\" as config.json says", name, m, own)
			}
		}
		if rep.UID != 0 || rep.GID != 0 {
			t.Errorf("uid %d gid %d, want 0 0", rep.UID, rep.GID)
		}
		c := e.base.Process.Capabilities
		bnd, prm, eff := capMask(t, c.Bounding...), capMask(t, c.Permitted...), capMask(t, c.Effective...)
		if got, want := caps(rep), strings.Join([]string{bnd, prm, eff, none, none}, " "); got != want {
			t.Errorf("bnd prm eff inh amb = %s, want %s, as config.json says", got, want)
		}
		if rep.NoNewPrivs != 1 || rep.Seccomp != 0 {
			t.Errorf("no_new_privs %d, seccomp %d; want 1 and 0 (kite oci spec sets no profile)", rep.NoNewPrivs, rep.Seccomp)
		}
		if rep.Hostname != "kite" {
			t.Errorf("hostname %q, want kite oci spec's kite", rep.Hostname)
		}
		if m, ok := rep.MountAt("/"); !ok || !slices.Contains(strings.Split(m.Options, ","), "ro") {
			t.Errorf("the root is mounted %+v, want read-only as root.readonly says", m)
		}
		if m, ok := rep.MountAt("/out"); !ok || !slices.Contains(strings.Split(m.Options, ","), "rw") {
			t.Errorf("/out is mounted %+v, want the read-write bind of config.json", m)
		}
		// kite oci spec's masked paths that this host has: a file is masked by /dev/null, a
		// directory by an empty read-only tmpfs.
		masked := 0
		for _, p := range e.base.Linux.MaskedPaths {
			st, err := os.Stat(p)
			if err != nil {
				continue
			}
			masked++
			m, ok := rep.MountAt(p)
			switch {
			case !ok:
				t.Errorf("masked path %s: nothing mounted on it", p)
			case st.IsDir() && (m.FSType != "tmpfs" || !slices.Contains(strings.Split(m.Options, ","), "ro")):
				t.Errorf("masked directory %s is %+v, want an empty read-only tmpfs", p, m)
			case !st.IsDir() && m.Root != "/null":
				t.Errorf("masked file %s is %+v, want /dev/null bound on it", p, m)
			}
		}
		if masked == 0 {
			t.Errorf("none of the masked paths %v is on this host", e.base.Linux.MaskedPaths)
		}
		if m, ok := rep.MountAt("/proc/sys"); !ok || !slices.Contains(strings.Split(m.Options, ","), "ro") {
			t.Errorf("/proc/sys is %+v, want read-only", m)
		}
		if rep.Cwd != "/" || !slices.Contains(rep.Env, "TERM=xterm") {
			t.Errorf("cwd %q, env %q; want kite oci spec's / and TERM=xterm", rep.Cwd, rep.Env)
		}
		checkFDs(t, rep)
	})

	t.Run("no user namespace", func(t *testing.T) {
		needUnprivileged(t)
		needSubIDs(t)
		s := e.spec(t, "probe", "info")
		withoutUserNamespace(s)
		rep, _ := decodeReport(t, ociRunToEnd(t, e, "userns", s))
		if got, want := parseIDMap(t, rep.UIDMap), wantDefaultMap(os.Getuid(), "/etc/subuid"); !slices.Equal(got, want) {
			t.Errorf("uid_map = %q, want %v: 0 the caller, then its subordinate ranges", rep.UIDMap, want)
		}
		if got, want := parseIDMap(t, rep.GIDMap), wantDefaultMap(os.Getgid(), "/etc/subgid"); !slices.Equal(got, want) {
			t.Errorf("gid_map = %q, want %v: 0 the caller's group, then its subordinate ranges", rep.GIDMap, want)
		}
		if rep.Namespaces["user"] == hostNamespace(t, "user") {
			t.Errorf("the program is in the host's user namespace")
		}
	})

	t.Run("capabilities", func(t *testing.T) {
		s := e.spec(t, "probe", "info")
		set := []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
		s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: set, Effective: set, Permitted: set}
		rep, _ := decodeReport(t, ociRunToEnd(t, e, "caps", s))
		m := capMask(t, set...)
		if got, want := caps(rep), strings.Join([]string{m, m, m, none, none}, " "); got != want {
			t.Errorf("bnd prm eff inh amb = %s, want %s", got, want)
		}
	})

	t.Run("ambient for uid 1000", func(t *testing.T) {
		needSubIDs(t)
		s := e.spec(t, "probe", "info")
		withoutUserNamespace(s)
		s.Process.User = specs.User{UID: 1000, GID: 1000}
		amb := []string{"CAP_KILL", "CAP_NET_BIND_SERVICE"}
		c := s.Process.Capabilities
		c.Inheritable, c.Ambient, c.Permitted, c.Effective = amb, amb, amb, amb
		rep, _ := decodeReport(t, ociRunToEnd(t, e, "ambient", s))
		if rep.UID != 1000 || rep.EUID != 1000 || rep.GID != 1000 {
			t.Errorf("uid %d euid %d gid %d, want 1000", rep.UID, rep.EUID, rep.GID)
		}
		m := capMask(t, amb...)
		if got, want := caps(rep), strings.Join([]string{capMask(t, c.Bounding...), m, m, m, m}, " "); got != want {
			t.Errorf("bnd prm eff inh amb = %s, want %s", got, want)
		}
	})

	t.Run("uid 1000 without ambient", func(t *testing.T) {
		needSubIDs(t)
		s := e.spec(t, "probe", "info")
		withoutUserNamespace(s)
		s.Process.User = specs.User{UID: 1000, GID: 1000}
		rep, _ := decodeReport(t, ociRunToEnd(t, e, "noambient", s))
		if got, want := caps(rep), strings.Join([]string{capMask(t, s.Process.Capabilities.Bounding...), none, none, none, none}, " "); got != want {
			t.Errorf("bnd prm eff inh amb = %s, want %s", got, want)
		}
	})

	// A profile kite oci spec does not write: allow all, but getppid fails with ENOSYS, and keyctl
	// with EACCES when its first argument is 1, which the probe's call does not pass (it passes 0).
	enosys, eacces := uint(unix.ENOSYS), uint(unix.EACCES)
	profile := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: &enosys},
			{Names: []string{"keyctl"}, Action: specs.ActErrno, ErrnoRet: &eacces, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 1, Op: specs.OpEqualTo}}},
		}}
	for _, nnp := range []bool{true, false} {
		t.Run(fmt.Sprintf("seccomp noNewPrivileges=%v", nnp), func(t *testing.T) {
			s := e.spec(t, "sh", "-c", "probe info && probe syscall getppid && probe syscall keyctl")
			s.Linux.Seccomp = profile
			s.Process.NoNewPrivileges = nnp
			rep, rest := decodeReport(t, ociRunToEnd(t, e, "seccomp", s))
			wantNNP := 0
			if nnp {
				wantNNP = 1
			}
			if rep.Seccomp != 2 || rep.NoNewPrivs != wantNNP {
				t.Errorf("seccomp mode %d, no_new_privs %d; want 2 and %d", rep.Seccomp, rep.NoNewPrivs, wantNNP)
			}
			if want := []string{"getppid: ENOSYS", "keyctl: ok"}; !slices.Equal(rest, want) {
				t.Errorf("the system calls returned %q, want %q", rest, want)
			}
		})
	}

	t.Run("hostname", func(t *testing.T) {
		s := e.spec(t, "probe", "info")
		s.Hostname = "oci-probe-host"
		if rep, _ := decodeReport(t, ociRunToEnd(t, e, "hostname", s)); rep.Hostname != "oci-probe-host" {
			t.Errorf("hostname %q, want oci-probe-host", rep.Hostname)
		}
	})

	t.Run("sysctl", func(t *testing.T) {
		const path = "/proc/sys/net/ipv4/ip_forward"
		base := strings.TrimSpace(ociRunToEnd(t, e, "nosysctl", e.spec(t, "cat", path)))
		want := "1"
		if base == "1" {
			want = "0"
		}
		s := e.spec(t, "cat", path)
		s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": want}
		if got := strings.TrimSpace(ociRunToEnd(t, e, "sysctl", s)); got != want {
			t.Errorf("%s = %q in a container whose config.json sets it to %s (%q without)", path, got, want, base)
		}
	})

	t.Run("process", func(t *testing.T) {
		s := e.spec(t, "sh", "-c", "probe info && ulimit -Sn && ulimit -Hn")
		s.Process.Cwd = "/tmp"
		s.Process.Env = append(s.Process.Env, "KITE_OCI_TEST=yes")
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 512, Hard: 1000}}
		rep, rest := decodeReport(t, ociRunToEnd(t, e, "process", s))
		if rep.Cwd != "/tmp" || !slices.Contains(rep.Env, "KITE_OCI_TEST=yes") {
			t.Errorf("cwd %q, env %q; want /tmp and KITE_OCI_TEST=yes", rep.Cwd, rep.Env)
		}
		if !slices.Equal(rest, []string{"512", "1000"}) {
			t.Errorf("RLIMIT_NOFILE soft and hard: %q, want 512 and 1000", rest)
		}
	})

	t.Run("namespaces", func(t *testing.T) {
		s := e.spec(t, "probe", "info")
		// Without a network or IPC namespace, the program has the host's (and no mqueue mount,
		// which would be the host's /dev/mqueue, which not every host has).
		s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool {
			return n.Type == specs.NetworkNamespace || n.Type == specs.IPCNamespace
		})
		s.Mounts = slices.DeleteFunc(s.Mounts, func(m specs.Mount) bool { return m.Type == "mqueue" })
		rep, _ := decodeReport(t, ociRunToEnd(t, e, "namespaces", s))
		for _, ns := range []string{"user", "mnt", "pid", "uts", "ipc", "net", "cgroup"} {
			shared := ns == "net" || ns == "ipc"
			if (rep.Namespaces[ns] == hostNamespace(t, ns)) != shared {
				t.Errorf("%s namespace %s, the host's %s; want it shared: %v", ns, rep.Namespaces[ns], hostNamespace(t, ns), shared)
			}
		}
		if m, ok := rep.MountAt("/sys"); !ok || !slices.Contains(strings.Split(m.Options, ","), "ro") {
			t.Errorf("/sys is %+v, want the host's, read-only", m)
		}
	})

	t.Run("writable root", func(t *testing.T) {
		s := e.spec(t, "sh", "-c", "echo written > /etc/oci-written && cat /etc/oci-written")
		s.Root.Readonly = false
		if got := ociRunToEnd(t, e, "rw", s); got != "written\n" {
			t.Errorf("the program printed %q, want written", got)
		}
		if got := string(readFile(t, filepath.Join(e.rootfs, "etc", "oci-written"))); got != "written\n" {
			t.Errorf("the root filesystem's file holds %q", got)
		}
		os.Remove(filepath.Join(e.rootfs, "etc", "oci-written"))
		// Read-only, the write fails.
		s = e.spec(t, "sh", "-c", "echo written > /etc/oci-written || echo refused")
		if got := ociRunToEnd(t, e, "ro", s); got != "refused\n" {
			t.Errorf("the program printed %q writing to a read-only root, want refused", got)
		}
		noFile(t, filepath.Join(e.rootfs, "etc", "oci-written"), "a write to a read-only root")
	})

	t.Run("devices", func(t *testing.T) {
		var st unix.Stat_t
		if err := unix.Stat("/dev/kmsg", &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR {
			needHost(t, "the host has no /dev/kmsg character device (%v)", err)
		}
		s := e.spec(t, "probe", "stat", "/dev/kmsg", "/dev/null")
		s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/kmsg", Type: "c", Major: int64(unix.Major(st.Rdev)), Minor: int64(unix.Minor(st.Rdev))}}
		stats := map[string]report.Stat{}
		dec := json.NewDecoder(strings.NewReader(ociRunToEnd(t, e, "devices", s)))
		for dec.More() {
			var st report.Stat
			if err := dec.Decode(&st); err != nil {
				t.Fatal(err)
			}
			stats[st.Path] = st
		}
		for _, p := range []string{"/dev/kmsg", "/dev/null"} {
			if stats[p].Type != "char" {
				t.Errorf("%s in the container: %+v, want the host's character device", p, stats[p])
			}
		}
	})

	t.Run("rootfsPropagation", func(t *testing.T) {
		for _, tc := range []struct{ propagation, want string }{{"", "private"}, {"private", "private"}, {"shared", "shared:"}} {
			s := e.spec(t, "cat", "/proc/self/mountinfo")
			s.Linux.RootfsPropagation = tc.propagation
			var root string
			for _, l := range lines(ociRunToEnd(t, e, "propagation", s)) {
				if f := strings.Fields(l); len(f) > 5 && f[4] == "/" {
					root = l
				}
			}
			shared := strings.Contains(root, " shared:")
			if root == "" || shared != (tc.want == "shared:") {
				t.Errorf("rootfsPropagation %q: the root's mountinfo line is %q, want it %s", tc.propagation, root, tc.want)
			}
		}
	})
}

// TestOCISpecDefaultCaps checks that kite oci spec's config.json confines the program as kite run
// confines an app, as its help text and code say ("Docker's and kite run's default set"): the
// same capabilities, seen from inside.
func TestOCISpecDefaultCaps(t *testing.T) {
	e := newOCIEnv(t)
	run := decodeInfo(t, runImage(t, sharedDir(t, "busybox"), layoutRef("busybox"), "probe", "info"))
	oci, _ := decodeReport(t, ociRunToEnd(t, e, "default", e.spec(t, "probe", "info")))
	for _, set := range []struct{ name, run, oci string }{{"bounding", run.CapBnd, oci.CapBnd}, {"permitted", run.CapPrm, oci.CapPrm}, {"effective", run.CapEff, oci.CapEff}} {
		if set.run != set.oci {
			t.Errorf("%s set: kite run's app has %s, kite oci spec's %s", set.name, set.run, set.oci)
		}
	}
}

// TestOCIPreserveFDs passes the container's program a descriptor with --preserve-fds, and checks
// that without it the program gets none but stdio.
func TestOCIPreserveFDs(t *testing.T) {
	e := newOCIEnv(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b := e.bundle(t, e.spec(t, "sh", "-c", "echo through fd 3 >&3"))
	res, _ := e.tryCreate(t, "c1", b, &options{extraFiles: []*os.File{w}}, "--preserve-fds", "1")
	w.Close()
	wantCode(t, res, 0, "kite oci create --preserve-fds 1")
	e.start(t, "c1")
	e.waitStatus(t, "c1", specs.StateStopped)
	r.SetReadDeadline(time.Now().Add(waitTimeout))
	got, err := io.ReadAll(r)
	if err != nil || string(got) != "through fd 3\n" {
		t.Errorf("read from the descriptor passed on: %q, %v", got, err)
	}
	wantCode(t, e.oci(t, "delete", "c1"), 0, "kite oci delete")

	// Without --preserve-fds, what kite oci create's caller leaves open does not reach the program.
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	res, c := e.tryCreate(t, "c2", e.bundle(t, e.spec(t, "probe", "info")), &options{extraFiles: []*os.File{devNull, devNull}})
	wantCode(t, res, 0, "kite oci create")
	e.start(t, "c2")
	e.waitStatus(t, "c2", specs.StateStopped)
	rep, _ := decodeReport(t, c.stdoutText(t))
	checkFDs(t, rep)
}
