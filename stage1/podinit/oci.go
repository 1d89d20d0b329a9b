package podinit

import (
	"fmt"
	"os"
	"strconv"

	"github.com/kite-runtime/kite/pkg/ocihooks"
	"github.com/kite-runtime/kite/pkg/poddir"
	"github.com/kite-runtime/kite/pkg/syncproto"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// hostPid is the init's pid as the host sees it, which the hooks' state carries: /proc/self in the
// host's /proc, while the init still sees it (before the pivot).
func hostPid() (int, error) {
	self, err := os.Readlink("/proc/self")
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(self)
	if err != nil {
		return 0, fmt.Errorf("find the init's pid: %w", err)
	}
	return pid, nil
}

// createHooks runs an OCI container's hooks of the create operation, in the order of
// runtime-spec's lifecycle, before the init pivots into the container's root: the monitor runs
// the prestart and createRuntime hooks in the runtime's namespaces, then the init the
// createContainer hooks in the container's, with paths that resolve as the runtime sees them.
func createHooks(conn *syncproto.Conn, oci *poddir.OCI, pid int) error {
	h := oci.Hooks
	if h == nil {
		return nil
	}
	if len(h.Prestart) > 0 || len(h.CreateRuntime) > 0 {
		if err := conn.Send(syncproto.Message{Type: syncproto.RuntimeHooks}); err != nil {
			return err
		}
		m, err := conn.Recv()
		if err != nil {
			return fmt.Errorf("wait for the prestart and createRuntime hooks: %w", err)
		}
		if m.Type != syncproto.RuntimeHooks {
			return fmt.Errorf("wait for the prestart and createRuntime hooks: the monitor sent %q", m.Type)
		}
	}
	return ocihooks.Run("createContainer", h.CreateContainer, oci.State(string(specs.StateCreated), pid))
}

// startContainerHooks runs an OCI container's startContainer hooks once kite oci start asks for
// the app, before it runs: chrooted into the app's root filesystem, root, where their paths
// resolve (runtime-spec config.md, "startContainer Hooks").
func startContainerHooks(oci *poddir.OCI, root string, pid int) error {
	if oci.Hooks == nil {
		return nil
	}
	return ocihooks.RunIn(root, "startContainer", oci.Hooks.StartContainer, oci.State(string(specs.StateCreated), pid))
}

// awaitStart tells the monitor that the container is created and waits until kite oci start
// asks for the app. A signal that would end a process ends the created container, as it would
// end its app; the others wait for the app (sigs keeps them).
func awaitStart(conn *syncproto.Conn, sigs chan os.Signal) error {
	if err := conn.Send(syncproto.Message{Type: syncproto.Created}); err != nil {
		return err
	}
	msgs := make(chan syncproto.Message, 1)
	errs := make(chan error, 1)
	go func() {
		m, err := conn.Recv()
		if err != nil {
			errs <- err
			return
		}
		msgs <- m
	}()
	var kept []os.Signal
	defer func() {
		for _, s := range kept {
			sigs <- s
		}
	}()
	for {
		select {
		case m := <-msgs:
			if m.Type != syncproto.Start {
				return fmt.Errorf("wait for kite oci start: the monitor sent %q", m.Type)
			}
			return nil
		case err := <-errs:
			return fmt.Errorf("wait for kite oci start: %w", err)
		case s := <-sigs:
			switch s {
			case unix.SIGCHLD, unix.SIGCONT, unix.SIGURG, unix.SIGWINCH, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU:
				kept = append(kept, s)
			default:
				// The init is pid 1 of its namespace and cannot take the signal's default action
				// itself: it ends with the status a shell gives a process the signal killed.
				os.Exit(128 + int(s.(unix.Signal)))
			}
		}
	}
}

// dialConsole connects to the console socket of kite oci create --console-socket, before the
// init pivots away from the path.
func dialConsole(path string) (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("connect to the console socket %s: %w", path, err)
	}
	return fd, nil
}

// sendConsole opens the app's terminal now, at create, and sends its controlling side over the
// console socket conn, as engines expect (runc's console socket protocol: one message whose
// SCM_RIGHTS carry the descriptor). It returns the terminal side, which the app gets at start.
func sendConsole(conn int, app *appConfig, root string) (*os.File, error) {
	defer unix.Close(conn)
	term, slave, err := newTerminal(root, app.Process)
	if err != nil {
		return nil, err
	}
	defer term.master.Close()
	if err := unix.Sendmsg(conn, []byte("console"), unix.UnixRights(int(term.master.Fd())), nil, 0); err != nil {
		slave.Close()
		return nil, fmt.Errorf("send the terminal to the console socket: %w", os.NewSyscallError("sendmsg", err))
	}
	return slave, nil
}
