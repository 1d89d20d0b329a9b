// Package exitcode owns the exit statuses kite promises to callers: the app's own code, 128+N when
// signal N killed it, and three codes of its own for failures before the app ran.
package exitcode

import "syscall"

const (
	// Failed means kite itself failed before the app started (bad flag, unknown image, setup error).
	Failed = 125
	// NotExecutable means the app was found but could not be executed (permissions, bad format).
	NotExecutable = 126
	// NotFound means the app's executable does not exist in the pod's rootfs.
	NotFound = 127
)

// FromWaitStatus turns a wait(2) status into a shell-style exit status.
func FromWaitStatus(ws syscall.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return Failed
}

// CodedError carries the exit status a failure should end the process with.
type CodedError struct {
	Code int
	Err  error
}

func (e *CodedError) Error() string { return e.Err.Error() }
func (e *CodedError) Unwrap() error { return e.Err }
