// Package podinit owns the pod's init: pid 1 inside the pod's namespaces. It builds the pod's
// filesystem, starts the app, forwards the signals the monitor relays, reaps every process that is
// reparented to it, and reports the app's exit to the monitor.
package podinit

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/kite-runtime/kite/pkg/exitcode"
	"github.com/kite-runtime/kite/pkg/phase"
	"github.com/kite-runtime/kite/pkg/poddir"
	"github.com/kite-runtime/kite/pkg/podfork"
	"github.com/kite-runtime/kite/pkg/syncproto"
	"github.com/kite-runtime/kite/stage1/rootfs"
	"golang.org/x/sys/unix"
)

// podConfig is the part of the pod's config.json the init applies. Decoding only these fields
// keeps the init's start, and its memory for the pod's whole life, small.
type podConfig struct {
	Annotations map[string]string `json:"annotations"`
	Hostname    string            `json:"hostname"`
	Linux       struct {
		Namespaces []podNamespace    `json:"namespaces"`
		Sysctl     map[string]string `json:"sysctl"`
	} `json:"linux"`
}

// podNamespace is one namespace of the pod: made for it, or joined at Path.
type podNamespace struct {
	Type string `json:"type"`
	Path string `json:"path"`
}

// ownNetwork reports whether the pod has a network namespace of its own, made for it, not one it
// joined.
func (c *podConfig) ownNetwork() bool {
	for _, ns := range c.Linux.Namespaces {
		if ns.Type == "network" && ns.Path == "" {
			return true
		}
	}
	return false
}

// Main runs init for the pod in podDir and returns the process exit code: the pod's status once
// its apps have ended, or a failure's code once the monitor has been told about it (or could not
// be told).
func Main(podDir string) int {
	conn, err := syncproto.FromEnv(poddir.SyncFdEnv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kite-stage1:", err)
		return exitcode.Failed
	}
	status, err := run(conn, podDir)
	if err != nil {
		code := exitcode.Failed
		var ce *exitcode.CodedError
		if errors.As(err, &ce) {
			code = ce.Code
		}
		conn.Send(syncproto.Message{Type: syncproto.Error, Code: code, Text: err.Error()})
		return code
	}
	// The pod's status, which a kite oci container's caller reaps (kite run's monitor has it from
	// the exited message).
	return exitcode.FromWaitStatus(syscall.WaitStatus(status))
}

