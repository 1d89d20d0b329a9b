package podinit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/kite-runtime/kite/pkg/exitcode"
	"github.com/kite-runtime/kite/pkg/idmap"
	"github.com/kite-runtime/kite/pkg/poddir"
	"github.com/kite-runtime/kite/pkg/podfork"
	"github.com/kite-runtime/kite/stage1/rootfs"
	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// appConfig is the part of an app's config.json the init applies.
type appConfig struct {
	name   string
	filter []byte
	// console is the terminal side of a pseudo-terminal whose other side went to an OCI
	// container's console socket at create.
	console *os.File
	Process *specs.Process `json:"process"`
	Root    *specs.Root    `json:"root"`
	Mounts  []specs.Mount  `json:"mounts"`
	Linux   struct {
		MaskedPaths   []string `json:"maskedPaths"`
		ReadonlyPaths []string `json:"readonlyPaths"`
		// Seccomp is only looked at for being there: the init loads the filter stage0 compiled
		// from it into the app's directory.
		Seccomp *struct{} `json:"seccomp"`
		// RootfsPropagation is the propagation of the app's root mount: rslave unless set.
		RootfsPropagation string `json:"rootfsPropagation"`
	} `json:"linux"`
}

// assembleApp reads app name's documents and builds its root filesystem below the pod's root.
func assembleApp(podDir, root, name string) (*appConfig, error) {
	appDir := filepath.Join(podDir, poddir.AppDir(name))
	c := &appConfig{name: name}
	if err := poddir.ReadJSON(appDir, poddir.ConfigFile, c); err != nil {
		return nil, err
	}
	var layers poddir.Rootfs
	if err := poddir.ReadJSON(appDir, poddir.RootfsFile, &layers); err != nil {
		return nil, err
	}
	if c.Linux.Seccomp != nil {
		var err error
		if c.filter, err = os.ReadFile(filepath.Join(appDir, poddir.SeccompFile)); err != nil {
			return nil, fmt.Errorf("read the seccomp filter of app %s: %w", name, err)
		}
	}
	if err := makeEmptyVolumes(podDir, layers.EmptyVolumes); err != nil {
		return nil, err
	}
	for i, m := range c.Mounts {
		// A relative bind source is in the pod directory (an empty volume).
		if m.Type == "bind" && !filepath.IsAbs(m.Source) {
			c.Mounts[i].Source = filepath.Join(podDir, m.Source)
		}
	}
	// An OCI container may be created without a process; it then fails to start.
	cwd := ""
	if c.Process != nil {
		cwd = c.Process.Cwd
	}
	opts := rootfs.Options{
		Readonly:      c.Root != nil && c.Root.Readonly,
		Cwd:           cwd,
		MaskedPaths:   c.Linux.MaskedPaths,
		ReadonlyPaths: c.Linux.ReadonlyPaths,
	}
	if err := rootfs.Assemble(filepath.Join(root, rootfs.AppsDir, name), c.Mounts, &layers, opts); err != nil {
		return nil, fmt.Errorf("app %s: %w", name, err)
	}
	return c, nil
}

// procView is what the init reads in /proc before it pivots into the pod's root, which has none:
// the user namespace's id maps, whether setgroups(2) is denied in it, and the init's
// oom_score_adj, below which the apps' may not go.
type procView struct {
	uids, gids      []specs.LinuxIDMapping
	setgroupsDenied bool
	oomScoreAdj     int
	// lastCap is the kernel's last capability.
	lastCap capability.Cap
}

// readProc reads procView in this process's /proc.
func readProc() (procView, error) {
	var m procView
	var err error
	if m.uids, err = idmap.Read("/proc/self/uid_map"); err != nil {
		return m, err
	}
	if m.gids, err = idmap.Read("/proc/self/gid_map"); err != nil {
		return m, err
	}
	deny, _ := os.ReadFile("/proc/self/setgroups")
	m.setgroupsDenied = strings.TrimSpace(string(deny)) == "deny"
	if m.lastCap, err = capability.LastCap(); err != nil {
		return m, fmt.Errorf("find the kernel's capabilities: %w", err)
	}
	adj, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return m, err
	}
	m.oomScoreAdj, err = strconv.Atoi(strings.TrimSpace(string(adj)))
	return m, err
}

// runningApp is an app the init started, and, once it has ended, its wait status.
type runningApp struct {
	name   string
	pid    int
	ended  bool
	status unix.WaitStatus
}

