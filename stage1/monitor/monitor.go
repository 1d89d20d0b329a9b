// Package monitor owns the pod's monitor: the process the caller started (stage0 exec'd into it),
// which stays outside the pod. It supervises the pod's init (which stage0 forked and mapped),
// relays the caller's signals, records the pod's end and exits with the app's status. It holds the
// pod's lock for the pod's whole life.
package monitor

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/kite-runtime/kite/pkg/exitcode"
	"github.com/kite-runtime/kite/pkg/phase"
	"github.com/kite-runtime/kite/pkg/podcgroup"
	"github.com/kite-runtime/kite/pkg/poddir"
	"github.com/kite-runtime/kite/pkg/podfork"
	"github.com/kite-runtime/kite/pkg/syncproto"
	"golang.org/x/sys/unix"
)

// Main runs the pod in podDir and returns the exit status for the caller.
func Main(podDir string) int {
	var pod poddir.Pod
	var oci *ociControl
	code, err := run(podDir, &pod, &oci)
	if oci != nil && oci.listener != nil {
		oci.listener.Close(podDir)
	}
	if err != nil && !oci.fail(err, code) {
		fmt.Fprintln(os.Stderr, "kite:", err)
	}
	if pod.RemoveOnExit {
		if err := removePod(podDir); err != nil {
			fmt.Fprintln(os.Stderr, "kite: --rm:", err)
		}
	}
	return code
}

// removePod removes the ended pod (--rm). The monitor still holds its lock: it moves the pod to
// garbage, where kite gc would find it should anything fail, and has kite-image (installed beside
// kite-stage1) remove it inside the store's user namespace, where the files the app made under
// subordinate ids can be removed.
func removePod(podDir string) error {
	data := filepath.Dir(filepath.Dir(filepath.Dir(podDir)))
	garbage := filepath.Join(data, "pods", poddir.GarbageDir)
	if err := os.MkdirAll(garbage, 0o700); err != nil {
		return err
	}
	if err := os.Rename(podDir, filepath.Join(garbage, filepath.Base(podDir))); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	helper := filepath.Join(filepath.Dir(self), "kite-image")
	pid, err := syscall.ForkExec(helper, []string{helper, "--dir", data, "rm-pods", filepath.Base(podDir)},
		&syscall.ProcAttr{Env: os.Environ(), Files: []uintptr{0, 1, 2}})
	if err != nil {
		return fmt.Errorf("run %s: %w", helper, err)
	}
	ws, err := waitPid(pid)
	if err == nil && ws.ExitStatus() != 0 {
		err = fmt.Errorf("%s rm-pods failed (status %d)", helper, exitcode.FromWaitStatus(ws))
	}
	return err
}

