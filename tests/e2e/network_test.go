package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kite-runtime/kite/tests/probe/report"
)

// helpers are the programs that connect a pod's network, by --net value, and their packages.
var helpers = map[string]string{"pasta": "passt", "slirp4netns": "slirp4netns"}

// needPasta makes sure pods of their own network can run here: pasta installed and /dev/net/tun
// usable by this user.
func needPasta(t *testing.T) {
	t.Helper()
	needHelper(t, "pasta")
}

// needHelper makes sure pods can run with helper (pasta or slirp4netns) here.
func needHelper(t *testing.T, helper string) {
	t.Helper()
	if _, err := exec.LookPath(helper); err != nil {
		needHost(t, "%s is not on PATH; install the %s package (apt-get install %s)", helper, helpers[helper], helpers[helper])
	}
	f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
	if err != nil {
		needHost(t, "/dev/net/tun cannot be opened (%v); as root: chmod 0666 /dev/net/tun (make test does it when run as root)", err)
	}
	f.Close()
}

// lines splits output into its non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// hostInterfaces lists this process's network interfaces, as the probe does in a pod.
func hostInterfaces(t *testing.T) []string {
	t.Helper()
	data := readFile(t, "/proc/net/dev")
	var names []string
	for _, l := range strings.Split(string(data), "\n") {
		if name, _, ok := strings.Cut(l, ":"); ok && !strings.Contains(name, "|") {
			names = append(names, strings.TrimSpace(name))
		}
	}
	slices.Sort(names)
	return names
}

// freePort picks a loopback port of proto (tcp or udp) nobody uses, for a program that binds it
// itself: the kernel chooses it.
func freePort(t *testing.T, proto string) int {
	t.Helper()
	if proto == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestNetworkModes checks what the app sees of each --net: only lo with none (and nothing of the
// host's loopback), the host's interfaces with host, lo and one interface of pasta's by default.
// /sys is the pod's own read-only sysfs unless the pod has the host's network.
func TestNetworkModes(t *testing.T) {
	needPasta(t)
	dir := sharedDir(t, "busybox")
	ref := layoutRef("busybox")

	r := kite(t, dir, "run", "--net=none", ref, "--", "probe", "interfaces")
	wantCode(t, r, 0, "--net=none")
	if got := lines(r.Stdout); !slices.Equal(got, []string{"lo"}) {
		t.Errorf("--net=none: interfaces %v, want only lo", got)
	}
	// A server on the host's loopback is out of reach.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, "host answered")
			c.Close()
		}
	}()
	hostAddr := l.Addr().String()
	r = kite(t, dir, "run", "--net=none", ref, "--", "probe", "connect", "tcp", hostAddr)
	if r.Code == 0 || strings.Contains(r.Stdout, "host answered") {
		t.Errorf("--net=none reached the host's %s: %s", hostAddr, r)
	}

	r = kite(t, dir, "run", "--net=host", ref, "--", "probe", "interfaces")
	wantCode(t, r, 0, "--net=host")
	got := lines(r.Stdout)
	slices.Sort(got)
	if want := hostInterfaces(t); !slices.Equal(got, want) {
		t.Errorf("--net=host: interfaces %v, want the host's %v", got, want)
	}

	r = kite(t, dir, "run", ref, "--", "probe", "interfaces")
	wantCode(t, r, 0, "the default network")
	if got := lines(r.Stdout); len(got) != 2 || !slices.Contains(got, "lo") {
		t.Errorf("the default network: interfaces %v, want lo and pasta's", got)
	}

	for _, mode := range []string{"default", "none", "host"} {
		rep := decodeInfo(t, kite(t, dir, "run", "--net="+mode, ref, "--", "probe", "info"))
		i := slices.IndexFunc(rep.Mounts, func(m report.Mount) bool { return m.MountPoint == "/sys" })
		if i < 0 {
			t.Errorf("--net=%s: no /sys", mode)
			continue
		}
		m := rep.Mounts[i]
		if !strings.Contains(","+m.Options+",", ",ro,") {
			t.Errorf("--net=%s: /sys is not read-only: %+v", mode, m)
		}
		// The host's /sys, bound, is its root; a fresh one too: tell them by the network
		// namespace the pod shares or not.
		own := rep.Namespaces["net"] != hostNamespace(t, "net")
		if own != (mode != "host") {
			t.Errorf("--net=%s: network namespace %s, the host's %s", mode, rep.Namespaces["net"], hostNamespace(t, "net"))
		}
	}
}

