package pods

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/kite-runtime/kite/stage0/datadir"
	"golang.org/x/sys/unix"
)

// ErrTimeout means a wait ended before what it waited for happened.
var ErrTimeout = errors.New("timed out")

// pollInterval is how often Wait looks at a pod that has not started yet.
const pollInterval = 20 * time.Millisecond

// Wait waits until pod p has ended (untilExit) or until its app runs, for at most timeout (0: no
// limit), and returns the pod as it is then. A running pod's end is waited for on its lock, which
// the kernel releases when the monitor exits; until the pod runs, Wait looks every 20 ms.
func Wait(d datadir.Dir, p *Pod, untilExit bool, timeout time.Duration) (*Pod, error) {
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	what := "run"
	if untilExit {
		what = "end"
	}
	for {
		q, err := Load(d, p.UUID)
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("pod %s was removed while kite waited for it to %s", p.UUID, what)
		}
		if err != nil {
			return nil, err
		}
		switch q.State {
		case Exited, ExitedGarbage, Garbage, Aborted:
			return q, nil
		case Running:
			if !untilExit && q.Pid != 0 {
				return q, nil
			}
			if untilExit {
				if err := waitUnlocked(q.Dir, deadline); err != nil {
					return nil, fmt.Errorf("pod %s did not %s within %s: %w", p.UUID, what, timeout, err)
				}
				continue
			}
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			return nil, fmt.Errorf("pod %s did not %s within %s: %w", p.UUID, what, timeout, ErrTimeout)
		}
		time.Sleep(pollInterval)
	}
}

// waitUnlocked blocks until no process holds the exclusive lock of dir, or until deadline (zero:
// none) with ErrTimeout.
func waitUnlocked(dir string, deadline time.Time) error {
	f, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil // moved: the caller looks again
	}
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		err := unix.Flock(int(f.Fd()), unix.LOCK_SH)
		for errors.Is(err, unix.EINTR) {
			err = unix.Flock(int(f.Fd()), unix.LOCK_SH)
		}
		f.Close()
		done <- err
	}()
	var timer <-chan time.Time
	if !deadline.IsZero() {
		timer = time.After(time.Until(deadline))
	}
	select {
	case err := <-done:
		return err
	case <-timer:
		// The blocked flock keeps its goroutine and descriptor until the process ends.
		return ErrTimeout
	}
}
