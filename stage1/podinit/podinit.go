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
	"runtime"
	"strings"

	"github.com/kite-runtime/kite/pkg/exitcode"
	"github.com/kite-runtime/kite/pkg/idmap"
	"github.com/kite-runtime/kite/pkg/poddir"
	"github.com/kite-runtime/kite/pkg/podfork"
	"github.com/kite-runtime/kite/pkg/syncproto"
	"github.com/kite-runtime/kite/stage1/rootfs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// podConfig is the part of config.json the init applies. Decoding only these fields keeps the
// init's start, and its memory for the pod's whole life, small.
type podConfig struct {
	Process     *specs.Process    `json:"process"`
	Annotations map[string]string `json:"annotations"`
	Root        *specs.Root       `json:"root"`
	Hostname    string            `json:"hostname"`
	Mounts      []specs.Mount     `json:"mounts"`
	Linux       struct {
		MaskedPaths   []string `json:"maskedPaths"`
		ReadonlyPaths []string `json:"readonlyPaths"`
		// Seccomp is only looked at for being there: the init loads the filter stage0 compiled
		// from it into the pod directory.
		Seccomp *struct{} `json:"seccomp"`
	} `json:"linux"`
}

// Main runs init for the pod in podDir and returns the process exit code. It only returns on a
// failure the monitor has already been told about, or could not be told about.
func Main(podDir string) int {
	conn, err := syncproto.FromEnv(poddir.SyncFdEnv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kite-stage1:", err)
		return exitcode.Failed
	}
	err = run(conn, podDir)
	if err != nil {
		code := exitcode.Failed
		var ce *exitcode.CodedError
		if errors.As(err, &ce) {
			code = ce.Code
		}
		conn.Send(syncproto.Message{Type: syncproto.Error, Code: code, Text: err.Error()})
		return code
	}
	return 0
}

func run(conn *syncproto.Conn, podDir string) error {
	// The bounding and ambient capability sets, the capability sets themselves and no_new_privs
	// belong to a thread, and the app inherits those of the thread that forks it: restrictApp
	// and startApp must run on one thread.
	runtime.LockOSThread()
	// Gaining capabilities in the exec cleared the parent-death signal the fork set
	// (commit_creds); arm it again, then make sure the monitor did not die before it was armed.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return os.NewSyscallError("prctl(PR_SET_PDEATHSIG)", err)
	}
	if monitorGone(conn) {
		return errors.New("the monitor exited")
	}
	// Nothing in the pod may ptrace init or open its /proc files, which lead back to the host
	// (CVE-2019-5736 used /proc/PID/exe).
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return os.NewSyscallError("prctl(PR_SET_DUMPABLE)", err)
	}
	var spec podConfig
	if err := poddir.ReadJSON(podDir, poddir.ConfigFile, &spec); err != nil {
		return err
	}
	var layers poddir.Rootfs
	if err := poddir.ReadJSON(podDir, poddir.RootfsFile, &layers); err != nil {
		return err
	}
	if spec.Process == nil {
		return errors.New("config.json has no process")
	}
	// Relay signals from the start: one that arrives while the app starts is delivered once it runs.
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, append(podfork.ForwardedSignals, unix.SIGCHLD)...)

	var filter []byte
	if spec.Linux.Seccomp != nil {
		var err error
		if filter, err = os.ReadFile(filepath.Join(podDir, poddir.SeccompFile)); err != nil {
			return fmt.Errorf("read the app's seccomp filter: %w", err)
		}
	}
	if err := makeEmptyVolumes(podDir, layers.EmptyVolumes); err != nil {
		return err
	}
	for i, m := range spec.Mounts {
		// A relative bind source is in the pod directory (an empty volume).
		if m.Type == "bind" && !filepath.IsAbs(m.Source) {
			spec.Mounts[i].Source = filepath.Join(podDir, m.Source)
		}
	}
	opts := rootfs.Options{
		Readonly:      spec.Root != nil && spec.Root.Readonly,
		Cwd:           spec.Process.Cwd,
		MaskedPaths:   spec.Linux.MaskedPaths,
		ReadonlyPaths: spec.Linux.ReadonlyPaths,
	}
	if err := rootfs.Setup(spec.Mounts, &layers, filepath.Join(podDir, poddir.RootfsDir), opts); err != nil {
		return err
	}
	if err := restrictApp(spec.Process); err != nil {
		return err
	}
	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return os.NewSyscallError("sethostname", err)
		}
	}
	preserved, err := poddir.PreservedFDs(spec.Annotations)
	if err != nil {
		return err
	}
	pid, term, err := startApp(spec.Process, preserved, filter)
	if err != nil {
		return err
	}
	if err := conn.Send(syncproto.Message{Type: syncproto.Started, Pid: pid}); err != nil {
		return err
	}
	status := reap(pid, sigs, term)
	if term != nil {
		term.drain()
	}
	return conn.Send(syncproto.Message{Type: syncproto.Exited, Status: int(status)})
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

