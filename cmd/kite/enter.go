package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/kite-runtime/kite/pkg/exitcode"
	"github.com/kite-runtime/kite/pkg/podcgroup"
	"github.com/kite-runtime/kite/pkg/poddir"
	"github.com/kite-runtime/kite/pkg/podfork"
	"github.com/kite-runtime/kite/stage0/datadir"
	"github.com/kite-runtime/kite/stage0/pods"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

func enterCommand() *cli.Command {
	return &cli.Command{
		Name:      "enter",
		Usage:     "run a command inside a running pod",
		ArgsUsage: "POD [-- CMD [ARGS...]]",
		Description: podRefHelp + `

Runs CMD (default /bin/sh) in the pod's namespaces, as its app runs: the same
user, groups, environment, working directory, capabilities, no_new_privs and
seccomp filter. Its stdin, stdout and stderr are kite's; kite relays signals to
it and exits with its status (126: it could not be executed, 127: not found).`,
		Flags: append(uuidFileFlags(),
			&cli.StringFlag{Name: "app", Usage: "the app `NAME` to enter as (default: the pod's only app)"},
		),
		OnUsageError: usageError,
		Action:       enterAction,
	}
}

// splitEnterArgs separates the pod from the command: POD [-- CMD...], or with --uuid-file
// [-- CMD...].
func splitEnterArgs(c *cli.Context) (ref string, cmd []string, err error) {
	args := c.Args().Slice()
	if c.String("uuid-file") == "" {
		if len(args) == 0 {
			return "", nil, errors.New("enter: no pod given: kite enter POD [-- CMD [ARGS...]]")
		}
		ref, args = args[0], args[1:]
	}
	if len(args) > 0 {
		if args[0] != "--" {
			return "", nil, fmt.Errorf("enter: put the command after --, e.g. kite enter POD -- %s", args[0])
		}
		cmd = args[1:]
	}
	if len(cmd) == 0 {
		cmd = []string{"/bin/sh"}
	}
	return ref, cmd, nil
}

func enterAction(c *cli.Context) error {
	ref, cmd, err := splitEnterArgs(c)
	if err != nil {
		return err
	}
	d, err := dataDir(c)
	if err != nil {
		return err
	}
	if file := c.String("uuid-file"); file != "" {
		if ref, err = pods.ReadUUIDFile(file); err != nil {
			return err
		}
	}
	p, err := pods.Find(d, ref)
	if err != nil {
		return err
	}
	if p.State == pods.Running && p.Pid == 0 {
		if p, err = pods.Wait(d, p, false, 0); err != nil {
			return err
		}
	}
	if p.State != pods.Running {
		return fmt.Errorf("pod %s is %s, not running: kite enter needs a running pod", p.UUID, p.State)
	}
	app, err := enteredApp(p, c.String("app"))
	if err != nil {
		return err
	}
	stage1, err := libexecPath("kite-stage1")
	if err != nil {
		return err
	}
	plan, namespaces, err := enterPlan(p, app, cmd)
	if err != nil {
		return err
	}
	return enterPod(d, stage1, p, plan, namespaces)
}

// enteredApp is the app --app names, or the pod's only one.
func enteredApp(p *pods.Pod, name string) (string, error) {
	if p.Manifest == nil || len(p.Manifest.Apps) == 0 {
		return "", fmt.Errorf("pod %s has no pod.json", p.UUID)
	}
	var names []string
	for _, a := range p.Manifest.Apps {
		if a.Name == name {
			return name, nil
		}
		names = append(names, a.Name)
	}
	if name == "" && len(names) == 1 {
		return names[0], nil
	}
	if name == "" {
		return "", fmt.Errorf("pod %s has several apps: say which to enter as with --app (%s)", p.UUID, strings.Join(names, ", "))
	}
	return "", fmt.Errorf("pod %s has no app %q (its apps: %s)", p.UUID, name, strings.Join(names, ", "))
}

// enterPlan is what kite-stage1 enter needs to start cmd as the pod's app app, and the
// namespaces to join.
func enterPlan(p *pods.Pod, app string, cmd []string) (*poddir.EnterPlan, uintptr, error) {
	var pod, s specs.Spec
	if err := poddir.ReadJSON(p.Dir, poddir.ConfigFile, &pod); err != nil {
		return nil, 0, fmt.Errorf("pod %s: %w", p.UUID, err)
	}
	appDir := filepath.Join(p.Dir, poddir.AppDir(app))
	if err := poddir.ReadJSON(appDir, poddir.ConfigFile, &s); err != nil {
		return nil, 0, fmt.Errorf("pod %s: %w", p.UUID, err)
	}
	if s.Process == nil || pod.Linux == nil {
		return nil, 0, fmt.Errorf("pod %s: config.json has no process or linux section", p.UUID)
	}
	namespaces, err := podfork.CloneFlags(pod.Linux.Namespaces)
	if err != nil {
		return nil, 0, err
	}
	proc := *s.Process
	proc.Args, proc.Terminal, proc.ConsoleSize = cmd, false, nil
	plan := &poddir.EnterPlan{App: app, Process: &proc, UIDMappings: pod.Linux.UIDMappings, GIDMappings: pod.Linux.GIDMappings}
	if s.Linux != nil && s.Linux.Seccomp != nil {
		if plan.SeccompFilter, err = os.ReadFile(filepath.Join(appDir, poddir.SeccompFile)); err != nil {
			return nil, 0, fmt.Errorf("pod %s: read its seccomp filter: %w", p.UUID, err)
		}
	}
	last, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return nil, 0, err
	}
	if plan.LastCap, err = strconv.Atoi(strings.TrimSpace(string(last))); err != nil {
		return nil, 0, fmt.Errorf("read /proc/sys/kernel/cap_last_cap: %w", err)
	}
	deny, err := os.ReadFile(fmt.Sprintf("/proc/%d/setgroups", p.Pid))
	if err != nil {
		return nil, 0, fmt.Errorf("pod %s: %w", p.UUID, err)
	}
	plan.SetgroupsDenied = strings.TrimSpace(string(deny)) == "deny"
	return plan, namespaces, nil
}

