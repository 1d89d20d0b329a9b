package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The commands in this file are the attacker's half of kite's CVE regression tests
// (tests/e2e/cve_*_test.go): each tries what a published container escape did and prints what
// the kernel answered, so the test judges from inside.

// cmdTIOCSTI pushes each byte of text into the input queue of the terminal open on descriptor fd
// with TIOCSTI (CVE-2017-5226), and prints "tiocsti: ok" or "tiocsti: ERRNO" for the first
// failure.
func cmdTIOCSTI(args []string, stdout, stderr io.Writer) int {
	if len(args) != 2 {
		return usageError(stderr, "tiocsti needs a descriptor and a text")
	}
	fd, err := strconv.Atoi(args[0])
	if err != nil {
		return usageError(stderr, fmt.Sprintf("bad descriptor %q", args[0]))
	}
	result := "ok"
	for i := 0; i < len(args[1]); i++ {
		c := args[1][i]
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCSTI, uintptr(unsafe.Pointer(&c)))
		if e != 0 {
			result = unix.ErrnoName(e)
			break
		}
	}
	fmt.Fprintf(stdout, "tiocsti: %s\n", result)
	return exitOK
}

// peek is what `probe watch` got from another process's /proc entries.
type peek struct {
	PID int `json:"pid"`
	// Comm and CommAfter are the process's name read before and after the accesses were
	// tried: an exec changes it, so they tell what the process ran when an access succeeded
	// (both the same) from an exec in between.
	Comm      string `json:"comm"`
	CommAfter string `json:"comm_after"`
	// Exe is /proc/PID/exe's target when it could be read, with what else succeeded.
	Exe string `json:"exe"`
	// Access names what opened: "mem" (/proc/PID/mem for writing, i.e. ptrace-attach access),
	// "environ", "exe" (its target read), "exe-write" (opened for writing), "fd" (listing
	// /proc/PID/fd).
	Access []string `json:"access"`
	// Env is the environment read through /proc/PID/environ.
	Env string `json:"env,omitempty"`
}

// cmdWatch spends the given seconds looking at every other process in /proc, again and again,
// for the moments it can be attached to or read (CVE-2016-9962: a process joining the container
// from outside was ptrace-able while it still held the runtime's descriptors), or until the file
// stop exists when one is named. It prints "ready" once it watches, then a JSON peek line for
// each access that succeeded, once per pid and kind.
func cmdWatch(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 && len(args) != 2 {
		return usageError(stderr, "watch needs a number of seconds and may have a stop file")
	}
	stop := ""
	if len(args) == 2 {
		stop = args[1]
	}
	secs, err := strconv.Atoi(args[0])
	if err != nil || secs <= 0 {
		return usageError(stderr, fmt.Sprintf("bad seconds %q", args[0]))
	}
	self := os.Getpid()
	seen := map[[2]int]bool{}
	var found []peek
	fmt.Fprintln(stdout, "ready")
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	for time.Now().Before(deadline) {
		if stop != "" && unix.Access(stop, unix.F_OK) == nil {
			break
		}
		for _, pid := range pids() {
			if pid == self {
				continue
			}
			p := peekAt(pid, seen)
			if len(p.Access) > 0 {
				found = append(found, p)
			}
		}
	}
	enc := json.NewEncoder(stdout)
	for _, p := range found {
		enc.Encode(p)
	}
	return exitOK
}

