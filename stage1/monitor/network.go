package monitor

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kite-runtime/kite/pkg/poddir"
	"golang.org/x/sys/unix"
)

// netHelper is the program that connects the pod's network namespace to the host's network
// (pasta or slirp4netns), a child of the monitor for the pod's life.
type netHelper struct {
	name string
	pid  int
	// exit, for slirp4netns, is the write end of its --exit-fd: closing it ends slirp4netns.
	exit *os.File
}

// helperReadyTimeout bounds the wait for the helper to have set up the pod's network: a helper
// that neither finishes nor exits is stuck. It is generous because a busy machine is slow, not
// stuck: with 50 pods starting at once on two cores, pasta took more than 10 s.
const helperReadyTimeout = 60 * time.Second

// startNetHelper starts n's helper for the network namespace of the pod's init and waits until
// the pod's network is up. The helper gets SIGKILL should the monitor die (the calling thread
// must be the monitor's main thread, which lives as long as the monitor).
func startNetHelper(n *poddir.Network, initPid int, podDir string) (*netHelper, error) {
	path, err := exec.LookPath(n.Helper)
	if err != nil {
		return nil, fmt.Errorf("the pod's network needs %s, which is not in PATH (%s): install it, or run the pod with --net=host", n.Helper, os.Getenv("PATH"))
	}
	switch n.Helper {
	case poddir.HelperPasta:
		return startPasta(path, n, initPid, podDir)
	case poddir.HelperSlirp4netns:
		return startSlirp4netns(path, n, initPid, podDir)
	}
	return nil, fmt.Errorf("pod.json names an unknown network helper %q", n.Helper)
}

// forkHelper starts path with args in directory dir, stdin /dev/null, stdout and stderr out, and
// extra as descriptors 3 on. Its own process group keeps a ^C at the terminal from reaching it: the app
// gets it through the monitor, the helper only its end with the pod's.
func forkHelper(path, dir string, args []string, out *os.File, extra ...*os.File) (int, error) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer null.Close()
	files := []uintptr{null.Fd(), out.Fd(), out.Fd()}
	for _, f := range extra {
		files = append(files, f.Fd())
	}
	pid, err := syscall.ForkExec(path, append([]string{path}, args...), &syscall.ProcAttr{
		Dir:   dir,
		Env:   os.Environ(),
		Files: files,
		Sys:   &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true},
	})
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", path, err)
	}
	return pid, nil
}

// startPasta runs pasta, which writes its pid file once the namespace's network is configured.
func startPasta(path string, n *poddir.Network, initPid int, podDir string) (*netHelper, error) {
	pidFile := filepath.Join(podDir, "pasta.pid")
	os.Remove(pidFile)
	// pasta says nothing but its errors (--quiet).
	pid, err := forkHelper(path, "/", pastaArgs(n, initPid, pidFile), os.Stderr)
	if err != nil {
		return nil, err
	}
	h := &netHelper{name: n.Helper, pid: pid}
	deadline := time.Now().Add(helperReadyTimeout)
	for {
		if data, err := os.ReadFile(pidFile); err == nil && len(data) > 0 {
			os.Remove(pidFile)
			return h, nil
		}
		if err := h.exited(); err != nil {
			return nil, fmt.Errorf("%w; its message is above", err)
		}
		if time.Now().After(deadline) {
			h.stop()
			return nil, fmt.Errorf("%s did not set up the pod's network within %s", n.Helper, helperReadyTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// exited reports, as an error, that the helper has already exited.
func (h *netHelper) exited() error {
	var ws syscall.WaitStatus
	if done, _ := syscall.Wait4(h.pid, &ws, syscall.WNOHANG, nil); done == h.pid {
		return fmt.Errorf("%s could not set up the pod's network (it exited with status %d)", h.name, ws.ExitStatus())
	}
	return nil
}

// pastaArgs runs pasta in the foreground for the network namespace of pid: it configures the
// namespace's interface like the host's, publishes n's ports and nothing else (pasta would
// otherwise forward every port the pod listens on, and the host's to the pod), and answers DNS
// on poddir's forwarder address with the host's resolver.
func pastaArgs(n *poddir.Network, pid int, pidFile string) []string {
	tcp, udp := portSpecs(n.Ports)
	args := []string{
		"--config-net", "--foreground", "--quiet", "--pid", pidFile,
		"--tcp-ports", tcp, "--udp-ports", udp, "--tcp-ns", "none", "--udp-ns", "none",
		"--dns-forward", poddir.PastaDNS,
	}
	if os.Geteuid() == 0 {
		// Started as root, pasta would become nobody, who may not enter the namespaces of a
		// pod of root's. It drops its capabilities itself once it has set up the network.
		args = append(args, "--runas", "0:0")
	}
	return append(args, strconv.Itoa(pid))
}

// portSpecs writes ports as pasta's -t and -u specs: [ADDR/]HOSTPORT:PODPORT, comma-separated,
// or none.
func portSpecs(ports []poddir.Port) (tcp, udp string) {
	var t, u []string
	for _, p := range ports {
		s := fmt.Sprintf("%d:%d", p.HostPort, p.PodPort)
		if p.HostIP != "" {
			s = p.HostIP + "/" + s
		}
		if p.Protocol == "udp" {
			u = append(u, s)
		} else {
			t = append(t, s)
		}
	}
	join := func(s []string) string {
		if len(s) == 0 {
			return "none"
		}
		return strings.Join(s, ",")
	}
	return join(t), join(u)
}

// stop ends the helper once the pod has ended, and reaps it.
func (h *netHelper) stop() {
	if h == nil {
		return
	}
	if h.exit != nil {
		h.exit.Close()
	}
	unix.Kill(h.pid, unix.SIGTERM)
	waitPid(h.pid)
}
