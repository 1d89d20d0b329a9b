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

// App is how the pod's init starts the app.
type App struct {
	Path      string
	Args, Env []string
	Dir       string
	UID, GID  uint32
	Groups    []uint32
	// KeepGroups leaves the supplementary groups as they are, where setgroups(2) is denied.
	KeepGroups bool
	// Terminal, when not nil, becomes the app's controlling terminal and its descriptors 0, 1, 2.
	Terminal *os.File
	// FDs is how many descriptors, from 0, the app keeps: 3 plus the preserved ones.
	FDs int
	// Filter is a seccomp BPF program (struct sock_filter[]) to load, or nil. It is loaded last,
	// just before the exec, unless FilterFirst: an app that setuid(2) takes to a non-zero uid
	// loses the CAP_SYS_ADMIN loading needs, so without no_new_privs it must be loaded first.
	Filter      []byte
	FilterFirst bool
	// DieWithParent has the kernel kill the app when the process that started it ends.
	DieWithParent bool
}

// Steps of the app's start, reported by the child when one fails.
const (
	stepSession = iota + 1
	stepTerminal
	stepDescriptors
	stepFilter
	stepGroups
	stepGID
	stepUID
	stepDir
	stepExec
	stepJoin
	stepForked // not a failure: kite enter's first child reports its second's PID
)

var stepNames = map[uint32]string{
	stepSession: "start a session", stepTerminal: "make the terminal the app's",
	stepDescriptors: "pass descriptors", stepFilter: "load the seccomp filter",
	stepGroups: "set supplementary groups", stepGID: "set the group id", stepUID: "set the user id",
	stepDir: "enter the working directory", stepJoin: "join the pod's namespaces",
}

// ExecError is a failure of the exec itself, which decides the exit status (126 or 127).
type ExecError struct{ Errno syscall.Errno }

func (e *ExecError) Error() string { return e.Errno.Error() }
func (e *ExecError) Unwrap() error { return e.Errno }

// StartApp starts the app as a raw fork, like Start: a fork runs nothing but system calls until
// it execs. syscall.ForkExec cannot load a seccomp filter between the fork and the exec, and the
// filter must come last (after the ids change, so that the calls the change needs need not be
// allowed). The child: starts a session (without a terminal of its own, the app cannot inject
// input into the caller's through TIOCSTI, CVE-2017-5226), takes the terminal, keeps descriptors
// 0 to FDs-1, sets its groups, gid and uid, enters Dir, resets its signals, loads the filter and
// execs. Call it on the thread whose capabilities, bounding set and no_new_privs the app is to
// inherit.
func StartApp(a *App) (int, error) {
	path, err := syscall.BytePtrFromString(a.Path)
	if err != nil {
		return 0, err
	}
	argv, err := syscall.SlicePtrFromStrings(a.Args)
	if err != nil {
		return 0, err
	}
	env, err := syscall.SlicePtrFromStrings(a.Env)
	if err != nil {
		return 0, err
	}
	dir, err := syscall.BytePtrFromString(a.Dir)
	if err != nil {
		return 0, err
	}
	c := appChild{
		path: uintptr(unsafe.Pointer(path)), argv: uintptr(unsafe.Pointer(&argv[0])),
		env: uintptr(unsafe.Pointer(&env[0])), dir: uintptr(unsafe.Pointer(dir)),
		uid: uintptr(a.UID), gid: uintptr(a.GID), ngroups: uintptr(len(a.Groups)),
		setGroups: !a.KeepGroups, fds: a.FDs, terminal: -1, filterFirst: a.FilterFirst, dieWithParent: a.DieWithParent,
	}
	if len(a.Groups) > 0 {
		c.groups = uintptr(unsafe.Pointer(&a.Groups[0]))
	}
	if a.Terminal != nil {
		c.terminal = int(a.Terminal.Fd())
	}
	var prog unix.SockFprog
	if a.Filter != nil {
		if len(a.Filter) == 0 || len(a.Filter)%8 != 0 || len(a.Filter)/8 > 0xffff {
			return 0, fmt.Errorf("load the seccomp filter: %d bytes are not a BPF program", len(a.Filter))
		}
		prog = unix.SockFprog{Len: uint16(len(a.Filter) / 8), Filter: (*unix.SockFilter)(unsafe.Pointer(&a.Filter[0]))}
		c.filter = uintptr(unsafe.Pointer(&prog))
	}
	pid, err := forkReporting("start the app", func(report uintptr) (int, syscall.Errno) {
		c.report = report
		return forkApp(&c)
	})
	runtime.KeepAlive(path)
	runtime.KeepAlive(argv)
	runtime.KeepAlive(env)
	runtime.KeepAlive(dir)
	runtime.KeepAlive(a)
	runtime.KeepAlive(&prog)
	return pid, err
}

