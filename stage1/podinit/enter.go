package podinit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/kite-runtime/kite/pkg/exitcode"
	"github.com/kite-runtime/kite/pkg/poddir"
	"github.com/kite-runtime/kite/pkg/podfork"
	"github.com/kite-runtime/kite/stage1/rootfs"
	"github.com/moby/sys/capability"
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
	// The command keeps kite enter's oom_score_adj: this process, outside the pod until now,
	// cannot tell whether the app's is below it.
	p.OOMScoreAdj = nil
	ids := procView{uids: plan.UIDMappings, gids: plan.GIDMappings, setgroupsDenied: plan.SetgroupsDenied, lastCap: capability.Cap(plan.LastCap)}
	app, err := prepareApp(p, "/"+filepath.Join(rootfs.AppsDir, plan.App), plan.SeccompFilter, ids, 3)
	if err != nil {
		return exitcode.Failed, err
	}
	app.DieWithParent = true
	if err := podfork.CloseExtraFDs(3); err != nil {
		return exitcode.Failed, err
	}
	pid, err := startApp(app, p.Args[0])
	if err != nil {
		return exitcode.Failed, err
	}
	go func() {
		<-callerGone
		unix.Kill(pid, unix.SIGKILL)
	}()
	running := []*runningApp{{name: plan.App, pid: pid}}
	return exitcode.FromWaitStatus(syscall.WaitStatus(reapApps(running, poddir.ExitAll, sigs, nil))), nil
}