// hostNamespace is this process's namespace of kind ns ("net:[4026531840]").
func hostNamespace(t *testing.T, ns string) string {
	t.Helper()
	link, err := os.Readlink("/proc/self/ns/" + ns)
	if err != nil {
		t.Fatal(err)
	}
	return link
}

// TestPublishedPorts serves a TCP and a UDP port in a pod, published on host ports the kernel
// picked, and talks to them from the host's loopback. The TCP port is published on another
// number than the pod's; the UDP one on the same, as Debian 12's pasta does not translate UDP
// ports for traffic from the host's loopback (README, "Networks").
func TestPublishedPorts(t *testing.T) {
	dir := sharedDir(t, "busybox")
	for _, c := range []struct{ helper, proto string }{{"pasta", "tcp"}, {"pasta", "udp"}, {"slirp4netns", "tcp"}, {"slirp4netns", "udp"}} {
		helper, proto := c.helper, c.proto
		t.Run(helper+"/"+proto, func(t *testing.T) {
			needHelper(t, helper)
			port := freePort(t, proto)
			podPort := 8080
			if proto == "udp" {
				podPort = port
			}
			p := start(t, dir, nil, "run", "--net="+helper, "--port", fmt.Sprintf("127.0.0.1:%d:%d/%s", port, podPort, proto), layoutRef("busybox"), "--", "probe", "serve", proto, strconv.Itoa(podPort))
			waitOutput(t, p, "ready")
			c, err := net.DialTimeout(proto, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := fmt.Fprintln(c, "hello"); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil || line != "pod got: hello\n" {
				t.Errorf("the pod's answer on host port %d/%s: %q, %v", port, proto, line, err)
			}
			wantCode(t, finish(t, p), 0, "the server pod")
		})
	}
}

// TestPodReachesHost has the pod connect to a server the test runs on the host's loopback only,
// through the gateway address pasta (or slirp4netns) maps to it.
func TestPodReachesHost(t *testing.T) {
	dir := sharedDir(t, "busybox")
	for _, helper := range []string{"pasta", "slirp4netns"} {
		t.Run(helper, func(t *testing.T) {
			needHelper(t, helper)
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			go func() {
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				fmt.Fprintf(c, "host got: %s", line)
			}()
			port := l.Addr().(*net.TCPAddr).Port
			r := kite(t, dir, "run", "--net="+helper, layoutRef("busybox"), "--", "probe", "connect", "tcp", "gateway:"+strconv.Itoa(port))
			wantCode(t, r, 0, "a connection to the host's loopback through the gateway")
			if r.Stdout != "host got: hello\n" {
				t.Errorf("the host's answer: %q", r.Stdout)
			}
		})
	}
}

// TestNetworkFiles checks /etc/resolv.conf, /etc/hosts and /etc/hostname against the flags.
func TestNetworkFiles(t *testing.T) {
	needPasta(t)
	dir := sharedDir(t, "busybox")
	show := []string{"sh", "-c", "cat /etc/resolv.conf; echo ---; cat /etc/hosts; echo ---; cat /etc/hostname; hostname"}
	r := kite(t, dir, append([]string{"run", "--hostname", "web", "--dns", "192.0.2.53", "--dns", "2001:db8::53",
		"--dns-search", "a.test", "--dns-search", "b.test", "--dns-opt", "ndots:3", "--dns-domain", "a.test",
		"--hosts-entry", "192.0.2.10=db", "--hosts-entry", "192.0.2.11=cache.a.test", layoutRef("busybox"), "--"}, show...)...)
	wantCode(t, r, 0, "the network files")
	parts := strings.Split(r.Stdout, "---\n")
	if len(parts) != 3 {
		t.Fatalf("output: %q", r.Stdout)
	}
	for _, want := range []string{"domain a.test\n", "search a.test b.test\n", "nameserver 192.0.2.53\nnameserver 2001:db8::53\n", "options ndots:3\n"} {
		if !strings.Contains(parts[0], want) {
			t.Errorf("resolv.conf has no %q:\n%s", want, parts[0])
		}
	}
	for _, want := range []string{"127.0.0.1\tlocalhost\n", "127.0.1.1\tweb\n", "192.0.2.10\tdb\n", "192.0.2.11\tcache.a.test\n"} {
		if !strings.Contains(parts[1], want) {
			t.Errorf("hosts has no %q:\n%s", want, parts[1])
		}
	}
	if parts[2] != "web\nweb\n" {
		t.Errorf("/etc/hostname and hostname: %q, want web twice", parts[2])
	}

	// By default: the host's resolvers (through pasta's forwarder for one on the host's loopback).
	r = kite(t, dir, "run", layoutRef("busybox"), "--", "cat", "/etc/resolv.conf")
	wantCode(t, r, 0, "the default resolv.conf")
	for _, l := range lines(string(readFile(t, "/etc/resolv.conf"))) {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "nameserver" && !strings.HasPrefix(f[1], "127.") && f[1] != "::1" {
			if !strings.Contains(r.Stdout, l+"\n") {
				t.Errorf("the host's %q is not in the pod's resolv.conf:\n%s", l, r.Stdout)
			}
		}
	}
	// --dns=none: the image's own (the busybox image has none).
	r = kite(t, dir, "run", "--dns=none", layoutRef("busybox"), "--", "sh", "-c", "test -e /etc/resolv.conf && echo present || echo absent")
	if r.Stdout != "absent\n" {
		t.Errorf("--dns=none: %s", r)
	}
}

// TestMultiAppLocalhost has two apps of one pod talk over its loopback.
func TestMultiAppLocalhost(t *testing.T) {
	needPasta(t)
	dir := sharedDir(t, "busybox")
	r := kite(t, dir, "run", "--exit-policy", "all",
		layoutRef("busybox"), "--name", "server", "--", "probe", "serve", "tcp", "9000", "---",
		layoutRef("busybox"), "--name", "client", "--", "probe", "connect", "-wait", "tcp", "127.0.0.1:9000")
	wantCode(t, r, 0, "a pod whose apps talk over localhost")
	if !strings.Contains(r.Stdout, "pod got: hello\n") {
		t.Errorf("the client did not get the server's answer: %s", r)
	}
}

// TestNetworkRefused checks the refusals of the network flags: exit 125 with what to do, and no
// pod left.
func TestNetworkRefused(t *testing.T) {
	needPasta(t)
	needUnprivileged(t)
	dir := sharedDir(t, "busybox")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	before := podEntries(t, dir)
	for _, c := range []struct {
		args []string
		env  []string
		says string
	}{
		{[]string{"--port", fmt.Sprintf("127.0.0.1:%d:80", busyPort)}, nil, "in use"},
		{[]string{"--port", "80:80"}, nil, "privileged"},
		{[]string{"--port", "8080"}, nil, "no pod port"},
		{[]string{"--net=none", "--port", "8080:80"}, nil, "there is none to publish from"},
		{[]string{"--net=bridge"}, nil, "use default"},
		{[]string{"--port", "18080:80", "--port", "18080:81"}, nil, "published twice"},
	} {
		r := kiteWith(t, dir, &options{env: c.env}, append(append([]string{"run"}, c.args...), layoutRef("busybox"), "--", "true")...)
		if r.Code != 125 || !strings.Contains(r.Stderr, c.says) {
			t.Errorf("%v %v: want 125 and %q, got %s", c.env, c.args, c.says, r)
		}
	}
	// A port given twice is known before a pod is prepared, not only where it would run.
	r := kite(t, dir, "prepare", "--port", "18080:80", "--port", "18080:81", layoutRef("busybox"))
	if r.Code != 125 || !strings.Contains(r.Stderr, "published twice") {
		t.Errorf("kite prepare with a port given twice: want 125, got %s", r)
	}
	if after := podEntries(t, dir); !slices.Equal(before, after) {
		t.Errorf("refused runs left pods: %v, before %v", after, before)
	}
	// Without pasta (a store of its own: without newuidmap on PATH either, the pod maps only the
	// caller's ids).
	fresh := newDataDir(t)
	r = kiteWith(t, fresh, &options{env: []string{"PATH=/nonexistent"}}, "run", layoutRef("busybox"), "--", "true")
	if r.Code != 125 || !strings.Contains(r.Stderr, "needs pasta") || !strings.Contains(r.Stderr, "apt-get install passt") {
		t.Errorf("without pasta: want 125 and how to install it, got %s", r)
	}
	if left := podEntries(t, fresh); len(left) > 0 {
		t.Errorf("the run without pasta left pods: %v", left)
	}
}

// TestNoHelperLeft checks that the network helper ends with its pod: when SIGTERM ends the app,
// and when kite run is killed with SIGKILL.
func TestNoHelperLeft(t *testing.T) {
	dir := sharedDir(t, "busybox")
	for _, c := range []struct{ helper, how string }{{"pasta", "pod stopped"}, {"pasta", "kite killed"}, {"slirp4netns", "pod stopped"}, {"slirp4netns", "kite killed"}} {
		how := c.how
		t.Run(c.helper+"/"+how, func(t *testing.T) {
			needHelper(t, c.helper)
			p := start(t, dir, nil, "run", "--net="+c.helper, "--port", fmt.Sprintf("127.0.0.1:%d:80", freePort(t, "tcp")), layoutRef("busybox"), "--", "sh", "-c", "echo ready; exec sleep 30")
			waitOutput(t, p, "ready")
			// pasta runs as passt.avx2 (or passt) once it has chosen its build for this CPU.
			helper := childNamed(t, p.cmd.Process.Pid, c.helper, "passt")
			if how == "kite killed" {
				syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
			} else {
				p.cmd.Process.Signal(syscall.SIGTERM)
			}
			finish(t, p)
			deadline := time.Now().Add(5 * time.Second)
			for alive(helper) {
				if time.Now().After(deadline) {
					t.Fatalf("%s (pid %d) still runs after its pod ended (%s)", c.helper, helper, how)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// childNamed returns the pid of the child of pid whose name starts with one of names.
func childNamed(t *testing.T, pid int, names ...string) int {
	t.Helper()
	data := readFile(t, fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	for _, f := range strings.Fields(string(data)) {
		child, _ := strconv.Atoi(f)
		comm, err := os.ReadFile(filepath.Join("/proc", f, "comm"))
		if err != nil {
			continue
		}
		for _, n := range names {
			if strings.HasPrefix(string(comm), n) {
				return child
			}
		}
	}
	t.Fatalf("kite (pid %d) has no child named %v: children %q", pid, names, data)
	return 0
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(data), ')')
	return i < 0 || i+2 >= len(data) || data[i+2] != 'Z'
}

// TestSlirp4netnsWithoutPasta runs a pod of the default network where slirp4netns is on PATH and
// pasta is not: slirp4netns connects it (its interface is tap0).
func TestSlirp4netnsWithoutPasta(t *testing.T) {
	needHelper(t, "slirp4netns")
	path, _ := exec.LookPath("slirp4netns")
	bin := newScratchDir(t, "path-")
	if err := os.Symlink(path, filepath.Join(bin, "slirp4netns")); err != nil {
		t.Fatal(err)
	}
	// A store of its own: without newuidmap on that PATH, the pod maps only the caller's ids.
	r := kiteWith(t, newDataDir(t), &options{env: []string{"PATH=" + bin}}, "run", layoutRef("busybox"), "--", "probe", "interfaces")
	wantCode(t, r, 0, "the default network without pasta")
	if got := lines(r.Stdout); !slices.Equal(got, []string{"lo", "tap0"}) && !slices.Equal(got, []string{"tap0", "lo"}) {
		t.Errorf("interfaces %v, want lo and slirp4netns's tap0", got)
	}
}
