package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/kite-runtime/kite/pkg/exitcode"
	"github.com/kite-runtime/kite/pkg/ocihooks"
	"github.com/kite-runtime/kite/pkg/podcgroup"
	"github.com/kite-runtime/kite/pkg/poddir"
	"github.com/kite-runtime/kite/pkg/startsock"
	"github.com/kite-runtime/kite/stage0/oci"
	"github.com/kite-runtime/kite/stage0/pods"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

// ociProgram is the name under which kite is kite oci: a link named so lets engines that expect
// a runc-like command (podman --runtime) run kite's OCI runtime.
const ociProgram = "kite-oci"

// ociArgs turns the command line of kite run as kite-oci into kite oci's.
func ociArgs(args []string) []string {
	if len(args) > 0 && filepath.Base(args[0]) == ociProgram {
		return append([]string{"kite", "oci"}, args[1:]...)
	}
	return args
}

func ociCommand() *cli.Command {
	return &cli.Command{
		Name:  "oci",
		Usage: "run OCI bundles: the runtime-spec command line (create, start, state, kill, delete), as runc's",
		Description: `kite oci runs a runtime-spec bundle (a directory with config.json and a root
filesystem) with kite's stage1, as an unprivileged user: a container is created,
started, signalled and deleted by separate commands, as the runtime-spec's
runtime.md and runc's command line have it. kite is kite oci when it is run
through a link named kite-oci (podman --runtime /usr/local/bin/kite-oci).

A container without a user namespace in its config.json gets one: 0 is you, and
1 on your subordinate ids (/etc/subuid). Its state lives in --root (default:
$XDG_RUNTIME_DIR/kite-oci). Its process becomes the child of kite oci create's
caller, which reaps it and gets the program's exit status; a small monitor
process runs its hooks and follows it from create until it stops. Network and
IPC namespaces given by path are joined. What kite cannot apply as an
unprivileged user is named in a warning on stderr (linux.resources on a host
whose cgroups are not delegated; AppArmor or SELinux where the host has none)
or refused (AppArmor or SELinux where the host has them; pid, mount, uts, user
or cgroup namespaces given by path).

Example:
   mkdir -p bundle/rootfs && tar -C bundle/rootfs -xf rootfs.tar
   kite oci spec --rootless --bundle bundle
   kite oci create --bundle bundle c1 && kite oci start c1
   kite oci state c1; kite oci kill c1 TERM; kite oci delete c1`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "root", Usage: "directory of the containers' state (default: $XDG_RUNTIME_DIR/kite-oci)"},
			&cli.StringFlag{Name: "log", Usage: "also append error messages to `FILE`"},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "format of --log: text or json"},
			&cli.BoolFlag{Name: "systemd-cgroup", Usage: "accepted for compatibility; kite places containers in cgroups itself"},
		},
		Before: func(c *cli.Context) error {
			if f := c.String("log-format"); f != "text" && f != "json" {
				return usageErr(fmt.Errorf("--log-format %q: use text or json", f))
			}
			return nil
		},
		Subcommands: []*cli.Command{
			ociCreateCommand(), ociStartCommand(), ociStateCommand(), ociKillCommand(), ociDeleteCommand(),
			ociListCommand(), ociSpecCommand(), ociFeaturesCommand(), ociMonitorCommand(),
		},
	}
}

func usageErr(err error) error { return &exitcode.CodedError{Code: exitcode.Failed, Err: err} }

// ociRoot is the --root of kite oci.
func ociRoot(c *cli.Context) string {
	if r := c.String("root"); r != "" {
		return r
	}
	return oci.DefaultRoot()
}

// ociID is the one container ID a command takes.
func ociID(c *cli.Context) (string, error) {
	if c.NArg() < 1 {
		return "", usageErr(errors.New("no container ID given"))
	}
	return c.Args().First(), oci.CheckID(c.Args().First())
}

// ociContainer loads the container the command names.
func ociContainer(c *cli.Context) (*oci.Container, error) {
	id, err := ociID(c)
	if err != nil {
		return nil, err
	}
	return oci.Load(ociRoot(c), id)
}