// forkReporting runs fork, which clones a raw child that writes the number of the step that
// failed and its errno to the report descriptor, or execs, which closes it. It returns the
// child's PID once it has exec'd; a child that failed is reaped, and its failure returned: an
// *ExecError for the exec itself.
func forkReporting(what string, fork func(report uintptr) (int, syscall.Errno)) (int, error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return 0, fmt.Errorf("%s: %w", what, os.NewSyscallError("pipe2", err))
	}
	pid, errno := forkBlocked(func() (int, syscall.Errno) { return fork(uintptr(p[1])) })
	unix.Close(p[1])
	defer unix.Close(p[0])
	if errno != 0 {
		return 0, fmt.Errorf("%s: %w", what, os.NewSyscallError("clone", errno))
	}
	var msg [8]byte
	n, err := readFull(p[0], msg[:])
	if n == 0 && err == nil {
		return pid, nil
	}
	var ws unix.WaitStatus
	for {
		if _, werr := unix.Wait4(pid, &ws, 0, nil); !errors.Is(werr, unix.EINTR) {
			break
		}
	}
	if err != nil || n != len(msg) {
		return 0, fmt.Errorf("%s: read its start report: %d bytes, %v", what, n, err)
	}
	step := *(*uint32)(unsafe.Pointer(&msg[0]))
	e := syscall.Errno(*(*uint32)(unsafe.Pointer(&msg[4])))
	if step == stepExec {
		return 0, &ExecError{Errno: e}
	}
	return 0, fmt.Errorf("%s: %s: %w", what, stepNames[step], e)
}

func readFull(fd int, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := unix.Read(fd, b[n:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return n, nil
}

type appChild struct {
	path, argv, env, dir uintptr
	uid, gid             uintptr
	groups, ngroups      uintptr
	setGroups            bool
	terminal             int
	fds                  int
	filter               uintptr
	filterFirst          bool
	dieWithParent        bool
	report               uintptr
}

// forkApp is the fork. In the child it never returns.
//
//go:nosplit
//go:norace
func forkApp(c *appChild) (int, syscall.Errno) {
	r, _, e := syscall.RawSyscall6(syscall.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
	if e != 0 || r != 0 {
		return int(r), e
	}
	// The child: raw system calls only, from here to the exec.
	var step uint32
	if _, _, e = syscall.RawSyscall(syscall.SYS_SETSID, 0, 0, 0); e != 0 {
		step = stepSession
		goto fail
	}
	if c.terminal >= 0 {
		for fd := uintptr(0); fd < 3; fd++ {
			if _, _, e = syscall.RawSyscall(syscall.SYS_DUP3, uintptr(c.terminal), fd, 0); e != 0 {
				step = stepTerminal
				goto fail
			}
		}
		if _, _, e = syscall.RawSyscall(syscall.SYS_IOCTL, 0, uintptr(syscall.TIOCSCTTY), 0); e != 0 {
			step = stepTerminal
			goto fail
		}
	}
	for fd := 0; fd < c.fds; fd++ {
		if _, _, e = syscall.RawSyscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_SETFD, 0); e != 0 {
			step = stepDescriptors
			goto fail
		}
	}
	if c.filter != 0 && c.filterFirst {
		if _, _, e = syscall.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, c.filter); e != 0 {
			step = stepFilter
			goto fail
		}
	}
	if c.setGroups {
		if _, _, e = syscall.RawSyscall(syscall.SYS_SETGROUPS, c.ngroups, c.groups, 0); e != 0 {
			step = stepGroups
			goto fail
		}
	}
	if _, _, e = syscall.RawSyscall(syscall.SYS_SETGID, c.gid, 0, 0); e != 0 {
		step = stepGID
		goto fail
	}
	if _, _, e = syscall.RawSyscall(syscall.SYS_SETUID, c.uid, 0, 0); e != 0 {
		step = stepUID
		goto fail
	}
	if _, _, e = syscall.RawSyscall(syscall.SYS_CHDIR, c.dir, 0, 0); e != 0 {
		step = stepDir
		goto fail
	}
	// After setuid(2), which clears it.
	if c.dieWithParent {
		syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0, 0)
	}
	resetSignals()
	if c.filter != 0 && !c.filterFirst {
		if _, _, e = syscall.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, c.filter); e != 0 {
			step = stepFilter
			goto fail
		}
	}
	_, _, e = syscall.RawSyscall(syscall.SYS_EXECVE, c.path, c.argv, c.env)
	step = stepExec
fail:
	msg := [2]uint32{step, uint32(e)}
	syscall.RawSyscall(syscall.SYS_WRITE, c.report, uintptr(unsafe.Pointer(&msg[0])), 8)
	for {
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 125, 0, 0)
	}
}