// enterPod starts kite-stage1 enter in the pod's namespaces with the plan, waits for it and
// returns its status as the command's.
func enterPod(d datadir.Dir, stage1 string, p *pods.Pod, plan *poddir.EnterPlan, namespaces uintptr) error {
	pidfd, err := unix.PidfdOpen(p.Pid, 0)
	if err != nil {
		return fmt.Errorf("enter pod %s: %w", p.UUID, os.NewSyscallError("pidfd_open", err))
	}
	defer unix.Close(pidfd)
	// The PID names the pod's init as long as the pod runs: with the process held, check it does.
	if q, err := pods.Load(d, p.UUID); err != nil || q.State != pods.Running {
		return fmt.Errorf("pod %s ended", p.UUID)
	}
	exe, err := os.OpenFile(stage1, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("enter pod %s: %w", p.UUID, err)
	}
	defer exe.Close()
	doc, err := json.Marshal(plan)
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	// Only stdio and the plan may reach the pod (CVE-2016-9962: a descriptor of the joining
	// process leads out of it).
	if err := podfork.CloseExtraFDs(3); err != nil {
		w.Close()
		return err
	}
	// The command's starter becomes this process's child when its first fork exits.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		w.Close()
		return os.NewSyscallError("prctl(PR_SET_CHILD_SUBREAPER)", err)
	}
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, podfork.ForwardedSignals...)
	pid, err := podfork.StartJoined(pidfd, namespaces, exe, []string{"kite-stage1", "enter", p.UUID}, podfork.RuntimeEnv(os.Environ()), r)
	if err != nil {
		w.Close()
		return fmt.Errorf("enter pod %s: %w", p.UUID, err)
	}
	r.Close()
	// kite-stage1 enter waits for the plan, so nothing of the command has run yet: it goes into
	// the pod's cgroup first, where the pod has one with limits (rkt's enter left its command
	// outside, CVE-2019-10147). A command that cannot be confined is not started.
	if err := joinPodCgroup(p.Dir, pid); err != nil {
		unix.Kill(pid, unix.SIGKILL)
		waitRelaying(pid, nil)
		w.Close()
		return fmt.Errorf("enter pod %s: %w", p.UUID, err)
	}
	// w stays open until this process ends: kite-stage1 enter reads end-of-file then, and kills
	// the command.
	_, werr := w.Write(doc)
	status, err := waitRelaying(pid, sigs)
	if err != nil {
		return err
	}
	if werr != nil {
		return fmt.Errorf("enter pod %s: send the plan: %w", p.UUID, werr)
	}
	if status != 0 {
		return &exitcode.CodedError{Code: status, Err: errSilent}
	}
	return nil
}

// joinPodCgroup moves pid into the cgroup the pod directory names (poddir.CgroupFile), if any:
// kite makes one only for a pod with --memory, --cpu or --pids-limit.
func joinPodCgroup(podDir string, pid int) error {
	dir, err := poddir.PodCgroup(podDir)
	if err != nil {
		return fmt.Errorf("find the pod's cgroup: %w", err)
	}
	if dir == "" {
		return nil
	}
	if err := podcgroup.Add(dir, pid); err != nil {
		return fmt.Errorf("confine the command to the pod's cgroup and its limits: %w", err)
	}
	return nil
}

// waitRelaying waits for pid, relaying signals to it, and returns its exit status as a shell
// sees it.
func waitRelaying(pid int, sigs <-chan os.Signal) (int, error) {
	done := make(chan unix.WaitStatus, 1)
	errc := make(chan error, 1)
	go func() {
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(pid, &ws, 0, nil)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				errc <- err
				return
			}
			done <- ws
			return
		}
	}()
	for {
		select {
		case sig := <-sigs:
			unix.Kill(pid, sig.(unix.Signal))
		case ws := <-done:
			return exitcode.FromWaitStatus(syscall.WaitStatus(ws)), nil
		case err := <-errc:
			return 0, fmt.Errorf("wait for the entered command: %w", err)
		}
	}
}
