// Package podfork owns the two forks kite makes with raw system calls between fork and exec. One
// starts a pod's init: a fork into the pod's new namespaces that waits, before its exec, until its
// uid and gid maps are written; stage0 forks, maps and releases it just before it execs stage1, so
// the fork shares memory copy-on-write with a running process only briefly, and the init's start
// overlaps with the monitor's. The other, StartApp, starts the app from the init.
package podfork

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ForwardedSignals are relayed from the caller to the app: by the monitor and the init to a pod's
// apps, by kite enter to its command. They are every signal from 1 to 31 a process can catch but
// SIGCHLD, which tells the monitor and the init about their own children, and SIGPROF, which the
// Go runtime keeps for its profiler and never hands to a program. kite's processes in the
// pod's path run with GODEBUG=asyncpreemptoff=1 (RuntimeEnv), so that SIGURG comes only from
// outside, never from the Go runtime's own preemption.
var ForwardedSignals = forwardedSignals()

func forwardedSignals() []os.Signal {
	var sigs []os.Signal
	for s := unix.Signal(1); s <= 31; s++ {
		if s != unix.SIGKILL && s != unix.SIGSTOP && s != unix.SIGCHLD && s != unix.SIGPROF {
			sigs = append(sigs, s)
		}
	}
	return sigs
}

// RuntimeEnv is env for kite's Go processes beside a pod (the monitor, the init, kite-stage1
// enter): one scheduler thread, which spares them the idle threads (and their page faults) one per
// CPU would cost on every start, and no asynchronous preemption, whose SIGURG they would relay
// to the app.
func RuntimeEnv(env []string) []string {
	out := make([]string, 0, len(env)+2)
	debug := "asyncpreemptoff=1"
	for _, kv := range env {
		switch {
		case strings.HasPrefix(kv, "GOMAXPROCS="):
		case strings.HasPrefix(kv, "GODEBUG="):
			if v := strings.TrimPrefix(kv, "GODEBUG="); v != "" {
				debug = v + "," + debug
			}
		default:
			out = append(out, kv)
		}
	}
	return append(out, "GOMAXPROCS=1", "GODEBUG="+debug)
}

var nsFlags = map[specs.LinuxNamespaceType]uintptr{
	specs.UserNamespace:    unix.CLONE_NEWUSER,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
}

// CloneFlags translates config.json's namespaces into clone(2) flags. Every pod gets a new user
// namespace. A network or IPC namespace given by path is joined (JoinPaths), not made; joining
// namespaces of other types is not supported.
func CloneFlags(namespaces []specs.LinuxNamespace) (uintptr, error) {
	var flags uintptr
	for _, ns := range namespaces {
		f, ok := nsFlags[ns.Type]
		if !ok {
			return 0, fmt.Errorf("config.json: namespace %q is not supported", ns.Type)
		}
		if ns.Path != "" {
			if !joinable[ns.Type] {
				return 0, fmt.Errorf("config.json: namespace %s at %s: kite joins only network and ipc namespaces by path", ns.Type, ns.Path)
			}
			continue
		}
		flags |= f
	}
	if flags&unix.CLONE_NEWUSER == 0 {
		return 0, errors.New("config.json: kite runs every pod in a user namespace")
	}
	return flags, nil
}

// joinable are the namespaces a pod may join by path: kite makes its user namespace inside the
// caller's, so the pod's processes keep no privilege over the namespaces they join, which only
// suits those whose set-up the caller owns (an engine's network namespace).
var joinable = map[specs.LinuxNamespaceType]bool{specs.NetworkNamespace: true, specs.IPCNamespace: true}