// ociFail is how a kite oci command fails: its message also goes to --log.
func ociFail(c *cli.Context, err error) error {
	if err == nil {
		return nil
	}
	if path := c.String("log"); path != "" {
		if f, ferr := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); ferr == nil {
			if c.String("log-format") == "json" {
				json.NewEncoder(f).Encode(map[string]string{"level": "error", "msg": err.Error(), "time": time.Now().UTC().Format(time.RFC3339Nano)})
			} else {
				fmt.Fprintf(f, "%s kite: %v\n", time.Now().UTC().Format(time.RFC3339), err)
			}
			f.Close()
		}
	}
	return err
}

func ociCreateCommand() *cli.Command {
	return &cli.Command{
		Name:      "create",
		Usage:     "create a container from a bundle: its namespaces and root filesystem, its program not yet run",
		ArgsUsage: "ID",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Value: ".", Usage: "the bundle `DIR`ectory, with config.json"},
			&cli.StringFlag{Name: "pid-file", Usage: "write the container process's pid to `FILE`"},
			&cli.StringFlag{Name: "console-socket", Usage: "send the controlling side of the container's terminal (process.terminal) to the unix socket `PATH`"},
			&cli.IntFlag{Name: "preserve-fds", Usage: "pass `N` descriptors from 3 on to the container's program"},
			&cli.BoolFlag{Name: "no-pivot", Usage: "accepted for compatibility; kite always pivots"},
			&cli.BoolFlag{Name: "no-new-keyring", Usage: "accepted for compatibility"},
		},
		Action: func(c *cli.Context) error { return ociFail(c, ociCreate(c)) },
	}
}

func ociCreate(c *cli.Context) error {
	id, err := ociID(c)
	if err != nil {
		return err
	}
	preserve := c.Int("preserve-fds")
	if err := checkPreservedFDs(preserve); err != nil {
		return usageErr(err)
	}
	var h *imageHelper
	compile := func(p *specs.LinuxSeccomp) ([]byte, error) {
		if h == nil {
			if h, err = newImageHelper(c); err != nil {
				return nil, err
			}
		}
		return seccompFilter(h, p, nil)
	}
	warn := func(msg string) { fmt.Fprintln(os.Stderr, "kite: warning:", msg) }
	ctr, err := oci.Create(oci.CreateOptions{Root: ociRoot(c), ID: id, Bundle: c.String("bundle"),
		ConsoleSocket: c.String("console-socket"), Compile: compile, Warn: warn})
	if err != nil {
		return err
	}
	if preserve > 0 {
		if ctr.Spec.Annotations == nil {
			ctr.Spec.Annotations = map[string]string{}
		}
		ctr.Spec.Annotations[poddir.PreserveFDsAnnotation] = strconv.Itoa(preserve)
		err = poddir.WriteJSON(ctr.Dir, poddir.ConfigFile, ctr.Spec)
	}
	if err == nil {
		if _, cerr := podcgroup.Find(ctr.Spec.Linux.Resources, podcgroup.OCIFields); cerr != nil {
			warn(fmt.Sprintf("not applied: %v", cerr))
		}
		err = startMonitor(c, ctr, preserve)
	}
	if path := c.String("pid-file"); err == nil && path != "" {
		_, pid := ctr.Status()
		if err = poddir.WriteFileAtomic(path, []byte(strconv.Itoa(pid)), 0o644); err != nil {
			err = fmt.Errorf("write --pid-file: %w", err)
			unix.Kill(pid, unix.SIGKILL)
		}
	}
	if err != nil {
		// The monitor, if it ran, has ended or ends now: its container with it.
		ctr.Lock.Close()
		if l, lerr := ctr.Container.Lock(10 * time.Second); lerr == nil {
			os.RemoveAll(ctr.Dir)
			l.Close()
		}
		return err
	}
	return nil
}

