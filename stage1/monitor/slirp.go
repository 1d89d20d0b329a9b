package monitor

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kite-runtime/kite/pkg/poddir"
	"golang.org/x/sys/unix"
)

// startSlirp4netns runs slirp4netns for the network namespace of pid: it configures tap0
// (10.0.2.100, gateway 10.0.2.2, which leads to the host's loopback, DNS 10.0.2.3; fd00::100
// from its router advertisements, which slirp4netns calls experimental), writes to its
// ready descriptor when done, and exits when its exit descriptor closes: when the monitor stops
// it or dies. The ports are added through its API socket.
func startSlirp4netns(path string, n *poddir.Network, pid int, podDir string) (*netHelper, error) {
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer readyR.Close()
	exitR, exitW, err := os.Pipe()
	if err != nil {
		readyW.Close()
		return nil, err
	}
	// The socket is named relative to the pod directory, slirp4netns's working directory: a
	// socket's path must fit in 108 bytes, which a pod directory's need not.
	os.Remove(filepath.Join(podDir, slirpSocket))
	// slirp4netns reports every step: its log goes to the pod directory, and its end into
	// the message of a failure.
	logPath := filepath.Join(podDir, "slirp4netns.log")
	log, err := os.Create(logPath)
	if err != nil {
		readyW.Close()
		exitR.Close()
		exitW.Close()
		return nil, err
	}
	args := []string{"--configure", "--mtu=65520", "--enable-ipv6", "--ready-fd=3", "--exit-fd=4", "--api-socket", slirpSocket,
		"--userns-path", fmt.Sprintf("/proc/%d/ns/user", pid), strconv.Itoa(pid), "tap0"}
	hpid, err := forkHelper(path, podDir, args, log, readyW, exitR)
	log.Close()
	readyW.Close()
	exitR.Close()
	if err != nil {
		exitW.Close()
		return nil, err
	}
	h := &netHelper{name: n.Helper, pid: hpid, exit: exitW}
	readyR.SetReadDeadline(time.Now().Add(helperReadyTimeout))
	buf := make([]byte, 1)
	if _, err := readyR.Read(buf); err != nil {
		failed := h.exited()
		h.stop()
		if failed == nil {
			failed = fmt.Errorf("%s did not set up the pod's network within %s", n.Helper, helperReadyTimeout)
		}
		return nil, fmt.Errorf("%w; its log, %s, ends: %s", failed, logPath, logTail(logPath))
	}
	if len(n.Ports) > 0 {
		dir, err := os.Open(podDir)
		if err != nil {
			h.stop()
			return nil, err
		}
		defer dir.Close()
		api := fmt.Sprintf("/proc/self/fd/%d/%s", dir.Fd(), slirpSocket)
		for _, p := range n.Ports {
			if err := slirpForward(api, p); err != nil {
				h.stop()
				return nil, err
			}
		}
	}
	return h, nil
}

// slirpSocket is slirp4netns's API socket in the pod directory.
const slirpSocket = "slirp4netns.sock"

// slirpForward publishes p through slirp4netns's API socket (add_hostfwd). Raw socket calls
// rather than package net, which would double what the monitor's program maps.
func slirpForward(api string, p poddir.Port) error {
	fail := func(err error) error { return fmt.Errorf("publish port %d/%s: %w", p.HostPort, p.Protocol, err) }
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fail(os.NewSyscallError("socket", err))
	}
	c := os.NewFile(uintptr(fd), "slirp4netns API")
	defer c.Close()
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: api}); err != nil {
		return fail(os.NewSyscallError("connect", err))
	}
	tv := unix.NsecToTimeval(helperReadyTimeout.Nanoseconds())
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	hostAddr := p.HostIP
	if hostAddr == "" {
		hostAddr = "0.0.0.0"
	}
	req := map[string]any{"execute": "add_hostfwd", "arguments": map[string]any{
		"proto": p.Protocol, "host_addr": hostAddr, "host_port": p.HostPort, "guest_port": p.PodPort,
	}}
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return fail(err)
	}
	// slirp4netns answers once the request has ended.
	unix.Shutdown(fd, unix.SHUT_WR)
	var reply struct {
		Error *struct {
			Desc string `json:"desc"`
		} `json:"error"`
	}
	answer, err := io.ReadAll(c)
	if err == nil {
		err = json.Unmarshal(answer, &reply)
	}
	if err != nil {
		return fail(fmt.Errorf("slirp4netns answered %q: %w", answer, err))
	}
	if reply.Error != nil {
		return fail(fmt.Errorf("slirp4netns: %s", reply.Error.Desc))
	}
	return nil
}

// logTail is the last lines of a helper's log.
func logTail(path string) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return strconv.Quote(strings.Join(lines[max(0, len(lines)-3):], " | "))
}
