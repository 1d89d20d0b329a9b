// Package rootfs owns the pod's filesystem view: a tmpfs root for the pod, and below it each app's
// root filesystem, assembled from the stored layers with the app's mounts, masks and read-only
// paths. It runs in the pod's init, inside the new user and mount namespaces, before the apps
// start; each app then pivots into its own root (podfork.App.Root).
package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/kite-runtime/kite/pkg/poddir"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Options are how Setup finishes the root filesystem.
type Options struct {
	// Readonly makes the root read-only (its submounts keep their own flags).
	Readonly bool
	// Cwd is the app's working directory, made if missing.
	Cwd string
	// MaskedPaths are hidden behind /dev/null or an empty tmpfs; ReadonlyPaths are made read-only.
	MaskedPaths, ReadonlyPaths []string
}

// MountPodRoot makes dir the pod's root: an empty tmpfs, to pivot into once every app's root
// filesystem is assembled below it (AppsDir). Mounts made from now on never propagate back to the
// host (bubblewrap and runc make / a recursive slave before touching anything, too).
func MountPodRoot(dir string) error {
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return &os.PathError{Op: "make / a recursive slave", Path: "/", Err: err}
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=755,size=1m"); err != nil {
		return &os.PathError{Op: "mount the pod's root tmpfs", Path: dir, Err: err}
	}
	if err := os.Mkdir(filepath.Join(dir, AppsDir), 0o755); err != nil {
		return fmt.Errorf("create the pod's root: %w", err)
	}
	return nil
}

// AppsDir holds each app's root filesystem in the pod's root, at AppsDir/NAME.
const AppsDir = "apps"

// Assemble builds an app's root filesystem at dir (below the pod's root) from the layers, applies
// mounts inside it, and finishes it as opts say.
func Assemble(dir string, mounts []specs.Mount, layers *poddir.Rootfs, opts Options) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("create the root of the app: %w", err)
	}
	if err := mountRoot(layers, dir); err != nil {
		return err
	}
	for _, m := range mounts {
		if err := mountOne(dir, m); err != nil {
			return err
		}
	}
	if err := devSymlinks(dir, mounts); err != nil {
		return err
	}
	// Before the root turns read-only; resolved inside it, like the mounts.
	if opts.Cwd != "" {
		rel, err := inRoot(dir, opts.Cwd)
		if err == nil {
			// Component by component inside the root: a volume another pod shares could turn a
			// directory on the way into a symlink out of it (CVE-2021-30465).
			err = pathrs.MkdirAll(dir, rel, 0o755)
		}
		if err != nil {
			return fmt.Errorf("create working directory %s: %w", opts.Cwd, err)
		}
	}
	if err := maskPaths(dir, opts.MaskedPaths); err != nil {
		return err
	}
	if err := readonlyPaths(dir, opts.ReadonlyPaths); err != nil {
		return err
	}
	if opts.Readonly {
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
		if err := unix.MountSetattr(unix.AT_FDCWD, dir, 0, &attr); err != nil {
			return &os.PathError{Op: "make the root read-only", Path: dir, Err: err}
		}
	}
	return nil
}

func mountRoot(layers *poddir.Rootfs, dir string) error {
	if layers.Bind != "" {
		if err := unix.Mount(layers.Bind, dir, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("mount the root filesystem: bind %s on %s: %w", layers.Bind, dir, err)
		}
		return nil
	}
	o := layers.Overlay
	if o == nil {
		return errors.New("mount the root filesystem: rootfs.json describes neither an overlay nor a directory")
	}
	// The lower entries are short names relative to Home: mount(2) takes its options in one page,
	// which absolute paths of a long layer chain would overflow.
	if err := os.Chdir(o.Home); err != nil {
		return fmt.Errorf("mount the root filesystem: %w", err)
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s",
		strings.Join(o.Lower, ":"), o.Upper, o.Work)
	if o.UserXattr {
		// A store filled inside a user namespace records whiteouts and opaque directories in
		// user.overlay.* xattrs; without this option overlayfs would silently ignore them.
		opts += ",userxattr"
	}
	if len(opts) >= os.Getpagesize() {
		return fmt.Errorf("mount the root filesystem: %d layers need %d bytes of overlay options, more than mount(2) accepts", len(o.Lower), len(opts))
	}
	if err := unix.Mount("overlay", dir, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount the root filesystem (overlay %s) on %s: %w", opts, dir, err)
	}
	return os.Chdir("/")
}