// JoinPaths moves the calling thread, which must be locked to its goroutine and be the one that
// calls Start next, into the namespaces config.json names by path, so that the pod's init is
// forked in them, and sets there the sysctls that belong to them: the pod's init, root of a user
// namespace inside the caller's, has no privilege over them. The returned function moves the
// thread back.
func JoinPaths(namespaces []specs.LinuxNamespace, sysctls map[string]string) (restore func(), err error) {
	var back []*os.File
	restore = func() {
		for i := len(back) - 1; i >= 0; i-- {
			unix.Setns(int(back[i].Fd()), 0)
			back[i].Close()
		}
	}
	for _, ns := range namespaces {
		if ns.Path == "" || !joinable[ns.Type] {
			continue
		}
		name := map[specs.LinuxNamespaceType]string{specs.NetworkNamespace: "net", specs.IPCNamespace: "ipc"}[ns.Type]
		own, err := os.Open("/proc/thread-self/ns/" + name)
		if err != nil {
			restore()
			return nil, err
		}
		target, err := os.Open(ns.Path)
		if err != nil {
			own.Close()
			restore()
			return nil, fmt.Errorf("join the %s namespace: %w", ns.Type, err)
		}
		err = unix.Setns(int(target.Fd()), int(nsFlags[ns.Type]))
		target.Close()
		if err != nil {
			own.Close()
			restore()
			return nil, fmt.Errorf("join the %s namespace at %s: %w", ns.Type, ns.Path, os.NewSyscallError("setns", err))
		}
		back = append(back, own)
		for key, value := range sysctls {
			if SysctlNamespace(key) == ns.Type {
				if err := SetSysctl(key, value); err != nil {
					restore()
					return nil, err
				}
			}
		}
	}
	return restore, nil
}

// CloseExtraFDs marks every descriptor from first on close-on-exec, so that descriptors inherited
// from the caller or opened by kite never reach the pod (CVE-2024-21626 leaked a host directory
// this way). first is 3, or above the descriptors the caller asked to pass to the app.
func CloseExtraFDs(first int) error {
	if err := unix.CloseRange(uint(first), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return nil
	}
	// close_range(2) with CLOSE_RANGE_CLOEXEC needs Linux 5.11; walk /proc/self/fd before that.
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("close inherited descriptors: %w", err)
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd >= first {
			unix.CloseOnExec(fd)
		}
	}
	return nil
}

// Start starts the pod's init in new namespaces. It does not use os/exec: the child must wait,
// before its exec, until its uid and gid maps are written. An exec as uid 0 of the new
// user namespace gives the init its full capability set there (user_namespaces(7),
// "Capabilities"); an exec before the maps exist, as os/exec would do, gives it none and would
// cost a second exec once mapped.
//
// The child is a fork (no CLONE_VM: it gets a copy-on-write copy of the caller's memory) and runs
// nothing but raw system calls until it execs: in the copy, the Go runtime's other threads do not
// exist, so it must not allocate, take locks or grow its stack. Signals stay blocked in it until it
// has reset their dispositions, just before its exec.
//
// The child: starts a session (so terminal signals reach the pod once, through the monitor), sets
// SIGKILL as its parent-death signal, waits for one message on the sync socket (end-of-file means
// its parent is gone), clears close-on-exec on the socket and execs argv[0] with env. The parent
// must call Start from the thread that lives on: the parent-death signal fires when it exits.
//
// With sibling, the child is the caller's sibling rather than its child (CLONE_PARENT), and has
// no parent-death signal: kite oci's container outlives the process that forked it, and the
// caller of kite oci create (an engine's monitor such as conmon) reaps it and gets its status.
//
// peerFd is the caller's end of the sync socket: the child closes its copy, so that it reads
// end-of-file, and exits, should the caller die before it has sent the message, even before the
// parent-death signal was armed (or without one).
func Start(cloneFlags uintptr, argv, env []string, syncFd, peerFd int, sibling bool) (int, error) {
	path, err := syscall.BytePtrFromString(argv[0])
	if err != nil {
		return 0, err
	}
	argvp, envp, err := execArgs(argv, env)
	if err != nil {
		return 0, err
	}
	a := childArgs{
		path: uintptr(unsafe.Pointer(path)),
		argv: uintptr(unsafe.Pointer(&argvp[0])),
		env:  uintptr(unsafe.Pointer(&envp[0])),
		sync: uintptr(syncFd),
		peer: uintptr(peerFd),
	}
	if sibling {
		cloneFlags |= unix.CLONE_PARENT
	} else {
		a.deathSignal = uintptr(unix.SIGKILL)
	}
	pid, errno := forkBlocked(func() (int, syscall.Errno) { return forkInit(cloneFlags|uintptr(unix.SIGCHLD), &a) })
	// The pointers must stay valid until the fork has copied them.
	runtime.KeepAlive(path)
	runtime.KeepAlive(argvp)
	runtime.KeepAlive(envp)
	if errno != 0 {
		return 0, fmt.Errorf("clone the pod's init: %w", os.NewSyscallError("clone", errno))
	}
	return pid, nil
}

