// Package syncproto owns the messages stage1's monitor (P, outside the pod) and the pod's init
// (C, pid 1 inside it) exchange over a SOCK_SEQPACKET socketpair. Each message is one JSON
// datagram, so no framing is needed and a closed peer reads as io.EOF.
//
//	step  direction  type      payload        meaning
//	1     P -> C     mapped    -              stage0 (P before it execs the monitor) wrote C's
//	                                          uid/gid maps; C, still stage0's fork, execs the
//	                                          init, which gains its capabilities there
//	1'    P -> C     network   -              the monitor's network helper has set up the pod's
//	                                          own network (pod.json's network has a helper); C
//	                                          waits for it before it starts the apps
//	2     C -> P     started   pid            the apps were exec'd; pid is the first's inside the pod
//	2'    C -> P     error     code, message  setup failed before the app ran; C exits. P prints
//	                                          the message once and exits with code (125/126/127)
//	3     C -> P     exited    status, apps   the pod ended with this wait(2) status (as its exit
//	                                          policy says), each app with its own; C exits
//
// If C dies without sending error or exited, P reports that the pod's init died and exits 125.
package syncproto

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/kite-runtime/kite/pkg/poddir"
	"golang.org/x/sys/unix"
)

// Message types.
const (
	Mapped  = "mapped"
	Network = "network"
	Started = "started"
	// Created (init to monitor) says an OCI container is created: the init waits for Start
	// (monitor to init) before it starts the app.
	Created = "created"
	Start   = "start"
	// RuntimeHooks (init to monitor, and back once they ran) asks for an OCI container's prestart
	// and createRuntime hooks, before the init pivots into the container's root.
	RuntimeHooks = "runtime-hooks"
	Error        = "error"
	Exited       = "exited"
)

// Message is one datagram.
type Message struct {
	Type   string `json:"type"`
	Pid    int    `json:"pid,omitempty"`
	Code   int    `json:"code,omitempty"`
	Text   string `json:"message,omitempty"`
	Status int    `json:"status,omitempty"` // raw wait(2) status
	// Apps, with exited, are how each app ended.
	Apps []AppStatus `json:"apps,omitempty"`
}

// AppStatus is one app's raw wait(2) status.
type AppStatus struct {
	Name   string `json:"name"`
	Status int    `json:"status"`
}

// maxMessage bounds one datagram; error texts are the only variable part.
const maxMessage = 64 << 10

// Conn is one end of the socketpair.
type Conn struct{ f *os.File }

// Pair returns two connected ends, both close-on-exec; the first is for the parent.
func Pair() (parent, child *Conn, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, os.NewSyscallError("socketpair", err)
	}
	// The child's end stays blocking: the pod's init waits on it with a raw read(2) before its exec.
	return newConn(fds[0], "sync-parent"), &Conn{os.NewFile(uintptr(fds[1]), "sync-child")}, nil
}

// FromEnv takes the end passed in the environment variable name, unsets the variable and marks the
// descriptor close-on-exec again so it does not leak into the app.
func FromEnv(name string) (*Conn, error) {
	v := os.Getenv(name)
	fd := poddir.InheritedFd(name)
	if fd < 0 {
		return nil, fmt.Errorf("read %s: %q is not a file descriptor (kite-stage1 is started by kite, not by hand)", name, v)
	}
	return newConn(fd, "sync"), nil
}

// newConn wraps fd in non-blocking mode, so that a goroutine waiting for a message parks in Go's
// poller instead of holding an OS thread (and its memory) for the pod's whole life.
func newConn(fd int, name string) *Conn {
	unix.SetNonblock(fd, true)
	return &Conn{os.NewFile(uintptr(fd), name)}
}

// File returns the underlying descriptor, e.g. to pass to a child.
func (c *Conn) File() *os.File { return c.f }

// Close closes this end.
func (c *Conn) Close() error { return c.f.Close() }

// Send writes one message.
func (c *Conn) Send(m Message) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if _, err := c.f.Write(data); err != nil {
		return fmt.Errorf("send %s: %w", m.Type, err)
	}
	return nil
}

// Recv reads one message; io.EOF means the peer closed its end (or died).
func (c *Conn) Recv() (Message, error) {
	buf := make([]byte, maxMessage)
	n, err := c.f.Read(buf)
	if errors.Is(err, io.EOF) || (err == nil && n == 0) {
		return Message{}, io.EOF
	}
	if err != nil {
		return Message{}, fmt.Errorf("receive: %w", err)
	}
	var m Message
	if err := json.Unmarshal(buf[:n], &m); err != nil {
		return Message{}, fmt.Errorf("receive: bad message %q: %w", buf[:n], err)
	}
	return m, nil
}
