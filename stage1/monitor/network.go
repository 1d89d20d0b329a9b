package monitor

import (
	"fmt"
	"os"
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
}

// helperReadyTimeout bounds the wait for the helper to have set up the pod's network.
const helperReadyTimeout = 10 * time.Second

// startNetHelper starts n's helper for the network namespace of the pod's init and waits until
// the pod's network is up. The helper gets SIGKILL should the monitor die (the calling thread
// must be the monitor's main thread, which lives as long as the monitor).
func startNetHelper(n *poddir.Network, initPid int, podDir string) (*netHelper, error) {
	path, err := lookPath(n.Helper)
	if err != nil {
		return nil, err
	}
	if n.Helper != poddir.HelperPasta {
		return nil, fmt.Errorf("network helper %s: kite runs pasta only", n.Helper)
	}
	pidFile := filepath.Join(podDir, "pasta.pid")
	os.Remove(pidFile)
	null, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	// Its own process group: a ^C at the terminal reaches the app through the monitor, and the
	// helper only when the pod has ended.
	pid, err := syscall.ForkExec(path, append([]string{path}, pastaArgs(n, initPid, pidFile)...), &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{null.Fd(), 2, 2},
		Sys:   &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true},
	})
	null.Close()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	h := &netHelper{name: n.Helper, pid: pid}
	// pasta writes its pid file once the namespace's network is configured.
	deadline := time.Now().Add(helperReadyTimeout)
	for {
		if data, err := os.ReadFile(pidFile); err == nil && len(data) > 0 {
			os.Remove(pidFile)
			return h, nil
		}
		var ws syscall.WaitStatus
		if done, _ := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); done == pid {
			return nil, fmt.Errorf("%s could not set up the pod's network (it exited with status %d; its message is above)", n.Helper, ws.ExitStatus())
		}
		if time.Now().After(deadline) {
			h.stop()
			return nil, fmt.Errorf("%s did not set up the pod's network within %s", n.Helper, helperReadyTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
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
	unix.Kill(h.pid, unix.SIGTERM)
	waitPid(h.pid)
}

// lookPath finds name in PATH, as the shell would.
func lookPath(name string) (string, error) {
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && unix.Access(p, unix.X_OK) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("the pod's network needs %s, which is not in PATH (%s): install it, or run the pod with --net=host", name, os.Getenv("PATH"))
}
