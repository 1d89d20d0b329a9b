package monitor

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/kite-runtime/kite/pkg/poddir"
	"golang.org/x/sys/unix"
)

// notifier passes the pod's readiness to the caller's NOTIFY_SOCKET (sd_notify(3)). The monitor
// is the process the caller started, so it is what systemd watches: every message carries its
// pid as MAINPID.
type notifier struct {
	mode   string // poddir.SdNotifyEnv's value: container or started
	target unix.Sockaddr
	fd     int // a datagram socket to send from
	// pod is the pod's end of sd_notify (container mode), or nil.
	pod *os.File
}

// newNotifier reads what kite set up for sd_notify and clears it from the environment; nil when
// the pod passes no readiness on.
func newNotifier() (*notifier, error) {
	mode, addr := os.Getenv(poddir.SdNotifyEnv), os.Getenv("NOTIFY_SOCKET")
	podFd := os.Getenv(poddir.NotifyFdEnv)
	for _, k := range []string{poddir.SdNotifyEnv, poddir.NotifyFdEnv, "NOTIFY_SOCKET"} {
		os.Unsetenv(k)
	}
	if mode == "" || addr == "" {
		return nil, nil
	}
	n := &notifier{mode: mode}
	if podFd != "" {
		fd, err := strconv.Atoi(podFd)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", poddir.NotifyFdEnv, err)
		}
		unix.CloseOnExec(fd)
		n.pod = os.NewFile(uintptr(fd), "sd_notify")
	}
	// An abstract socket's name starts with @ (systemd's notation).
	name := addr
	if strings.HasPrefix(addr, "@") {
		name = "\x00" + addr[1:]
	}
	n.target = &unix.SockaddrUnix{Name: name}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("sd_notify: %w", os.NewSyscallError("socket", err))
	}
	n.fd = fd
	return n, nil
}

// send sends msg to the caller's socket, as from the monitor: with MAINPID its own pid.
func (n *notifier) send(msg []byte) {
	out := append([]byte("MAINPID="+strconv.Itoa(os.Getpid())+"\n"), msg...)
	if err := unix.Sendto(n.fd, out, 0, n.target); err != nil {
		fmt.Fprintln(os.Stderr, "kite: warning: sd_notify:", err)
	}
}

// started is called once the apps run.
func (n *notifier) started() {
	if n.mode == "started" {
		n.send([]byte("READY=1"))
	}
}

// relay passes the app's messages on, until the pod's socket is closed. A MAINPID the app sends
// is a pid of the pod's namespace, meaningless to systemd: it is dropped.
func (n *notifier) relay() {
	if n.pod == nil {
		return
	}
	buf := make([]byte, 4096)
	for {
		m, err := n.pod.Read(buf)
		if err != nil {
			return
		}
		var keep [][]byte
		for _, line := range bytes.Split(buf[:m], []byte("\n")) {
			if len(line) > 0 && !bytes.HasPrefix(line, []byte("MAINPID=")) {
				keep = append(keep, line)
			}
		}
		if len(keep) > 0 {
			n.send(bytes.Join(keep, []byte("\n")))
		}
	}
}