// startMonitor starts, in a session of its own, the process that becomes the container's
// monitor (kite oci __monitor, which execs kite-stage1), and waits for its word that the
// container is created.
func startMonitor(c *cli.Context, ctr *oci.Created, preserve int) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd := exec.Command(self, "oci", "--root", ociRoot(c), "__monitor", ctr.ID)
	cmd.Args[0] = "kite"
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	for fd := 3; fd < 3+preserve; fd++ {
		cmd.ExtraFiles = append(cmd.ExtraFiles, os.NewFile(uintptr(fd), "preserved"))
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, w, ctr.Lock)
	cmd.Env = append(os.Environ(),
		poddir.ReadyFdEnv+"="+strconv.Itoa(3+preserve), poddir.LockFdEnv+"="+strconv.Itoa(4+preserve))
	if c.Bool("debug") {
		cmd.Args = append([]string{cmd.Args[0], "--debug"}, cmd.Args[1:]...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("start the container's monitor: %w", err)
	}
	// Not waited for: the monitor outlives kite oci create.
	cmd.Process.Release()
	var m poddir.ReadyMessage
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		return fmt.Errorf("create container %s: its monitor ended before the container was created", ctr.ID)
	}
	if !m.OK {
		return &exitcode.CodedError{Code: exitcode.Failed, Err: fmt.Errorf("create container %s: %s", ctr.ID, m.Error)}
	}
	return nil
}

// ociMonitorCommand is the process kite oci create starts: it hands the container to stage1,
// exec'ing the monitor, as kite run does with a pod.
func ociMonitorCommand() *cli.Command {
	return &cli.Command{
		Name:   "__monitor",
		Hidden: true,
		Action: func(c *cli.Context) error {
			ready, lock := inheritedFile(poddir.ReadyFdEnv, "ready"), inheritedFile(poddir.LockFdEnv, "lock")
			if ready == nil || lock == nil {
				return errors.New("kite oci __monitor is started by kite oci create, not by hand")
			}
			// Only returns on failure, which kite oci create reports.
			err := ociMonitor(c, ready, lock)
			json.NewEncoder(ready).Encode(poddir.ReadyMessage{Error: err.Error()})
			return errSilent
		},
	}
}

func ociMonitor(c *cli.Context, ready, lock *os.File) error {
	id, err := ociID(c)
	if err != nil {
		return err
	}
	dir := filepath.Join(ociRoot(c), id)
	var s specs.Spec
	if err := poddir.ReadJSON(dir, poddir.ConfigFile, &s); err != nil {
		return err
	}
	group, _ := podcgroup.Find(s.Linux.Resources, podcgroup.OCIFields)
	stage1, err := libexecPath("kite-stage1")
	if err != nil {
		return err
	}
	if err := pods.ExecDir(stage1, dir, id, lock, &s, group, map[string]*os.File{poddir.ReadyFdEnv: ready}, true); err != nil {
		return err
	}
	return errors.New("the monitor did not start")
}

// inheritedFile is the descriptor the environment variable name carries, or nil. ExecDir names
// the descriptors the monitor gets anew.
func inheritedFile(name, what string) *os.File {
	if fd := poddir.InheritedFd(name); fd >= 0 {
		return os.NewFile(uintptr(fd), what)
	}
	return nil
}

func ociStartCommand() *cli.Command {
	return &cli.Command{
		Name:      "start",
		Usage:     "run the program of a created container",
		ArgsUsage: "ID",
		Action:    func(c *cli.Context) error { return ociFail(c, ociStart(c)) },
	}
}

func ociStart(c *cli.Context) error {
	ctr, err := ociContainer(c)
	if err != nil {
		return err
	}
	notCreated := func() error {
		status, _ := ctr.Status()
		return fmt.Errorf("container %s is %s: only a created container can be started", ctr.ID, status)
	}
	if status, _ := ctr.Status(); status != specs.StateCreated {
		return notCreated()
	}
	m, err := startsock.Request(ctr.Dir)
	switch {
	case errors.Is(err, startsock.ErrNotWaiting):
		return notCreated()
	case err == nil && !m.OK:
		return fmt.Errorf("start container %s: %s", ctr.ID, m.Error)
	}
	return err
}

