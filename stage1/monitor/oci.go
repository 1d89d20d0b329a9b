package monitor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/kite-runtime/kite/pkg/ocihooks"
	"github.com/kite-runtime/kite/pkg/poddir"
	"github.com/kite-runtime/kite/pkg/startsock"
	"github.com/kite-runtime/kite/pkg/syncproto"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ociControl is the monitor's part in the lifecycle of a container of kite's OCI runtime: it
// tells kite oci create when the container is created (or why it is not), runs the runtime's
// hooks, waits for kite oci start and tells it how the start went.
type ociControl struct {
	oci     *poddir.OCI
	podDir  string
	initPid int
	// initPidfd follows the init, which is the monitor's sibling, not its child.
	initPidfd int
	// ready is kite oci create's pipe, until it has its answer.
	ready    *os.File
	listener *startsock.Listener
	// requests delivers the start request; starting is the one waiting for the app's start.
	requests chan *startsock.Conn
	starting *startsock.Conn
}

func newOCIControl(pod *poddir.Pod, podDir string, initPid int) *ociControl {
	if pod.OCI == nil {
		return nil
	}
	c := &ociControl{oci: pod.OCI, podDir: podDir, initPid: initPid, initPidfd: -1}
	if fd := poddir.InheritedFd(poddir.ReadyFdEnv); fd > 2 {
		c.ready = os.NewFile(uintptr(fd), "ready")
	}
	c.initPidfd = poddir.InheritedFd(poddir.InitPidfdEnv)
	return c
}

// waitInit waits until the init has ended: its pidfd turns readable.
func (c *ociControl) waitInit() error {
	if c.initPidfd < 0 {
		return fmt.Errorf("no pidfd of the container's init (%s)", poddir.InitPidfdEnv)
	}
	fds := []unix.PollFd{{Fd: int32(c.initPidfd), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		if err == nil {
			return nil
		}
		if err != unix.EINTR {
			return os.NewSyscallError("poll", err)
		}
	}
}

func (c *ociControl) state(status specs.ContainerState) specs.State {
	return c.oci.State(string(status), c.initPid)
}

// runtimeHooks runs the prestart and createRuntime hooks (runtime-spec lifecycle steps 3 and 4),
// when the init has the container's namespaces and mounts but has not pivoted yet, and lets the
// init go on (to the createContainer hooks, step 5). Their state says created: the runtime
// environment is (runtime.md, "State").
func (c *ociControl) runtimeHooks(init *syncproto.Conn) error {
	if h := c.oci.Hooks; h != nil {
		if err := ocihooks.Run("prestart", h.Prestart, c.state(specs.StateCreated)); err != nil {
			return err
		}
		if err := ocihooks.Run("createRuntime", h.CreateRuntime, c.state(specs.StateCreated)); err != nil {
			return err
		}
	}
	return init.Send(syncproto.Message{Type: syncproto.RuntimeHooks})
}

// created runs once the init says the container is created: it opens the start socket and
// answers kite oci create.
func (c *ociControl) created() error {
	start := poddir.ProcessStart(c.initPid)
	if start == "" {
		return errors.New("the container's init ended")
	}
	if err := poddir.WriteFileAtomic(filepath.Join(c.podDir, poddir.InitStartFile), []byte(start+"\n"), 0o644); err != nil {
		return err
	}
	if err := poddir.WriteFileAtomic(filepath.Join(c.podDir, poddir.PidFile), []byte(strconv.Itoa(c.initPid)+"\n"), 0o644); err != nil {
		return err
	}
	l, err := startsock.Listen(c.podDir)
	if err != nil {
		return err
	}
	c.listener = l
	c.requests = make(chan *startsock.Conn, 1)
	go func() {
		if conn, err := l.Accept(); err == nil {
			c.requests <- conn
		}
	}()
	c.answer(poddir.ReadyMessage{OK: true})
	return nil
}

// start passes kite oci start's request on to the init.
func (c *ociControl) start(conn *startsock.Conn, init *syncproto.Conn) error {
	c.listener.Close(c.podDir)
	c.starting = conn
	return init.Send(syncproto.Message{Type: syncproto.Start})
}

// started runs once the app runs: the container is running, kite oci start hears so, and the
// poststart hooks run, their failure only a warning (runtime-spec lifecycle step 9).
func (c *ociControl) started() error {
	if err := poddir.WriteFileAtomic(filepath.Join(c.podDir, poddir.StartedFile), nil, 0o644); err != nil {
		return err
	}
	if c.starting != nil {
		c.starting.Reply(poddir.ReadyMessage{OK: true})
		c.starting = nil
	}
	if h := c.oci.Hooks; h != nil {
		if err := ocihooks.RunAll("poststart", h.Poststart, c.state(specs.StateRunning)); err != nil {
			fmt.Fprintln(os.Stderr, "kite: warning:", err)
		}
	}
	return nil
}

// fail hands err to whoever waits for the container: kite oci create or kite oci start. It
// reports whether one did; if none did, the monitor prints it.
func (c *ociControl) fail(err error, code int) bool {
	if c == nil {
		return false
	}
	m := poddir.ReadyMessage{Error: err.Error(), Code: code}
	switch {
	case c.ready != nil:
		c.answer(m)
		return true
	case c.starting != nil:
		c.starting.Reply(m)
		c.starting = nil
		return true
	}
	return false
}

// answer tells kite oci create, once.
func (c *ociControl) answer(m poddir.ReadyMessage) {
	if c.ready == nil {
		return
	}
	json.NewEncoder(c.ready).Encode(m)
	c.ready.Close()
	c.ready = nil
}

// requestsChan is nil, and never ready, when there is nothing to wait for.
func (c *ociControl) requestsChan() chan *startsock.Conn {
	if c == nil {
		return nil
	}
	return c.requests
}