// run supervises the pod, reading its pod.json into pod; oci is set for a container of kite's
// OCI runtime.
func run(podDir string, pod *poddir.Pod, oci **ociControl) (int, error) {
	// The network helper's parent-death signal is tied to the thread that starts it: the main
	// thread, which lives as long as the monitor.
	runtime.LockOSThread()
	takeLock()
	if os.Getenv(poddir.RawTerminalEnv) == "1" {
		os.Unsetenv(poddir.RawTerminalEnv)
		if restore := makeRaw(0); restore != nil {
			defer restore()
		}
	}
	// Relay signals from the start: one that arrives while the pod starts reaches the app once it
	// runs.
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, podfork.ForwardedSignals...)

	parent, err := syncproto.FromEnv(poddir.SyncFdEnv)
	if err != nil {
		return exitcode.Failed, err
	}
	notify, err := newNotifier()
	if err != nil {
		return exitcode.Failed, err
	}
	if notify != nil {
		go notify.relay()
	}
	initPid, err := strconv.Atoi(os.Getenv(poddir.InitPidEnv))
	os.Unsetenv(poddir.InitPidEnv)
	if err != nil || initPid <= 0 {
		return exitcode.Failed, fmt.Errorf("read %s: the pod's init was not started (kite-stage1 is started by kite, not by hand)", poddir.InitPidEnv)
	}
	code := exitcode.Failed
	var helper *netHelper
	err = poddir.ReadJSON(podDir, poddir.PodFile, pod)
	*oci = newOCIControl(pod, podDir, initPid)
	if n := pod.Network; err == nil && n != nil && n.Helper != "" {
		if helper, err = startNetHelper(n, initPid, podDir); err == nil {
			err = parent.Send(syncproto.Message{Type: syncproto.Network})
		}
		if err != nil {
			// The init may have failed first (a refused mount), and this step only because it
			// was gone: pasta cannot join a dead process's namespaces, the message finds no
			// reader. Its own error, already sent, says what went wrong; once it is dead, the
			// socket holds that message or reads as closed.
			unix.Kill(initPid, unix.SIGKILL)
			if m, rerr := parent.Recv(); rerr == nil && m.Type == syncproto.Error {
				code, err = codeOr(m.Code), errors.New(m.Text)
			}
		}
	}
	if err == nil {
		code, err = supervise(parent, initPid, podDir, sigs, notify, *oci)
	}
	if err != nil {
		// The init may still be waiting for a message that will never come.
		unix.Kill(initPid, unix.SIGKILL)
	}
	var ws syscall.WaitStatus
	var waitErr error
	if *oci != nil {
		waitErr = (*oci).waitInit()
	} else {
		ws, waitErr = waitPid(initPid)
	}
	// The pod's processes have all ended with its init: its network helper and cgroup can go.
	helper.stop()
	if dir, _ := poddir.PodCgroup(podDir); dir != "" {
		if rerr := podcgroup.Remove(dir); rerr != nil && err == nil {
			fmt.Fprintln(os.Stderr, "kite: warning:", rerr)
		}
	}
	if *oci != nil {
		// kite oci's caller reaps the container's init and gets its status; an init that ended
		// without saying how its app did was killed, which is no error of the monitor's.
		return code, err
	}
	if err == nil && code == exitcode.Failed && waitErr == nil && ws.Signaled() && appStarted(podDir) {
		// The init was killed (kite stop --force, the OOM killer), and with it every process of
		// the pod: the app ended by that signal.
		code = exitcode.FromWaitStatus(ws)
		st := poddir.ExitStatus{Finished: time.Now().UTC(), Code: code, Signal: unix.SignalName(ws.Signal()), SchemaVersion: poddir.SchemaVersion}
		return code, writeExitStatus(podDir, st)
	}
	if err == nil && code == exitcode.Failed {
		if waitErr != nil {
			err = fmt.Errorf("wait for the pod's init: %w", waitErr)
		} else {
			err = fmt.Errorf("the pod's init ended before the app did (status %d)", exitcode.FromWaitStatus(ws))
		}
	}
	return code, err
}

// appStarted reports whether the app ran: the monitor writes the pid file when it starts.
func appStarted(podDir string) bool {
	_, err := os.Stat(filepath.Join(podDir, poddir.PidFile))
	return err == nil
}

func waitPid(pid int) (syscall.WaitStatus, error) {
	for {
		var ws syscall.WaitStatus
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			return ws, err
		}
	}
}

// takeLock keeps the pod lock stage0 took: the descriptor stays open (close-on-exec, so the pod
// never sees it) until the monitor exits, and the kernel releases the lock then.
func takeLock() {
	v := os.Getenv(poddir.LockFdEnv)
	os.Unsetenv(poddir.LockFdEnv)
	if fd, err := strconv.Atoi(v); err == nil && fd > 2 {
		unix.CloseOnExec(fd)
	}
}