func mountOne(root string, m specs.Mount) error {
	o := parseOptions(m.Options)
	if m.Type == "bind" {
		o.bind = true
	}
	if err := checkKernelFSTarget(root, m); err != nil {
		return err
	}
	if o.bind {
		return bindMount(root, m, o)
	}
	// The destination is resolved inside the rootfs, and mounted on through the descriptor
	// that resolution opened: a symlink in the image, or one swapped in by another pod that
	// shares a volume on the way, must not make the mount land outside (CVE-2021-30465).
	target, err := openMountTarget(root, m.Destination, true)
	if err != nil {
		return fmt.Errorf("mount %s: %w", m.Destination, err)
	}
	defer target.Close()
	if err := unix.Mount(m.Source, fdPath(target), m.Type, o.flags, o.dataString()); err != nil {
		return fmt.Errorf("mount %s (%s) on %s: %w", m.Source, m.Type, m.Destination, err)
	}
	return setPropagation(root, m, o)
}

// checkKernelFSTarget refuses to mount proc or sysfs anywhere but at the destination itself: the
// masks and read-only paths that follow are paths in them, and an image whose /proc is a symlink
// would otherwise have proc mounted where the link leads and its own files at /proc
// (CVE-2019-16884, and runc's answer to it, refuses the same).
func checkKernelFSTarget(root string, m specs.Mount) error {
	if m.Type != "proc" && m.Type != "sysfs" {
		return nil
	}
	rel, err := inRoot(root, m.Destination)
	if err != nil {
		return fmt.Errorf("mount %s: resolve inside the rootfs: %w", m.Destination, err)
	}
	want := strings.TrimPrefix(filepath.Clean("/"+m.Destination), "/")
	st, err := os.Lstat(filepath.Join(root, want))
	if rel != want || err == nil && !st.IsDir() {
		return fmt.Errorf("mount %s on %s: %s is a symlink or not a directory in the root filesystem; refusing to mount %s anywhere else (CVE-2019-16884)", m.Type, m.Destination, m.Destination, m.Type)
	}
	return nil
}