// reap waits for the app, reaping every other child on the way, and relays signals to the app.
// With a terminal, a SIGWINCH resizes it instead: the kernel signals the app then.
func reap(app int, sigs <-chan os.Signal, term *terminal) unix.WaitStatus {
	for sig := range sigs {
		if sig == unix.SIGWINCH && term != nil {
			term.resize()
			continue
		}
		if sig != unix.SIGCHLD {
			unix.Kill(app, sig.(unix.Signal))
			continue
		}
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if pid <= 0 || err != nil {
				break
			}
			if pid == app {
				return ws
			}
		}
	}
	panic("unreachable: the signal channel is never closed")
}

// startApp execs the app with its user, groups, environment and working directory, the
// descriptors 0, 1, 2 (its terminal, with --tty) and the preserved ones from 3 on, and its
// seccomp filter.
func startApp(p *specs.Process, preserved int, filter []byte) (int, *terminal, error) {
	if len(p.Args) == 0 {
		return 0, nil, &exitcode.CodedError{Code: exitcode.NotFound, Err: errors.New("the app has no command: the image sets no Entrypoint or Cmd; give one after --")}
	}
	path, err := lookPath(p.Args[0], p.Env)
	if err != nil {
		return 0, nil, err
	}
	if err := refuseStage1(path); err != nil {
		return 0, nil, err
	}
	app := &podfork.App{Path: path, Args: p.Args, Env: p.Env, Dir: p.Cwd, FDs: 3 + preserved, Filter: filter}
	if app.Dir == "" {
		app.Dir = "/"
	}
	// Only stdio and the descriptors the caller passed on reach the app.
	if err := podfork.CloseExtraFDs(app.FDs); err != nil {
		return 0, nil, err
	}
	if p.User.Umask != nil {
		// The app inherits it across the fork and exec.
		unix.Umask(int(*p.User.Umask))
	}
	uids, gids, denied, err := ownIDMaps()
	if err != nil {
		return 0, nil, err
	}
	if err := setIDs(app, p.User, uids, gids, denied); err != nil {
		return 0, nil, err
	}
	// Loading a filter takes CAP_SYS_ADMIN or no_new_privs; an app setuid(2) takes away from
	// root has neither.
	app.FilterFirst = !p.NoNewPrivileges && p.User.UID != 0
	var term *terminal
	if p.Terminal {
		t, slave, err := newTerminal(p)
		if err != nil {
			return 0, nil, err
		}
		defer slave.Close()
		term = t
		app.Terminal = slave
	}
	pid, err := podfork.StartApp(app)
	if err != nil {
		if term != nil {
			term.master.Close()
		}
		var ee *podfork.ExecError
		if errors.As(err, &ee) {
			return 0, nil, execError(p.Args[0], ee.Errno, filter != nil)
		}
		return 0, nil, err
	}
	if term != nil {
		term.relay()
	}
	return pid, term, nil
}

