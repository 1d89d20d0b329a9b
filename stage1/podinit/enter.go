package podinit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/kite-runtime/kite/pkg/exitcode"
	"github.com/kite-runtime/kite/pkg/poddir"
	"github.com/kite-runtime/kite/pkg/podfork"
	"golang.org/x/sys/unix"
)

// Enter runs kite enter's command in the pod whose namespaces this process joined, restricted as
// the pod's app is (its bounding set, no_new_privs, user, groups, environment, working directory
// and seccomp filter: rkt's enter gave full capabilities and no filter, CVE-2019-10144/10145/10147).
// The plan comes on descriptor 3. It relays the caller's signals and returns the command's exit
// status.
func Enter() int {
	code, err := enter()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kite:", err)
		var ce *exitcode.CodedError
		if errors.As(err, &ce) {
			return ce.Code
		}
		return exitcode.Failed
	}
	return code
}

func enter() (int, error) {
	// As in the init: the restrictions are the thread's, and the command inherits them.
	runtime.LockOSThread()
	// Nothing in the pod may ptrace this process, which came from outside it.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return exitcode.Failed, os.NewSyscallError("prctl(PR_SET_DUMPABLE)", err)
	}
	var plan poddir.EnterPlan
	f := os.NewFile(3, "enter plan")
	if err := json.NewDecoder(f).Decode(&plan); err != nil {
		return exitcode.Failed, fmt.Errorf("read the plan of kite enter: %w", err)
	}
	// kite enter keeps its end of the plan's pipe open while it lives: end-of-file means it is
	// gone, and the command goes with it.
	callerGone := make(chan struct{})
	go func() {
		io.Copy(io.Discard, f)
		close(callerGone)
	}()
	p := plan.Process
	if p == nil || len(p.Args) == 0 {
		return exitcode.Failed, errors.New("the plan of kite enter has no command")
	}
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, append(podfork.ForwardedSignals, unix.SIGCHLD)...)
	// oom_score_adj is set through /proc/self, which the pod's /proc does not have for a process
	// outside its pid namespace; the command keeps kite's.
	p.OOMScoreAdj = nil
	if err := restrictApp(p); err != nil {
		return exitcode.Failed, err
	}
	path, err := lookPath(p.Args[0], p.Env)
	if err != nil {
		return exitcode.Failed, err
	}
	app := &podfork.App{Path: path, Args: p.Args, Env: p.Env, Dir: p.Cwd, FDs: 3, Filter: plan.SeccompFilter, DieWithParent: true}
	if app.Dir == "" {
		app.Dir = "/"
	}
	if err := podfork.CloseExtraFDs(3); err != nil {
		return exitcode.Failed, err
	}
	if p.User.Umask != nil {
		unix.Umask(int(*p.User.Umask))
	}
	if err := setIDs(app, p.User, plan.UIDMappings, plan.GIDMappings, plan.SetgroupsDenied); err != nil {
		return exitcode.Failed, err
	}
	app.FilterFirst = !p.NoNewPrivileges && p.User.UID != 0
	pid, err := podfork.StartApp(app)
	if err != nil {
		var ee *podfork.ExecError
		if errors.As(err, &ee) {
			return exitcode.Failed, execError(p.Args[0], ee.Errno, app.Filter != nil)
		}
		return exitcode.Failed, err
	}
	go func() {
		<-callerGone
		unix.Kill(pid, unix.SIGKILL)
	}()
	return exitcode.FromWaitStatus(syscall.WaitStatus(reap(pid, sigs, nil))), nil
}
