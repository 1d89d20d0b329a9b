package podfork

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// StartJoined starts exe (kite-stage1) inside a running pod's namespaces, for kite enter. A Go
// program cannot join them itself: a user namespace takes a single-threaded process, and after
// joining a pid namespace a process can no longer create threads. So a raw fork joins the
// namespaces of the process pidfd refers to (the pod's init) with one setns(2), user namespace
// first, then forks again: that second child is in the pod's pid namespace from its start. The
// first reports the second's PID and exits, so the caller, which must be a child subreaper
// (PR_SET_CHILD_SUBREAPER), becomes the second's parent. The second moves plan to descriptor 3
// and execs exe through its descriptor, since the pod's mount namespace does not have it.
// Descriptors 0, 1, 2 and 3 are all it keeps. It returns the second child's PID.
func StartJoined(pidfd int, namespaces uintptr, exe *os.File, argv, env []string, plan *os.File) (int, error) {
	argvp, envp, err := execArgs(argv, env)
	if err != nil {
		return 0, err
	}
	empty := []byte{0}
	c := joinChild{
		pidfd: uintptr(pidfd), namespaces: namespaces, exe: exe.Fd(), plan: plan.Fd(),
		path: uintptr(unsafe.Pointer(&empty[0])), argv: uintptr(unsafe.Pointer(&argvp[0])), env: uintptr(unsafe.Pointer(&envp[0])),
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return 0, fmt.Errorf("enter the pod: %w", os.NewSyscallError("pipe2", err))
	}
	c.report = uintptr(p[1])
	first, errno := forkBlocked(func() (int, syscall.Errno) { return forkJoin(&c) })
	unix.Close(p[1])
	runtime.KeepAlive(argvp)
	runtime.KeepAlive(envp)
	runtime.KeepAlive(empty)
	runtime.KeepAlive(exe)
	runtime.KeepAlive(plan)
	defer unix.Close(p[0])
	if errno != 0 {
		return 0, fmt.Errorf("enter the pod: %w", os.NewSyscallError("clone", errno))
	}
	waitFor(first)
	// The report closes once the second child has exec'd (or both have exited). The first child
	// writes the second's PID, a child that fails writes the step and errno, in either order.
	second := 0
	var failed *[2]uint32
	for {
		var msg [2]uint32
		n, err := readFull(p[0], (*[8]byte)(unsafe.Pointer(&msg[0]))[:])
		if n == 0 && err == nil {
			break
		}
		if err != nil || n != 8 {
			return 0, fmt.Errorf("enter the pod: read the start report: %d bytes, %v", n, err)
		}
		if msg[0] == stepForked {
			second = int(msg[1])
		} else {
			failed = &msg
		}
	}
	if failed == nil && second != 0 {
		return second, nil
	}
	if second != 0 {
		waitFor(second)
	}
	if failed == nil {
		return 0, errors.New("enter the pod: its start report is empty")
	}
	if failed[0] == stepExec {
		return 0, &ExecError{Errno: syscall.Errno(failed[1])}
	}
	return 0, fmt.Errorf("enter the pod: %s: %w", stepNames[failed[0]], syscall.Errno(failed[1]))
}

func waitFor(pid int) {
	var ws unix.WaitStatus
	for {
		if _, err := unix.Wait4(pid, &ws, 0, nil); !errors.Is(err, unix.EINTR) {
			return
		}
	}
}

type joinChild struct {
	pidfd, namespaces, exe, plan uintptr
	path, argv, env              uintptr
	report                       uintptr
}

// forkJoin is the fork. In the children it never returns.
//
//go:nosplit
//go:norace
func forkJoin(c *joinChild) (int, syscall.Errno) {
	r, _, e := syscall.RawSyscall6(syscall.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
	if e != 0 || r != 0 {
		return int(r), e
	}
	// The first child.
	var msg [2]uint32
	if _, _, e = syscall.RawSyscall(unix.SYS_SETNS, c.pidfd, c.namespaces, 0); e != 0 {
		msg = [2]uint32{stepJoin, uint32(e)}
		goto report
	}
	r, _, e = syscall.RawSyscall6(syscall.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
	if e != 0 {
		msg = [2]uint32{stepJoin, uint32(e)}
		goto report
	}
	if r != 0 {
		msg = [2]uint32{stepForked, uint32(r)}
		goto report
	}
	// The second child, in the pod's pid namespace.
	if c.plan == 3 {
		_, _, e = syscall.RawSyscall(syscall.SYS_FCNTL, 3, syscall.F_SETFD, 0)
	} else {
		_, _, e = syscall.RawSyscall(syscall.SYS_DUP3, c.plan, 3, 0)
	}
	if e != 0 {
		msg = [2]uint32{stepDescriptors, uint32(e)}
		goto report
	}
	resetSignals()
	_, _, e = syscall.RawSyscall6(unix.SYS_EXECVEAT, c.exe, c.path, c.argv, c.env, unix.AT_EMPTY_PATH, 0)
	msg = [2]uint32{stepExec, uint32(e)}
report:
	syscall.RawSyscall(syscall.SYS_WRITE, c.report, uintptr(unsafe.Pointer(&msg[0])), 8)
	for {
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 125, 0, 0)
	}
}