// supervise follows the sync protocol until the app has exited, relaying signals to the init.
func supervise(conn *syncproto.Conn, initPid int, podDir string, sigs <-chan os.Signal, notify *notifier, oci *ociControl) (int, error) {
	msgs := make(chan syncproto.Message)
	recvErr := make(chan error, 1)
	go func() {
		for {
			m, err := conn.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			msgs <- m
		}
	}()
	// The init is pid 1 of its pid namespace: until its Go runtime has installed handlers, the
	// kernel drops any signal sent to it (pid_namespaces(7)). Hold signals until the app runs.
	var held []os.Signal
	started := false
	for {
		select {
		case sig := <-sigs:
			if !started {
				held = append(held, sig)
				continue
			}
			unix.Kill(initPid, sig.(unix.Signal))
		case err := <-recvErr:
			if errors.Is(err, io.EOF) {
				return exitcode.Failed, nil
			}
			return exitcode.Failed, err
		case req := <-oci.requestsChan():
			if err := oci.start(req, conn); err != nil {
				return exitcode.Failed, err
			}
		case m := <-msgs:
			switch m.Type {
			case syncproto.RuntimeHooks, syncproto.Created:
				if oci == nil {
					return exitcode.Failed, fmt.Errorf("the pod's init sent %s, which only an OCI container's sends", m.Type)
				}
				var err error
				if m.Type == syncproto.RuntimeHooks {
					err = oci.runtimeHooks(conn)
				} else {
					err = oci.created()
				}
				if err != nil {
					return exitcode.Failed, err
				}
			case syncproto.Started:
				phase.Mark("monitor", "apps started")
				var err error
				if oci != nil {
					err = oci.started()
				} else {
					err = poddir.WriteFileAtomic(filepath.Join(podDir, poddir.PidFile), []byte(strconv.Itoa(initPid)+"\n"), 0o644)
				}
				if err != nil {
					return exitcode.Failed, err
				}
				started = true
				if notify != nil {
					notify.started()
				}
				for _, sig := range held {
					unix.Kill(initPid, sig.(unix.Signal))
				}
				held = nil
			case syncproto.Error:
				return codeOr(m.Code), errors.New(m.Text)
			case syncproto.Exited:
				phase.Mark("monitor", "pod ended")
				ws := syscall.WaitStatus(m.Status)
				code := exitcode.FromWaitStatus(ws)
				st := poddir.ExitStatus{Finished: time.Now().UTC(), Code: code, Signal: signalName(ws), SchemaVersion: poddir.SchemaVersion}
				for _, a := range m.Apps {
					aws := syscall.WaitStatus(a.Status)
					st.Apps = append(st.Apps, poddir.AppExit{Name: a.Name, Code: exitcode.FromWaitStatus(aws), Signal: signalName(aws)})
				}
				return code, writeExitStatus(podDir, st)
			default:
				return exitcode.Failed, fmt.Errorf("the pod's init sent an unknown message %q", m.Type)
			}
		}
	}
}

// writeExitStatus records how the pod ended. The space kite set aside for the record when it
// wrote the pod goes first: an app that filled the disk would otherwise leave its pod exited with
// no status.
func writeExitStatus(podDir string, st poddir.ExitStatus) error {
	os.Remove(filepath.Join(podDir, poddir.ExitStatusReserveFile))
	return poddir.WriteJSON(podDir, poddir.ExitStatusFile, st)
}

// signalName names the signal that ended a process, "" if none did.
func signalName(ws syscall.WaitStatus) string {
	if ws.Signaled() {
		return unix.SignalName(ws.Signal())
	}
	return ""
}

func codeOr(c int) int {
	if c == 0 {
		return exitcode.Failed
	}
	return c
}

// makeRaw puts the terminal fd in raw mode (cfmakeraw(3)): keys such as ^C reach the app's
// terminal as bytes instead of signalling kite. It returns what restores the terminal, or nil
// when fd is not one.
func makeRaw(fd int) func() {
	saved, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil
	}
	raw := *saved
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return nil
	}
	return func() { unix.IoctlSetTermios(fd, unix.TCSETS, saved) }
}
