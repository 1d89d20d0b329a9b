package main

import (
	"fmt"
	"io"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// probeCalls are the system calls `probe syscall` makes, each with arguments that change nothing
// outside the probe. Without a seccomp filter, getppid and keyctl succeed and mount fails with
// ENOENT: the kernel looks the target up before it checks any capability.
var probeCalls = map[string]func() syscall.Errno{
	"getppid": func() syscall.Errno {
		_, _, e := unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0)
		return e
	},
	// keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_PROCESS_KEYRING, create): a keyring of the probe's own.
	"keyctl": func() syscall.Errno {
		_, _, e := unix.RawSyscall(unix.SYS_KEYCTL, unix.KEYCTL_GET_KEYRING_ID, uintptr(0xfffffffe), 1)
		return e
	},
	// A tmpfs on a directory that does not exist.
	"mount": func() syscall.Errno {
		target := []byte("/nonexistent-probe-target\x00")
		fstype := []byte("tmpfs\x00")
		_, _, e := unix.RawSyscall6(unix.SYS_MOUNT, uintptr(unsafe.Pointer(&fstype[0])), uintptr(unsafe.Pointer(&target[0])),
			uintptr(unsafe.Pointer(&fstype[0])), 0, 0, 0)
		return e
	},
}

// cmdSyscall makes the system call name and prints "NAME: ok" or "NAME: ERRNO" (EPERM, ENOSYS...).
func cmdSyscall(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || probeCalls[args[0]] == nil {
		return usageError(stderr, "syscall needs one of getppid, keyctl, mount")
	}
	result := "ok"
	if e := probeCalls[args[0]](); e != 0 {
		result = unix.ErrnoName(e)
	}
	fmt.Fprintf(stdout, "%s: %s\n", args[0], result)
	return exitOK
}
