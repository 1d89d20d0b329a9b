package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/kite-runtime/kite/pkg/exitcode"
	"github.com/kite-runtime/kite/stage0/datadir"
	"github.com/kite-runtime/kite/stage0/pods"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

func stopCommand() *cli.Command {
	return &cli.Command{
		Name:      "stop",
		Usage:     "stop running pods",
		ArgsUsage: "POD...",
		Description: podRefHelp + `

Sends SIGTERM to the pod's app and waits for the pod to end; after --timeout
it sends SIGKILL. --force sends SIGKILL at once. The pod's kite run then exits
with the app's status (143 for SIGTERM, 137 for SIGKILL, unless the app chose
its own). Prints each stopped pod's UUID; a pod that is not running is left
as it is, with a note on stderr.`,
		Flags: append(uuidFileFlags(),
			&cli.BoolFlag{Name: "force", Usage: "send SIGKILL at once"},
			&cli.DurationFlag{Name: "timeout", Value: 10 * time.Second, Usage: "wait this `LONG` after SIGTERM before SIGKILL"},
		),
		OnUsageError: usageError,
		Action:       stopAction,
	}
}

func stopAction(c *cli.Context) error {
	refs, err := podRefs(c)
	if err != nil {
		return err
	}
	d, err := dataDir(c)
	if err != nil {
		return err
	}
	failed := false
	for _, ref := range refs {
		p, err := pods.Find(d, ref)
		if err == nil {
			err = stopPod(d, p, c.Bool("force"), c.Duration("timeout"))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "kite:", err)
			failed = true
		}
	}
	if failed {
		return &exitcode.CodedError{Code: 1, Err: errSilent}
	}
	return nil
}

func stopPod(d datadir.Dir, p *pods.Pod, force bool, timeout time.Duration) error {
	if p.State == pods.Running && p.Pid == 0 {
		// Still starting: its init's PID is known once the app runs.
		var err error
		if p, err = pods.Wait(d, p, false, timeout); err != nil {
			return err
		}
	}
	if p.State != pods.Running {
		fmt.Fprintf(os.Stderr, "kite: pod %s is %s, not running: nothing to stop\n", p.UUID, p.State)
		return nil
	}
	pidfd, err := unix.PidfdOpen(p.Pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil // it ended meanwhile
	}
	if err != nil {
		return fmt.Errorf("stop pod %s: %w", p.UUID, os.NewSyscallError("pidfd_open", err))
	}
	defer unix.Close(pidfd)
	// The PID is the pod's init for as long as the pod runs: now that the descriptor holds the
	// process, make sure it still does.
	if q, err := pods.Load(d, p.UUID); err != nil || q.State != pods.Running {
		return nil
	}
	signal := func(sig unix.Signal) error {
		err := unix.PidfdSendSignal(pidfd, sig, nil, 0)
		if err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("stop pod %s: send %s: %w", p.UUID, unix.SignalName(sig), err)
		}
		return nil
	}
	if !force {
		if err := signal(unix.SIGTERM); err != nil {
			return err
		}
		_, err := pods.Wait(d, p, true, timeout)
		if err == nil {
			fmt.Println(p.UUID)
			return nil
		}
		if !errors.Is(err, pods.ErrTimeout) {
			return err
		}
		fmt.Fprintf(os.Stderr, "kite: pod %s did not end within %s of SIGTERM: sending SIGKILL\n", p.UUID, timeout)
	}
	if err := signal(unix.SIGKILL); err != nil {
		return err
	}
	if _, err := pods.Wait(d, p, true, 0); err != nil {
		return err
	}
	fmt.Println(p.UUID)
	return nil
}