// pids lists the numeric entries of /proc.
func pids() []int {
	fd, err := unix.Open("/proc", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	d := os.NewFile(uintptr(fd), "/proc")
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	var out []int
	for _, n := range names {
		if pid, err := strconv.Atoi(n); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// peekAt tries each access to pid that seen does not record yet.
func peekAt(pid int, seen map[[2]int]bool) peek {
	dir := "/proc/" + strconv.Itoa(pid)
	p := peek{PID: pid}
	if b, err := readFile(dir + "/comm"); err == nil {
		p.Comm = string(b)
	}
	try := func(kind int, name string, f func() bool) {
		if !seen[[2]int{pid, kind}] && f() {
			seen[[2]int{pid, kind}] = true
			p.Access = append(p.Access, name)
		}
	}
	try(0, "mem", func() bool {
		fd, err := unix.Open(dir+"/mem", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return false
		}
		unix.Close(fd)
		return true
	})
	try(1, "environ", func() bool {
		b, err := readFile(dir + "/environ")
		if err != nil || len(b) == 0 {
			return false
		}
		p.Env = string(b)
		return true
	})
	try(2, "exe", func() bool {
		buf := make([]byte, 4096)
		n, err := unix.Readlink(dir+"/exe", buf)
		if err != nil {
			return false
		}
		p.Exe = string(buf[:n])
		return true
	})
	// Writing a running program fails with ETXTBSY even where the open is allowed; an open
	// that succeeds has reached a binary no process runs any more, CVE-2019-5736's last step.
	try(4, "exe-write", func() bool {
		fd, err := unix.Open(dir+"/exe", unix.O_WRONLY|unix.O_APPEND|unix.O_CLOEXEC, 0)
		if err != nil {
			return false
		}
		unix.Close(fd)
		return true
	})
	try(3, "fd", func() bool {
		fd, err := unix.Open(dir+"/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return false
		}
		d := os.NewFile(uintptr(fd), dir+"/fd")
		defer d.Close()
		_, err = d.Readdirnames(-1)
		return err == nil
	})
	if len(p.Access) > 0 {
		if b, err := readFile(dir + "/comm"); err == nil {
			p.CommAfter = string(b)
		}
		if p.Exe == "" {
			buf := make([]byte, 4096)
			if n, err := unix.Readlink(dir+"/exe", buf); err == nil {
				p.Exe = string(buf[:n])
			}
		}
	}
	return p
}

// cmdSwap exchanges the names a and b with renameat2(RENAME_EXCHANGE) as fast as it can, for
// the given seconds or until killed: with a a directory and b a symlink, a path through a is a
// directory one moment and a symlink the next (CVE-2021-30465's race against a runtime that
// resolves a mount target and then mounts on it by name). It prints "ready" first and the
// number of exchanges at the end.
func cmdSwap(args []string, stdout, stderr io.Writer) int {
	if len(args) != 3 {
		return usageError(stderr, "swap needs two paths and a number of seconds")
	}
	secs, err := strconv.Atoi(args[2])
	if err != nil || secs <= 0 {
		return usageError(stderr, fmt.Sprintf("bad seconds %q", args[2]))
	}
	fmt.Fprintln(stdout, "ready")
	n := 0
	for deadline := time.Now().Add(time.Duration(secs) * time.Second); time.Now().Before(deadline); {
		for i := 0; i < 1000; i++ {
			if err := unix.Renameat2(unix.AT_FDCWD, args[0], unix.AT_FDCWD, args[1], unix.RENAME_EXCHANGE); err != nil {
				fmt.Fprintf(stderr, "probe: exchange %s and %s: %v\n", args[0], args[1], err)
				return exitFailed
			}
			n++
		}
	}
	fmt.Fprintf(stdout, "exchanges: %d\n", n)
	return exitOK
}

// cmdSetcap gives the file path every file capability, permitted and inheritable (a version 2
// security.capability, which the kernel records for the caller's user namespace), so a test can
// exec it and see what it gains (CVE-2022-29162). Without the effective bit: with it, the kernel
// refuses to exec a file whose permitted capabilities it cannot all grant.
func cmdSetcap(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		return usageError(stderr, "setcap needs a path")
	}
	const vfsCapRevision2 = 0x02000000
	var v [5]uint32
	v[0] = vfsCapRevision2
	v[1], v[2], v[3], v[4] = ^uint32(0), ^uint32(0), ^uint32(0), ^uint32(0)
	data := unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), len(v)*4)
	if err := unix.Setxattr(args[0], "security.capability", data, 0); err != nil {
		fmt.Fprintf(stdout, "setcap: %s\n", unix.ErrnoName(err.(unix.Errno)))
		return exitOK
	}
	fmt.Fprintln(stdout, "setcap: ok")
	return exitOK
}

// cmdAsUser execs path with args as uid:gid with no supplementary groups, as su(1) would, keeping
// no_new_privs and the bounding set: what a file's capabilities give a non-root user.
func cmdAsUser(args []string, stderr io.Writer) int {
	if len(args) < 2 {
		return usageError(stderr, "as-user needs UID and a program")
	}
	id, err := strconv.Atoi(args[0])
	if err != nil || id < 0 {
		return usageError(stderr, fmt.Sprintf("bad uid %q", args[0]))
	}
	if err := unix.Setgroups(nil); err != nil {
		fmt.Fprintln(stderr, "probe: setgroups:", err)
		return exitFailed
	}
	// The syscall package's calls change every thread of the process, as the exec needs.
	if err := syscall.Setgid(id); err != nil {
		fmt.Fprintln(stderr, "probe: setgid:", err)
		return exitFailed
	}
	if err := syscall.Setuid(id); err != nil {
		fmt.Fprintln(stderr, "probe: setuid:", err)
		return exitFailed
	}
	err = syscall.Exec(args[1], args[1:], os.Environ())
	fmt.Fprintln(stderr, "probe: exec:", err)
	return exitFailed
}
