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

	"golang.org/x/sys/unix"
)

// App is how the pod's init starts an app, and kite-stage1 enter a command.
type App struct {
	Path string
	// Env's LISTEN_PID, if it has one, is set to the app's own pid (socket activation).
	Args, Env []string
	Dir       string
	// Root, when set, is the app's root filesystem as the starting process sees it: the child
	// moves into a mount namespace of its own and pivots into it, so that each app of a pod has
	// its own root. Its mounts are recursive slaves then, unless RootPropagation gives other
	// mount(2) propagation flags.
	Root            string
	RootPropagation uintptr
	// Rlimits are set with prlimit(2); OOMScoreAdj, when set, is written to oom_score_adj.
	Rlimits     []Rlimit
	OOMScoreAdj *int
	// DropBounding lists the capabilities to drop from the bounding set.
	DropBounding []uintptr
	// Inheritable is the app's inheritable set, as a mask of capability numbers, and Ambient its
	// ambient capabilities: empty unless config.json names them (kite run never does; an OCI
	// bundle may).
	Inheritable uint64
	Ambient     []uintptr
	// NoNewPrivs sets no_new_privs.
	NoNewPrivs bool
	UID, GID   uint32
	Groups     []uint32
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

// listenPIDPrefix starts the LISTEN_PID variable of socket activation (sd_listen_fds(3)).
const listenPIDPrefix = "LISTEN_PID="

// Rlimit is one resource limit (RLIMIT_NOFILE...).
type Rlimit struct {
	Resource int
	Limit    unix.Rlimit
}

// Steps of the app's start, reported by the child when one fails.
const (
	stepRoot = iota + 1
	stepLimits
	stepCapabilities
	stepSession
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
	stepStage1
	stepDirOutside
)

// ErrStage1 is what the child reports when the app's command is its own binary, kite-stage1.
var ErrStage1 = errors.New("it is kite's own stage1 binary, which never runs as an app (CVE-2019-5736)")

var stepNames = map[uint32]string{
	stepRoot: "enter the app's root filesystem", stepLimits: "set resource limits",
	stepCapabilities: "limit capabilities", stepSession: "start a session", stepTerminal: "make the terminal the app's",
	stepDescriptors: "pass descriptors", stepFilter: "load the seccomp filter",
	stepGroups: "set supplementary groups", stepGID: "set the group id", stepUID: "set the user id",
	stepDir: "enter the working directory", stepJoin: "join the pod's namespaces", stepStage1: "check the command",
	stepDirOutside: "enter the working directory, which is outside the app's root filesystem (CVE-2024-21626)",
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
	argv, env, err := execArgs(a.Args, a.Env)
	if err != nil {
		return 0, err
	}
	// LISTEN_PID (socket activation) names the process the descriptors are for: the child sets
	// it to its own pid, in its own pid namespace, in a buffer of its own.
	var listenPID *[32]byte
	for i, kv := range a.Env {
		if strings.HasPrefix(kv, listenPIDPrefix) {
			listenPID = new([32]byte)
			copy(listenPID[:], listenPIDPrefix)
			env[i] = &listenPID[0]
		}
	}
	dir, err := syscall.BytePtrFromString(a.Dir)
	if err != nil {
		return 0, err
	}
	c := appChild{
		listenPID: listenPID,
		path:      uintptr(unsafe.Pointer(path)), argv: uintptr(unsafe.Pointer(&argv[0])),
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
	var root, dot, slash, procOOM, oom []byte
	if a.Root != "" {
		if root, err = syscall.ByteSliceFromString(a.Root); err != nil {
			return 0, err
		}
		dot, slash = []byte(".\x00"), []byte("/\x00")
		c.root, c.dot, c.slash = uintptr(unsafe.Pointer(&root[0])), uintptr(unsafe.Pointer(&dot[0])), uintptr(unsafe.Pointer(&slash[0]))
	}
	c.propagation = a.RootPropagation
	c.rlimits = a.Rlimits
	if a.OOMScoreAdj != nil {
		procOOM = []byte("/proc/self/oom_score_adj\x00")
		oom = []byte(strconv.Itoa(*a.OOMScoreAdj))
		c.oomPath, c.oom, c.noom = uintptr(unsafe.Pointer(&procOOM[0])), uintptr(unsafe.Pointer(&oom[0])), uintptr(len(oom))
	}
	c.drop = a.DropBounding
	c.noNewPrivs = a.NoNewPrivs
	// The child compares what its exec would run with its own binary, kite-stage1, as the exec
	// will see them: in the app's root, through the app's /proc (an image whose command is, or
	// links to, /proc/self/exe would run kite-stage1 inside the pod: CVE-2019-5736).
	selfExe := []byte("/proc/self/exe\x00")
	stats := new([2]unix.Statx_t)
	c.selfExe, c.stats = uintptr(unsafe.Pointer(&selfExe[0])), stats
	cwd := new([unix.PathMax]byte)
	c.cwd = cwd
	// The child keeps the permitted and effective sets it inherits and sets the inheritable
	// one: capset(2) with the data capget(2) gives here, inheritable replaced.
	capHeader := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var capData [2]unix.CapUserData
	if err := unix.Capget(&capHeader, &capData[0]); err != nil {
		return 0, fmt.Errorf("start the app: %w", os.NewSyscallError("capget", err))
	}
	capData[0].Inheritable, capData[1].Inheritable = uint32(a.Inheritable), uint32(a.Inheritable>>32)
	c.ambient = a.Ambient
	c.capHeader, c.capData = uintptr(unsafe.Pointer(&capHeader)), uintptr(unsafe.Pointer(&capData[0]))
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
	runtime.KeepAlive(root)
	runtime.KeepAlive(dot)
	runtime.KeepAlive(slash)
	runtime.KeepAlive(procOOM)
	runtime.KeepAlive(oom)
	runtime.KeepAlive(&capHeader)
	runtime.KeepAlive(&capData)
	runtime.KeepAlive(selfExe)
	runtime.KeepAlive(stats)
	runtime.KeepAlive(cwd)
	runtime.KeepAlive(listenPID)
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
	if step == stepStage1 {
		return 0, ErrStage1
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
	root, dot, slash     uintptr
	propagation          uintptr
	rlimits              []Rlimit
	oomPath, oom, noom   uintptr
	drop, ambient        []uintptr
	noNewPrivs           bool
	capHeader, capData   uintptr
	selfExe              uintptr
	stats                *[2]unix.Statx_t
	cwd                  *[unix.PathMax]byte
	listenPID            *[32]byte
	report               uintptr
}

// sameFile reports whether paths a and b (C strings) lead to the same file, with statx(2) into
// the two buffers of sa; false when either cannot be reached.
//
//go:nosplit
//go:norace
func sameFile(a, b uintptr, sa *[2]unix.Statx_t) bool {
	cwd := unix.AT_FDCWD
	for i, p := range [2]uintptr{a, b} {
		if _, _, e := syscall.RawSyscall6(unix.SYS_STATX, uintptr(cwd), p, 0, unix.STATX_INO, uintptr(unsafe.Pointer(&sa[i])), 0); e != 0 {
			return false
		}
	}
	return sa[0].Ino == sa[1].Ino && sa[0].Dev_major == sa[1].Dev_major && sa[0].Dev_minor == sa[1].Dev_minor
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
	if c.root != 0 {
		// A mount namespace of the app's own, which receives nothing from the init's and sends
		// nothing back, with the app's root filesystem as its root (pivot_root(".", ".") stacks
		// the old root on the new one, to be detached at once).
		step = stepRoot
		if _, _, e = syscall.RawSyscall(syscall.SYS_UNSHARE, unix.CLONE_NEWNS, 0, 0); e != 0 {
			goto fail
		}
		if _, _, e = syscall.RawSyscall6(syscall.SYS_MOUNT, 0, c.slash, 0, unix.MS_REC|unix.MS_SLAVE, 0, 0); e != 0 {
			goto fail
		}
		if _, _, e = syscall.RawSyscall(syscall.SYS_CHDIR, c.root, 0, 0); e != 0 {
			goto fail
		}
		if _, _, e = syscall.RawSyscall(syscall.SYS_PIVOT_ROOT, c.dot, c.dot, 0); e != 0 {
			goto fail
		}
		if _, _, e = syscall.RawSyscall(syscall.SYS_UMOUNT2, c.dot, unix.MNT_DETACH, 0); e != 0 {
			goto fail
		}
		if c.propagation != 0 {
			if _, _, e = syscall.RawSyscall6(syscall.SYS_MOUNT, 0, c.slash, 0, c.propagation, 0, 0); e != 0 {
				goto fail
			}
		}
	}
	step = stepLimits
	for i := range c.rlimits {
		r := &c.rlimits[i]
		if _, _, e = syscall.RawSyscall6(unix.SYS_PRLIMIT64, 0, uintptr(r.Resource), uintptr(unsafe.Pointer(&r.Limit)), 0, 0, 0); e != 0 {
			goto fail
		}
	}
	if c.oomPath != 0 {
		var fd uintptr
		if fd, _, e = syscall.RawSyscall(syscall.SYS_OPEN, c.oomPath, syscall.O_WRONLY|syscall.O_CLOEXEC, 0); e != 0 {
			goto fail
		}
		_, _, e = syscall.RawSyscall(syscall.SYS_WRITE, fd, c.oom, c.noom)
		syscall.RawSyscall(syscall.SYS_CLOSE, fd, 0, 0)
		if e != 0 {
			goto fail
		}
	}
	step = stepCapabilities
	for _, cp := range c.drop {
		if _, _, e = syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_CAPBSET_DROP, cp, 0, 0, 0, 0); e != 0 {
			goto fail
		}
	}
	if _, _, e = syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, 0); e != 0 {
		goto fail
	}
	if _, _, e = syscall.RawSyscall(syscall.SYS_CAPSET, c.capHeader, c.capData, 0); e != 0 {
		goto fail
	}
	if c.noNewPrivs {
		if _, _, e = syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0); e != 0 {
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
	if len(c.ambient) > 0 && c.uid != 0 {
		// Leaving uid 0 empties the permitted set, which the ambient capabilities must stay in,
		// unless the thread keeps it.
		if _, _, e = syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_SET_KEEPCAPS, 1, 0, 0, 0, 0); e != 0 {
			step = stepCapabilities
			goto fail
		}
	}
	if _, _, e = syscall.RawSyscall(syscall.SYS_SETUID, c.uid, 0, 0); e != 0 {
		step = stepUID
		goto fail
	}
	if len(c.ambient) > 0 {
		// Leaving uid 0 emptied the effective and ambient sets: restore the effective one, which
		// the kept permitted set still allows, then raise the ambient capabilities, which the
		// exec turns into the app's permitted and effective sets.
		step = stepCapabilities
		if _, _, e = syscall.RawSyscall(syscall.SYS_CAPSET, c.capHeader, c.capData, 0); e != 0 {
			goto fail
		}
		for _, cp := range c.ambient {
			if _, _, e = syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, cp, 0, 0, 0); e != 0 {
				goto fail
			}
		}
	}
	if _, _, e = syscall.RawSyscall(syscall.SYS_CHDIR, c.dir, 0, 0); e != 0 {
		step = stepDir
		goto fail
	}
	// A working directory such as /proc/self/fd/N follows a descriptor this process still
	// holds to wherever it leads, outside the root too; getcwd(2) then answers with
	// "(unreachable)" instead of a path (CVE-2024-21626).
	if _, _, e = syscall.RawSyscall(syscall.SYS_GETCWD, uintptr(unsafe.Pointer(&c.cwd[0])), uintptr(len(c.cwd)), 0); e == 0 && c.cwd[0] != '/' {
		step, e = stepDirOutside, unix.EACCES
		goto fail
	}
	if sameFile(c.path, c.selfExe, c.stats) {
		step, e = stepStage1, unix.EPERM
		goto fail
	}
	// After setuid(2), which clears it.
	if c.dieWithParent {
		syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0, 0)
	}
	if c.listenPID != nil {
		pid, _, _ := syscall.RawSyscall(syscall.SYS_GETPID, 0, 0, 0)
		var digits [20]byte
		n := 0
		for v := pid; ; v /= 10 {
			digits[n] = byte('0' + v%10)
			n++
			if v < 10 {
				break
			}
		}
		for i := 0; i < n; i++ {
			c.listenPID[len(listenPIDPrefix)+i] = digits[n-1-i]
		}
		c.listenPID[len(listenPIDPrefix)+n] = 0
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