// bindMount clones the source's mount tree, sets the options on the clone while it is still
// detached, then attaches it where the destination resolves inside root: what is attached is
// what was asked for, even if the path changes meanwhile (a path-based mount_setattr(2) after a
// mount(2) could give the options to another mount).
func bindMount(root string, m specs.Mount, o mountOptions) error {
	st, err := os.Stat(m.Source)
	if err != nil {
		return fmt.Errorf("mount %s on %s: %w", m.Source, m.Destination, err)
	}
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
	at := uint(unix.AT_EMPTY_PATH)
	if o.recursive {
		flags |= unix.AT_RECURSIVE
		at |= unix.AT_RECURSIVE
	}
	tree, err := unix.OpenTree(unix.AT_FDCWD, m.Source, flags)
	if err != nil {
		return fmt.Errorf("bind mount %s on %s: %w", m.Source, m.Destination, os.NewSyscallError("open_tree", err))
	}
	defer unix.Close(tree)
	if o.attrSet != 0 || o.attrClr != 0 {
		attr := unix.MountAttr{Attr_set: o.attrSet, Attr_clr: o.attrClr}
		err := unix.MountSetattr(tree, "", at, &attr)
		if err == unix.EPERM && (attr.Attr_set|attr.Attr_clr)&unix.MOUNT_ATTR__ATIME != 0 {
			// A user namespace cannot change the access-time behaviour of a mount it got from the
			// host (the kernel locks it): the bind keeps the host's; the other options apply.
			attr.Attr_set &^= unix.MOUNT_ATTR__ATIME
			attr.Attr_clr &^= unix.MOUNT_ATTR__ATIME
			err = unix.MountSetattr(tree, "", at, &attr)
		}
		if err != nil {
			return fmt.Errorf("set options %v on %s: %w", m.Options, m.Destination, os.NewSyscallError("mount_setattr", err))
		}
	}
	target, err := openMountTarget(root, m.Destination, st.IsDir())
	if err != nil {
		return fmt.Errorf("mount %s on %s: %w", m.Source, m.Destination, err)
	}
	defer target.Close()
	if err := unix.MoveMount(tree, "", int(target.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("bind mount %s on %s: %w", m.Source, m.Destination, os.NewSyscallError("move_mount", err))
	}
	return setPropagation(root, m, o)
}

func setPropagation(root string, m specs.Mount, o mountOptions) error {
	if o.propagation == 0 {
		return nil
	}
	// Through a fresh descriptor of the destination, which now leads to the new mount.
	target, err := openMountTarget(root, m.Destination, true)
	if err != nil {
		return fmt.Errorf("set propagation of %s: %w", m.Destination, err)
	}
	defer target.Close()
	if err := unix.Mount("", fdPath(target), "", o.propagation, ""); err != nil {
		return fmt.Errorf("set propagation of %s: %w", m.Destination, err)
	}
	return nil
}

// inRoot is dest with the symlinks that lead through it now resolved inside root, relative to
// root: the name to create if nothing is there yet.
func inRoot(root, dest string) (string, error) {
	full, err := securejoin.SecureJoin(root, dest)
	if err != nil {
		return "", err
	}
	return filepath.Rel(root, full)
}

// fdPath names what an open descriptor refers to, for the system calls that take only a path:
// mount(2) on it mounts on that very directory or file, however its name changed.
func fdPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

// openMountTarget opens the mount point dest (a directory, or a file when dir is false) inside
// root as an O_PATH descriptor, creating what is missing. Each component is resolved and created
// inside root at the moment it is used (pathrs-lite: openat2 RESOLVE_IN_ROOT, or its checked
// emulation), so a symlink swapped in on the way never leads out of root, and a file is never
// created through a symlink (CVE-2021-30465).
func openMountTarget(root, dest string, dir bool) (*os.File, error) {
	rel, err := inRoot(root, dest)
	if err != nil {
		return nil, err
	}
	rootDir, err := os.OpenFile(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer rootDir.Close()
	if dir {
		return pathrs.MkdirAllHandle(rootDir, rel, 0o755)
	}
	parent, err := pathrs.MkdirAllHandle(rootDir, filepath.Dir(rel), 0o755)
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	base := filepath.Base(rel)
	fd, err := unix.Openat(int(parent.Fd()), base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		var created int
		created, err = unix.Openat(int(parent.Fd()), base, unix.O_CREAT|unix.O_EXCL|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if err == nil {
			unix.Close(created)
			fd, err = unix.Openat(int(parent.Fd()), base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		}
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dest, Err: err}
	}
	f := os.NewFile(uintptr(fd), dest)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "stat", Path: dest, Err: err}
	}
	// The symlinks on the way were resolved a moment ago: one here now was swapped in since.
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		f.Close()
		return nil, fmt.Errorf("mount target %s changed into a symlink while it was being mounted on", dest)
	}
	return f, nil
}

// devSymlinks adds the links every Linux program expects in /dev when the pod has its own /dev.
func devSymlinks(root string, mounts []specs.Mount) error {
	ownDev := false
	for _, m := range mounts {
		if filepath.Clean(m.Destination) == "/dev" {
			ownDev = true
		}
	}
	if !ownDev {
		return nil
	}
	links := [][2]string{
		{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
		{"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"},
	}
	for _, l := range links {
		p := filepath.Join(root, "dev", l[1])
		if err := os.Symlink(l[0], p); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create /dev/%s: %w", l[1], err)
		}
	}
	return nil
}

// Pivot makes dir the root. pivot_root(".", ".") stacks the old root on top of the new one, so it
// can be detached without a directory to park it in (the technique runc and LXC use).
func Pivot(dir string) error {
	if err := os.Chdir(dir); err != nil {
		return fmt.Errorf("pivot into %s: %w", dir, err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot into %s: %w", dir, os.NewSyscallError("pivot_root", err))
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach the old root: %w", os.NewSyscallError("umount2", err))
	}
	return os.Chdir("/")
}
