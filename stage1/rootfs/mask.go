package rootfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// openDevNull opens the app's /dev/null (below root) to mask paths with, and checks that it is
// the null device: masking with whatever a path named /dev/null leads to could unmask a path
// instead (CVE-2025-31133). The masks then bind this very inode.
func openDevNull(root string) (*os.File, error) {
	p, err := securejoin.SecureJoin(root, "/dev/null")
	if err != nil {
		return nil, err
	}
	fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: "/dev/null", Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "stat", Path: "/dev/null", Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		unix.Close(fd)
		return nil, errors.New("/dev/null is not the null device (1:3); refusing to mask paths with it")
	}
	return os.NewFile(uintptr(fd), "/dev/null"), nil
}

// maskPaths hides each path that exists in the app's root filesystem root: a file behind
// /dev/null, a directory behind an empty read-only tmpfs. Paths resolve inside root, where the
// app's /proc and /sys are mounted.
func maskPaths(root string, paths []string) error {
	if len(paths) == 0 {
		return nil
	}
	devNull, err := openDevNull(root)
	if err != nil {
		return err
	}
	defer devNull.Close()
	for _, name := range paths {
		p, err := securejoin.SecureJoin(root, name)
		if err != nil {
			return fmt.Errorf("mask %s: %w", name, err)
		}
		st, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("mask %s: %w", p, err)
		}
		switch {
		case st.Mode()&fs.ModeSymlink != 0:
			// Not one of the kernel's files: a mount would follow the link.
			continue
		case st.IsDir():
			err = unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=0,mode=555")
		default:
			err = unix.Mount("/proc/self/fd/"+strconv.Itoa(int(devNull.Fd())), p, "", unix.MS_BIND, "")
		}
		if err != nil {
			return fmt.Errorf("mask %s: %w", p, os.NewSyscallError("mount", err))
		}
	}
	return nil
}

// readonlyPaths makes each path that exists in the app's root filesystem root read-only, with what
// lies below it.
func readonlyPaths(root string, paths []string) error {
	for _, name := range paths {
		p, err := securejoin.SecureJoin(root, name)
		if err != nil {
			return fmt.Errorf("make %s read-only: %w", name, err)
		}
		st, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) || err == nil && st.Mode()&fs.ModeSymlink != 0 {
			continue
		}
		if err != nil {
			return fmt.Errorf("make %s read-only: %w", p, err)
		}
		if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("make %s read-only: %w", p, os.NewSyscallError("mount", err))
		}
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
		if err := unix.MountSetattr(unix.AT_FDCWD, p, unix.AT_RECURSIVE, &attr); err != nil {
			return fmt.Errorf("make %s read-only: %w", p, os.NewSyscallError("mount_setattr", err))
		}
	}
	return nil
}
