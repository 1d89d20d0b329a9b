package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/kite-runtime/kite/pkg/poddir"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

// hostOnlyEnv are variables of kite's environment about kite itself, which never reach an app as
// they are, even with --inherit-env: socket activation's and sd_notify's.
var hostOnlyEnv = []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET"}

// socketActivation takes the descriptors systemd passed kite (sd_listen_fds(3)): LISTEN_FDS of
// them from 3 on, when LISTEN_PID is kite's own pid. It unsets the variables, as a service that
// took its descriptors does, and returns how many there are and what the app's environment gets
// for them: LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID, which stage1 sets to the app's own pid.
func socketActivation() (int, []string, error) {
	pid, fds, names := os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_FDNAMES")
	for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		os.Unsetenv(k)
	}
	if fds == "" || pid != strconv.Itoa(os.Getpid()) {
		return 0, nil, nil
	}
	n, err := strconv.Atoi(fds)
	if err != nil || n < 0 {
		return 0, nil, fmt.Errorf("LISTEN_FDS=%q: not a number of descriptors", fds)
	}
	if n == 0 {
		return 0, nil, nil
	}
	if err := checkPreservedFDs(n); err != nil {
		return 0, nil, fmt.Errorf("socket activation: %w", err)
	}
	env := []string{"LISTEN_FDS=" + fds, "LISTEN_PID="}
	if names != "" {
		env = append(env, "LISTEN_FDNAMES="+names)
	}
	return n, env, nil
}

// passDescriptors gives the pod's first app, whose config.json is app, the descriptors of socket
// activation or of --preserve-fds (not both), and records their count in the pod's config.json,
// pod (which may be app itself).
func passDescriptors(preserve int, pod, app *specs.Spec) error {
	listen, env, err := socketActivation()
	if err != nil {
		return err
	}
	if listen > 0 && preserve > 0 {
		return fmt.Errorf("--preserve-fds: kite was given %d descriptors by socket activation (LISTEN_FDS) already; they reach the app", listen)
	}
	n := max(listen, preserve)
	if n == 0 {
		return nil
	}
	if preserve > 0 {
		if err := checkPreservedFDs(preserve); err != nil {
			return err
		}
	}
	app.Process.Env = append(withoutKeys(app.Process.Env, hostOnlyEnv), env...)
	pod.Annotations[poddir.PreserveFDsAnnotation] = strconv.Itoa(n)
	return nil
}

// withoutKeys is env without the variables named keys.
func withoutKeys(env, keys []string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(keys, k) {
			out = append(out, kv)
		}
	}
	return out
}

// sd_notify modes (--sd-notify).
const (
	notifyContainer = "container" // the app's own messages reach the caller's NOTIFY_SOCKET
	notifyStarted   = "started"   // kite sends READY=1 once the app runs
	notifyIgnore    = "ignore"
)

func sdNotifyFlag() cli.Flag {
	return &cli.StringFlag{Name: "sd-notify", Usage: "pass readiness to systemd (NOTIFY_SOCKET): `MODE` container (the first app's own sd_notify messages; the default under NOTIFY_SOCKET), started (READY=1 once the apps run) or ignore"}
}

// sdNotifyMode is --sd-notify, or its default: container when kite has a NOTIFY_SOCKET.
func sdNotifyMode(c *cli.Context) (string, error) {
	mode := c.String("sd-notify")
	hasSocket := os.Getenv("NOTIFY_SOCKET") != ""
	switch mode {
	case "":
		if hasSocket {
			return notifyContainer, nil
		}
		return notifyIgnore, nil
	case notifyContainer, notifyStarted:
		if !hasSocket {
			return "", fmt.Errorf("--sd-notify=%s: NOTIFY_SOCKET is not set, so there is no one to tell; run kite from a unit with Type=notify, or use --sd-notify=ignore", mode)
		}
		return mode, nil
	case notifyIgnore:
		return mode, nil
	}
	return "", fmt.Errorf("--sd-notify=%q: use container, started or ignore", mode)
}

// notifyInApp gives app, the pod's first app, the pod's end of sd_notify: the pod directory's
// NotifyDir bound read-only at AppNotifyDir (sending to a socket needs no writable mount; the app
// gets no way to write into the pod directory), and NOTIFY_SOCKET naming the socket there. The
// host's socket is never seen inside the pod.
func notifyInApp(app *specs.Spec) {
	app.Mounts = append(app.Mounts, specs.Mount{
		Destination: poddir.AppNotifyDir, Type: "bind", Source: poddir.NotifyDir,
		Options: []string{"bind", "ro", "nosuid", "nodev", "noexec"},
	})
	app.Process.Env = append(withoutKeys(app.Process.Env, []string{"NOTIFY_SOCKET"}), "NOTIFY_SOCKET="+poddir.AppNotifySocket)
}

// listenNotify makes the pod's end of sd_notify in pod directory dir: a datagram socket any uid
// of the pod may send to.
func listenNotify(podDir string) (*os.File, error) {
	sockDir := filepath.Join(podDir, poddir.NotifyDir)
	if err := os.Mkdir(sockDir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("sd_notify: %w", err)
	}
	path := filepath.Join(sockDir, poddir.NotifySocket)
	os.Remove(path)
	// A socket's path must fit in 108 bytes, which a deep data directory's does not: bind it
	// through a descriptor of its directory.
	dir, err := os.Open(sockDir)
	if err != nil {
		return nil, fmt.Errorf("sd_notify: %w", err)
	}
	defer dir.Close()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("sd_notify: %w", os.NewSyscallError("socket", err))
	}
	f := os.NewFile(uintptr(fd), path)
	short := fmt.Sprintf("/proc/self/fd/%d/%s", dir.Fd(), poddir.NotifySocket)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: short}); err != nil {
		f.Close()
		return nil, fmt.Errorf("sd_notify: bind %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		f.Close()
		return nil, fmt.Errorf("sd_notify: %w", err)
	}
	return f, nil
}