func ociStateCommand() *cli.Command {
	return &cli.Command{
		Name:      "state",
		Usage:     "print a container's state, as runtime-spec's JSON",
		ArgsUsage: "ID",
		Action: func(c *cli.Context) error {
			ctr, err := ociContainer(c)
			if err != nil {
				return ociFail(c, err)
			}
			return writeJSON(os.Stdout, ctr.State())
		},
	}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func ociKillCommand() *cli.Command {
	return &cli.Command{
		Name:      "kill",
		Usage:     "send a signal (default TERM) to a created or running container's process",
		ArgsUsage: "ID [SIGNAL]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "accepted for compatibility: the container's process passes the signal on to its program"},
		},
		Action: func(c *cli.Context) error {
			ctr, err := ociContainer(c)
			if err != nil {
				return ociFail(c, err)
			}
			sig := unix.SIGTERM
			if c.NArg() > 1 {
				if sig, err = parseSignal(c.Args().Get(1)); err != nil {
					return ociFail(c, usageErr(err))
				}
			}
			return ociFail(c, ctr.Signal(sig))
		},
	}
}

// parseSignal reads a signal as a number, TERM or SIGTERM.
func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q: give a name (TERM, SIGKILL) or a number", s)
}

func ociDeleteCommand() *cli.Command {
	return &cli.Command{
		Name:      "delete",
		Usage:     "remove a stopped container (--force: any container) and run its poststop hooks",
		ArgsUsage: "ID",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "kill the container first if it has not stopped"},
		},
		Action: func(c *cli.Context) error { return ociFail(c, ociDelete(c)) },
	}
}

func ociDelete(c *cli.Context) error {
	id, err := ociID(c)
	if err != nil {
		return err
	}
	ctr, err := oci.Load(ociRoot(c), id)
	if err != nil {
		if c.Bool("force") && errors.Is(err, oci.ErrNotExist) {
			return nil
		}
		return err
	}
	if status, pid := ctr.Status(); status != specs.StateStopped {
		if !c.Bool("force") {
			return fmt.Errorf("container %s is %s: kite oci kill it and wait until it has stopped, or delete --force", id, status)
		}
		if pid > 0 {
			unix.Kill(pid, unix.SIGKILL)
		}
	}
	lock, err := ctr.Lock(10 * time.Second)
	if err != nil {
		return err
	}
	defer lock.Close()
	_, pid := ctr.Status()
	state := ctr.Pod.OCI.State(string(specs.StateStopped), pid)
	if err := os.RemoveAll(ctr.Dir); err != nil {
		return fmt.Errorf("delete container %s: %w", id, err)
	}
	// Last in the lifecycle, after the container is gone; a failure is only a warning.
	if h := ctr.Pod.OCI.Hooks; h != nil {
		if err := ocihooks.RunAll("poststop", h.Poststop, state); err != nil {
			fmt.Fprintln(os.Stderr, "kite: warning:", err)
		}
	}
	return nil
}

func ociListCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list the containers in --root",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "table or json"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print the IDs only"},
		},
		Action: func(c *cli.Context) error {
			ctrs, err := oci.List(ociRoot(c))
			if err != nil {
				return ociFail(c, err)
			}
			switch {
			case c.Bool("quiet"):
				for _, ctr := range ctrs {
					fmt.Println(ctr.ID)
				}
				return nil
			case c.String("format") == "json":
				states := []specs.State{}
				for _, ctr := range ctrs {
					states = append(states, ctr.State())
				}
				return writeJSON(os.Stdout, states)
			case c.String("format") != "table":
				return ociFail(c, usageErr(fmt.Errorf("--format %q: use table or json", c.String("format"))))
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED")
			for _, ctr := range ctrs {
				s := ctr.State()
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, ctr.Created.Format(time.RFC3339))
			}
			return w.Flush()
		},
	}
}
