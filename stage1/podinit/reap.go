package podinit

import (
	"errors"
	"os"
	"time"

	"github.com/kite-runtime/kite/pkg/poddir"
	"golang.org/x/sys/unix"
)

// stopTimeout is how long apps that must stop (the pod's exit policy says it ends) get between
// SIGTERM and SIGKILL.
const stopTimeout = 10 * time.Second

// reapApps waits until the pod ends as its exit policy says, reaping every child on the way and
// relaying signals to the apps that run, and returns the pod's wait status:
//
//	all          the pod ends when every app has; its status is the first failing app's, or 0
//	any          it ends as soon as one app has, with that app's status
//	any-failure  it ends when every app has, or as soon as one fails, with that app's status
//
// When the pod ends before every app has, the others get SIGTERM, and SIGKILL after stopTimeout.
// With a terminal, a SIGWINCH resizes it instead of reaching the apps: the kernel signals its
// app then.
func reapApps(apps []*runningApp, policy string, sigs <-chan os.Signal, term *terminal) unix.WaitStatus {
	byPid := map[int]*runningApp{}
	for _, a := range apps {
		byPid[a.pid] = a
	}
	left := len(apps)
	var decided *runningApp
	var kill <-chan time.Time
	signalLeft := func(sig unix.Signal) {
		for _, a := range apps {
			if !a.ended {
				unix.Kill(a.pid, sig)
			}
		}
	}
	for left > 0 {
		select {
		case <-kill:
			signalLeft(unix.SIGKILL)
		case sig := <-sigs:
			if sig == unix.SIGWINCH && term != nil {
				term.resize()
				continue
			}
			if sig != unix.SIGCHLD {
				signalLeft(sig.(unix.Signal))
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
				a := byPid[pid]
				if a == nil {
					continue // an orphan the init reaps for the pod
				}
				a.ended, a.status = true, ws
				left--
				failed := !ws.Exited() || ws.ExitStatus() != 0
				if decided == nil && (failed || policy == poddir.ExitAny) {
					decided = a
					if left > 0 && policy != poddir.ExitAll {
						signalLeft(unix.SIGTERM)
						kill = time.After(stopTimeout)
					}
				}
			}
		}
	}
	if decided == nil {
		return 0
	}
	return decided.status
}