func run(conn *syncproto.Conn, podDir string) (unix.WaitStatus, error) {
	var pod poddir.Pod
	if err := poddir.ReadJSON(podDir, poddir.PodFile, &pod); err != nil {
		return 0, err
	}
	if pod.OCI == nil {
		// Gaining capabilities in the exec cleared the parent-death signal the fork set
		// (commit_creds); arm it again, then make sure the monitor did not die before it was
		// armed. A kite oci container's init has none: it outlives its monitor, as its caller's
		// child.
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
			return 0, os.NewSyscallError("prctl(PR_SET_PDEATHSIG)", err)
		}
	}
	if monitorGone(conn) {
		return 0, errors.New("the monitor exited")
	}
	// Nothing in the pod may ptrace init or open its /proc files, which lead back to the host
	// (CVE-2019-5736 used /proc/PID/exe).
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return 0, os.NewSyscallError("prctl(PR_SET_DUMPABLE)", err)
	}
	var spec podConfig
	if err := poddir.ReadJSON(podDir, poddir.ConfigFile, &spec); err != nil {
		return 0, err
	}
	if len(pod.Apps) == 0 {
		return 0, errors.New("pod.json lists no app")
	}
	// Relay signals from the start: one that arrives while the apps start is delivered once they run.
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, append(podfork.ForwardedSignals, unix.SIGCHLD)...)

	// What /proc tells, while the init still sees the host's: the pod's root has no /proc.
	ids, err := readProc()
	if err != nil {
		return 0, err
	}
	root := filepath.Join(podDir, poddir.RootfsDir)
	if err := rootfs.MountPodRoot(root); err != nil {
		return 0, err
	}
	var apps []*appConfig
	for _, a := range pod.Apps {
		app, err := assembleApp(podDir, root, a.Name)
		if err != nil {
			return 0, err
		}
		apps = append(apps, app)
	}
	phase.Mark("init", "roots assembled")
	if err := setSysctls(&spec); err != nil {
		return 0, err
	}
	ociPid, console := 0, -1
	if pod.OCI != nil {
		if ociPid, err = hostPid(); err != nil {
			return 0, err
		}
		if path := pod.OCI.ConsoleSocket; path != "" {
			if console, err = dialConsole(path); err != nil {
				return 0, err
			}
		}
		if err := createHooks(conn, pod.OCI, ociPid); err != nil {
			return 0, err
		}
	}
	if err := rootfs.Pivot(root); err != nil {
		return 0, err
	}
	if console >= 0 {
		if apps[0].console, err = sendConsole(console, apps[0], "/"+filepath.Join(rootfs.AppsDir, apps[0].name)); err != nil {
			return 0, err
		}
	}
	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return 0, os.NewSyscallError("sethostname", err)
		}
	}
	preserved, err := poddir.PreservedFDs(spec.Annotations)
	if err != nil {
		return 0, err
	}
	if preserved > 0 && len(apps) > 1 {
		return 0, errors.New("--preserve-fds: a pod of several apps cannot pass descriptors to one of them")
	}
	if spec.ownNetwork() {
		if err := loopbackUp(); err != nil {
			return 0, err
		}
	}
	if n := pod.Network; n != nil && n.Helper != "" {
		if err := awaitNetwork(conn); err != nil {
			return 0, err
		}
	}
	// Only stdio and the descriptors the caller passed on reach the apps.
	if err := podfork.CloseExtraFDs(3 + preserved); err != nil {
		return 0, err
	}
	if pod.OCI != nil {
		if err := awaitStart(conn, sigs); err != nil {
			return 0, err
		}
		if err := startContainerHooks(pod.OCI, "/"+filepath.Join(rootfs.AppsDir, apps[0].name), ociPid); err != nil {
			return 0, err
		}
	}
	running, term, err := startApps(apps, ids, preserved)
	if err != nil {
		return 0, err
	}
	phase.Mark("init", "apps started")
	if err := conn.Send(syncproto.Message{Type: syncproto.Started, Pid: running[0].pid}); err != nil {
		return 0, err
	}
	status := reapApps(running, pod.ExitPolicy, sigs, term)
	phase.Mark("init", "apps ended")
	if term != nil {
		term.drain()
	}
	msg := syncproto.Message{Type: syncproto.Exited, Status: int(status)}
	for _, a := range running {
		msg.Apps = append(msg.Apps, syncproto.AppStatus{Name: a.name, Status: int(a.status)})
	}
	return status, conn.Send(msg)
}

// makeEmptyVolumes makes the pod's empty volumes. Init does it, not stage0: it is root in the pod's
// user namespace and can give them any owner the namespace maps.
func makeEmptyVolumes(podDir string, vols []poddir.EmptyVolume) error {
	for _, v := range vols {
		if filepath.IsAbs(v.Dir) || strings.Contains(v.Dir, "..") {
			return fmt.Errorf("empty volume %q: not a path inside the pod directory", v.Dir)
		}
		p := filepath.Join(podDir, v.Dir)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return fmt.Errorf("make empty volume %s: %w", v.Dir, err)
		}
		if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("make empty volume %s: %w", v.Dir, err)
		}
		if err := os.Lchown(p, int(v.UID), int(v.GID)); err != nil {
			return fmt.Errorf("make empty volume %s owned by %d:%d: %w", v.Dir, v.UID, v.GID, err)
		}
		// After the chown, which may clear set-id bits; umask does not apply to chmod.
		if err := os.Chmod(p, os.FileMode(v.Mode&0o777)|modeBits(v.Mode)); err != nil {
			return fmt.Errorf("make empty volume %s: %w", v.Dir, err)
		}
	}
	return nil
}

// modeBits converts the setuid, setgid and sticky bits of a numeric mode to os.FileMode's.
func modeBits(mode uint32) os.FileMode {
	var m os.FileMode
	if mode&unix.S_ISUID != 0 {
		m |= os.ModeSetuid
	}
	if mode&unix.S_ISGID != 0 {
		m |= os.ModeSetgid
	}
	if mode&unix.S_ISVTX != 0 {
		m |= os.ModeSticky
	}
	return m
}

// monitorGone reports whether the monitor's end of the socket is closed.
func monitorGone(conn *syncproto.Conn) bool {
	fds := []unix.PollFd{{Fd: int32(conn.File().Fd()), Events: unix.POLLRDHUP}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0 && fds[0].Revents&(unix.POLLRDHUP|unix.POLLHUP) != 0
}