// refuseStage1 refuses to run kite-stage1 itself as the app, as an image whose entrypoint is
// /proc/self/exe would: the app would then be a process of the host's binary inside the pod,
// which the pod could open for writing through /proc once it exits (CVE-2019-5736).
func refuseStage1(path string) error {
	app, err := os.Stat(path)
	if err != nil {
		return nil // the exec reports it
	}
	self, err := os.Stat("/proc/self/exe")
	if err == nil && os.SameFile(app, self) {
		return &exitcode.CodedError{Code: exitcode.NotExecutable, Err: fmt.Errorf("exec %s: it is kite's own stage1 binary, which never runs as an app (CVE-2019-5736)", path)}
	}
	return nil
}

func execError(name string, errno unix.Errno, filtered bool) error {
	code := exitcode.NotExecutable
	if errno == unix.ENOENT || errno == unix.ENOTDIR {
		code = exitcode.NotFound
	}
	err := fmt.Errorf("exec %s: %w", name, errno)
	if errno == unix.EPERM && filtered {
		err = fmt.Errorf("exec %s: %w (does the --seccomp filter allow execve?)", name, errno)
	}
	return &exitcode.CodedError{Code: code, Err: err}
}

// lookPath finds name in the app's PATH (not init's), inside the pod's root.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	pathEnv := poddir.DefaultPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathEnv = v
		}
	}
	var denied error
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		st, err := os.Stat(p)
		if err != nil || st.IsDir() {
			continue
		}
		if st.Mode()&0o111 == 0 {
			denied = &exitcode.CodedError{Code: exitcode.NotExecutable, Err: fmt.Errorf("exec %s: %s is not executable", name, p)}
			continue
		}
		return p, nil
	}
	if denied != nil {
		return "", denied
	}
	return "", &exitcode.CodedError{Code: exitcode.NotFound, Err: fmt.Errorf("exec %s: not found in PATH %s inside the image", name, pathEnv)}
}

// setIDs checks that the app's ids exist in the pod's user namespace (uids and gids are its
// maps), where an unmapped id would make setuid(2) fail with a bare EINVAL, and sets them on app.
// Where the monitor had to deny setgroups(2) to map the caller's gid alone, the app keeps the
// (unmapped, powerless) groups it inherits.
func setIDs(app *podfork.App, u specs.User, uids, gids []specs.LinuxIDMapping, setgroupsDenied bool) error {
	unmapped := func(kind string, id uint32, m []specs.LinuxIDMapping) error {
		return fmt.Errorf("run the app as %s %d: it is not mapped in the pod's user namespace (only %s are); "+
			"give the user a subordinate id range in /etc/subuid and /etc/subgid, or run the app as root", kind, id, idmap.Ranges(m))
	}
	if !idmap.Contains(uids, u.UID) {
		return unmapped("uid", u.UID, uids)
	}
	if !idmap.Contains(gids, u.GID) {
		return unmapped("gid", u.GID, gids)
	}
	for _, g := range u.AdditionalGids {
		if !idmap.Contains(gids, g) {
			return unmapped("supplementary gid", g, gids)
		}
	}
	app.UID, app.GID, app.Groups = u.UID, u.GID, u.AdditionalGids
	if setgroupsDenied {
		if len(u.AdditionalGids) > 0 {
			return fmt.Errorf("set supplementary groups %v: setgroups is denied in this pod's single-id user namespace; give the user a subordinate id range in /etc/subgid", u.AdditionalGids)
		}
		app.KeepGroups = true
	}
	return nil
}

// ownIDMaps reads this process's user namespace's id maps and whether setgroups(2) is denied in it.
func ownIDMaps() (uids, gids []specs.LinuxIDMapping, setgroupsDenied bool, err error) {
	if uids, err = idmap.Read("/proc/self/uid_map"); err != nil {
		return nil, nil, false, err
	}
	if gids, err = idmap.Read("/proc/self/gid_map"); err != nil {
		return nil, nil, false, err
	}
	deny, _ := os.ReadFile("/proc/self/setgroups")
	return uids, gids, strings.TrimSpace(string(deny)) == "deny", nil
}