type childArgs struct {
	path, argv, env, sync, peer uintptr
	// deathSignal is the child's parent-death signal, 0 for none.
	deathSignal uintptr
}

// execArgs converts argv and env to the NULL-terminated arrays execve(2) takes.
func execArgs(argv, env []string) (argvp, envp []*byte, err error) {
	if argvp, err = syscall.SlicePtrFromStrings(argv); err != nil {
		return nil, nil, err
	}
	if envp, err = syscall.SlicePtrFromStrings(env); err != nil {
		return nil, nil, err
	}
	return argvp, envp, nil
}

// forkBlocked runs fork with every signal blocked, so that none reaches the child's copy of the Go
// handlers before it resets them, and with syscall.ForkLock held, so that other goroutines create
// no inheritable descriptor meanwhile (as syscall.ForkExec does).
func forkBlocked(fork func() (int, syscall.Errno)) (int, syscall.Errno) {
	syscall.ForkLock.Lock()
	defer syscall.ForkLock.Unlock()
	var all, old unix.Sigset_t
	for i := range all.Val {
		all.Val[i] = ^uint64(0)
	}
	unix.PthreadSigmask(unix.SIG_SETMASK, &all, &old)
	defer unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	return fork()
}

// resetSignals puts every signal of a forked child back to its default disposition, then unblocks
// them all. Dispositions first, so that a signal unblocked here can no longer reach the Go
// handlers of the child's copy of its parent.
//
//go:nosplit
//go:norace
func resetSignals() {
	var dfl [4]uint64 // struct sigaction, zero: SIG_DFL, no flags, empty mask
	for sig := uintptr(1); sig <= 64; sig++ {
		syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, sig, uintptr(unsafe.Pointer(&dfl[0])), 0, 8, 0, 0)
	}
	var none uint64
	syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&none)), 0, 8, 0, 0)
}

// forkInit is the fork. In the child it never returns.
//
//go:nosplit
//go:norace
func forkInit(flags uintptr, a *childArgs) (int, syscall.Errno) {
	r, _, e := syscall.RawSyscall6(syscall.SYS_CLONE, flags, 0, 0, 0, 0, 0)
	if e != 0 || r != 0 {
		return int(r), e
	}
	// The child: raw system calls only, from here to the exec.
	syscall.RawSyscall(syscall.SYS_SETSID, 0, 0, 0)
	syscall.RawSyscall(syscall.SYS_CLOSE, a.peer, 0, 0)
	if a.deathSignal != 0 {
		syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_SET_PDEATHSIG, a.deathSignal, 0, 0, 0, 0)
	}
	var buf [128]byte
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, a.sync, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
	if e == 0 && n > 0 {
		// The init starts as a new program should: every signal at its default disposition and
		// none blocked.
		resetSignals()
		syscall.RawSyscall(syscall.SYS_FCNTL, a.sync, syscall.F_SETFD, 0)
		syscall.RawSyscall(syscall.SYS_EXECVE, a.path, a.argv, a.env)
	}
	for {
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 125, 0, 0)
	}
}
