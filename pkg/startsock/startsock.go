// Package startsock owns the socket on which the monitor of a created OCI container waits for
// kite oci start (poddir.StartSocket), and the one exchange it carries: a request, then the
// outcome of starting the app as a poddir.ReadyMessage. Raw socket calls, not package net, which
// would double what kite-stage1 maps; SOCK_SEQPACKET keeps each message whole.
package startsock

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kite-runtime/kite/pkg/poddir"
	"golang.org/x/sys/unix"
)

// request is what kite oci start sends.
const request = "start"

// inDir names the socket in dir through an open descriptor of dir: a socket's path is limited to
// 108 bytes, and a state directory (--root) may be deeper.
func inDir(dir string) (*os.File, string, error) {
	d, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, "", err
	}
	return d, fmt.Sprintf("/proc/self/fd/%d/%s", d.Fd(), poddir.StartSocket), nil
}

// Listener is the monitor's end.
type Listener struct{ fd int }

// Listen makes the socket in the container directory dir.
func Listen(dir string) (*Listener, error) {
	d, path, err := inDir(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	os.Remove(filepath.Join(dir, poddir.StartSocket))
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("make %s: %w", filepath.Join(dir, poddir.StartSocket), os.NewSyscallError("bind", err))
	}
	if err := unix.Listen(fd, 4); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("listen", err)
	}
	return &Listener{fd: fd}, nil
}

// Accept waits for one start request and returns its connection, to Reply on.
func (l *Listener) Accept() (*Conn, error) {
	for {
		fd, _, err := unix.Accept4(l.fd, unix.SOCK_CLOEXEC)
		if err == unix.EINTR || err == unix.ECONNABORTED {
			continue
		}
		if err != nil {
			return nil, os.NewSyscallError("accept", err)
		}
		buf := make([]byte, 64)
		n, err := unix.Read(fd, buf)
		if err != nil || string(buf[:n]) != request {
			// Not kite oci start: ignore it and wait for the next.
			unix.Close(fd)
			continue
		}
		return &Conn{fd: fd}, nil
	}
}

// Close removes the socket: the container takes no further start.
func (l *Listener) Close(dir string) {
	os.Remove(filepath.Join(dir, poddir.StartSocket))
	unix.Close(l.fd)
}

// Conn is one start request, waiting for its outcome.
type Conn struct{ fd int }

// Reply sends the outcome and closes the connection.
func (c *Conn) Reply(m poddir.ReadyMessage) {
	if data, err := json.Marshal(m); err == nil {
		unix.Write(c.fd, data)
	}
	unix.Close(c.fd)
}

// ErrNotWaiting means no monitor waits on the socket: the container is not in the created state.
var ErrNotWaiting = errors.New("the container is not waiting to be started")

// Request asks the monitor of the container in dir to start its app, and returns the outcome.
func Request(dir string) (poddir.ReadyMessage, error) {
	d, path, err := inDir(dir)
	if err != nil {
		return poddir.ReadyMessage{}, err
	}
	defer d.Close()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return poddir.ReadyMessage{}, os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ECONNREFUSED) {
			return poddir.ReadyMessage{}, ErrNotWaiting
		}
		return poddir.ReadyMessage{}, os.NewSyscallError("connect", err)
	}
	// A request queued on the socket when the monitor closed it (another start won) is reset.
	if _, err := unix.Write(fd, []byte(request)); err != nil {
		if errors.Is(err, unix.EPIPE) || errors.Is(err, unix.ECONNRESET) {
			return poddir.ReadyMessage{}, ErrNotWaiting
		}
		return poddir.ReadyMessage{}, os.NewSyscallError("write", err)
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if errors.Is(err, unix.ECONNRESET) {
			return poddir.ReadyMessage{}, ErrNotWaiting
		}
		if err != nil {
			return poddir.ReadyMessage{}, os.NewSyscallError("read", err)
		}
		if n == 0 {
			return poddir.ReadyMessage{}, ErrNotWaiting
		}
		var m poddir.ReadyMessage
		if err := json.Unmarshal(buf[:n], &m); err != nil {
			return poddir.ReadyMessage{}, fmt.Errorf("the container's monitor answered %q: %w", buf[:n], err)
		}
		return m, nil
	}
}