// startApps starts every app, after the init has pivoted into the pod's root. One app may have
// a terminal; the first gets the preserved descriptors.
func startApps(apps []*appConfig, ids procView, preserved int) ([]*runningApp, *terminal, error) {
	var running []*runningApp
	var term *terminal
	for i, c := range apps {
		fds := 3
		if i == 0 {
			fds += preserved
		}
		if c.Process == nil {
			return nil, nil, fmt.Errorf("app %s: config.json has no process to run", c.name)
		}
		app, err := prepareApp(c.Process, "/"+filepath.Join(rootfs.AppsDir, c.name), c.filter, ids, fds)
		if err != nil {
			return nil, nil, fmt.Errorf("app %s: %w", c.name, err)
		}
		if app.RootPropagation, err = rootfs.Propagation(c.Linux.RootfsPropagation); err != nil {
			return nil, nil, fmt.Errorf("app %s: %w", c.name, err)
		}
		var slave *os.File
		switch {
		case c.console != nil:
			slave, c.console = c.console, nil
			app.Terminal = slave
		case c.Process.Terminal:
			if term != nil {
				return nil, nil, errors.New("only one app of a pod can have a terminal")
			}
			if term, slave, err = newTerminal(app.Root, c.Process); err != nil {
				return nil, nil, err
			}
			app.Terminal = slave
		}
		pid, err := startApp(app, c.Process.Args[0])
		if slave != nil {
			slave.Close()
		}
		if err != nil {
			if term != nil {
				term.master.Close()
			}
			for _, r := range running {
				unix.Kill(r.pid, unix.SIGKILL)
			}
			return nil, nil, fmt.Errorf("app %s: %w", c.name, err)
		}
		running = append(running, &runningApp{name: c.name, pid: pid})
	}
	if term != nil {
		term.relay()
	}
	return running, term, nil
}

// prepareApp describes how to start process p in the app root filesystem root (as the starting
// process sees it): its command found in its PATH inside root, its ids, its restrictions and
// filter, and descriptors 0 to fds-1.
func prepareApp(p *specs.Process, root string, filter []byte, ids procView, fds int) (*podfork.App, error) {
	if len(p.Args) == 0 {
		return nil, &exitcode.CodedError{Code: exitcode.NotFound, Err: errors.New("the app has no command: the image sets no Entrypoint or Cmd; give one after --")}
	}
	path, err := lookPath(root, p.Args[0], p.Env)
	if err != nil {
		return nil, err
	}
	app := &podfork.App{Path: path, Args: p.Args, Env: p.Env, Dir: p.Cwd, Root: root, FDs: fds, Filter: filter}
	if app.Dir == "" {
		app.Dir = "/"
	}
	if p.User.Umask != nil {
		// The apps inherit it across the fork and exec.
		unix.Umask(int(*p.User.Umask))
	}
	if err := setIDs(app, p.User, ids.uids, ids.gids, ids.setgroupsDenied); err != nil {
		return nil, err
	}
	if p.OOMScoreAdj != nil && *p.OOMScoreAdj < ids.oomScoreAdj {
		return nil, fmt.Errorf("set oom_score_adj %d: only a privileged process may lower it below its current value, %d", *p.OOMScoreAdj, ids.oomScoreAdj)
	}
	if err := restrict(p, app, ids.lastCap); err != nil {
		return nil, err
	}
	// Loading a filter takes CAP_SYS_ADMIN or no_new_privs; an app setuid(2) takes away from
	// root has neither.
	app.FilterFirst = !p.NoNewPrivileges && p.User.UID != 0
	return app, nil
}

// startApp starts app, whose command the user named name.
func startApp(app *podfork.App, name string) (int, error) {
	pid, err := podfork.StartApp(app)
	var ee *podfork.ExecError
	switch {
	case errors.As(err, &ee):
		return 0, execError(name, ee.Errno, app.Filter != nil)
	case errors.Is(err, podfork.ErrStage1):
		return 0, &exitcode.CodedError{Code: exitcode.NotExecutable, Err: fmt.Errorf("exec %s: %w", name, err)}
	}
	return pid, err
}

func execError(name string, errno unix.Errno, filtered bool) error {
	code := exitcode.NotExecutable
	if errno == unix.ENOENT || errno == unix.ENOTDIR {
		code = exitcode.NotFound
	}
	err := fmt.Errorf("exec %s: %w", name, errno)
	// The kernel refuses with EPERM a file whose file capabilities the app's bounding set does not
	// hold, and a filter may deny execve with it.
	if errno == unix.EPERM {
		why := "the file has file capabilities beyond the app's (see --cap-add)"
		if filtered {
			why += ", or the --seccomp filter denies execve"
		}
		err = fmt.Errorf("exec %s: %w (%s)", name, errno, why)
	}
	return &exitcode.CodedError{Code: code, Err: err}
}

// lookPath finds name in the app's PATH (not init's), inside the app's root filesystem root, and
// returns it as the app will exec it.
func lookPath(root, name string, env []string) (string, error) {
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
		inRoot, err := securejoin.SecureJoin(root, p)
		if err != nil {
			continue
		}
		st, err := os.Stat(inRoot)
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
