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
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
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
		p, err := securejoin.SecureJoin(dir, opts.Cwd)
		if err == nil {
			err = os.MkdirAll(p, 0o755)
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
	// The destination is resolved inside the rootfs: a symlink in the image must not make the
	// mount land on the host.
	dest, err := securejoin.SecureJoin(root, m.Destination)
	if err != nil {
		return fmt.Errorf("mount %s: resolve inside the rootfs: %w", m.Destination, err)
	}
	o := parseOptions(m.Options)
	if m.Type == "bind" {
		o.bind = true
	}
	if o.bind {
		return bindMount(m, dest, o)
	}
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return fmt.Errorf("mount %s: %w", m.Destination, err)
	}
	if err := unix.Mount(m.Source, dest, m.Type, o.flags, o.dataString()); err != nil {
		return fmt.Errorf("mount %s (%s) on %s: %w", m.Source, m.Type, m.Destination, err)
	}
	return setPropagation(m, dest, o)
}

func bindMount(m specs.Mount, dest string, o mountOptions) error {
	st, err := os.Stat(m.Source)
	if err != nil {
		return fmt.Errorf("mount %s on %s: %w", m.Source, m.Destination, err)
	}
	if err := makeTarget(dest, st.IsDir()); err != nil {
		return fmt.Errorf("mount %s on %s: %w", m.Source, m.Destination, err)
	}
	flags := uintptr(unix.MS_BIND)
	if o.recursive {
		flags |= unix.MS_REC
	}
	if err := unix.Mount(m.Source, dest, "", flags, ""); err != nil {
		return fmt.Errorf("bind mount %s on %s: %w", m.Source, m.Destination, err)
	}
	if o.attrSet != 0 || o.attrClr != 0 {
		attr := unix.MountAttr{Attr_set: o.attrSet, Attr_clr: o.attrClr}
		at := 0
		if o.recursive {
			at = unix.AT_RECURSIVE
		}
		err := unix.MountSetattr(unix.AT_FDCWD, dest, uint(at), &attr)
		if err == unix.EPERM && (attr.Attr_set|attr.Attr_clr)&unix.MOUNT_ATTR__ATIME != 0 {
			// A user namespace cannot change the access-time behaviour of a mount it got from the
			// host (the kernel locks it): the bind keeps the host's; the other options apply.
			attr.Attr_set &^= unix.MOUNT_ATTR__ATIME
			attr.Attr_clr &^= unix.MOUNT_ATTR__ATIME
			err = unix.MountSetattr(unix.AT_FDCWD, dest, uint(at), &attr)
		}
		if err != nil {
			return fmt.Errorf("set options %v on %s: %w", m.Options, m.Destination, os.NewSyscallError("mount_setattr", err))
		}
	}
	return setPropagation(m, dest, o)
}

func setPropagation(m specs.Mount, dest string, o mountOptions) error {
	if o.propagation == 0 {
		return nil
	}
	if err := unix.Mount("", dest, "", o.propagation, ""); err != nil {
		return fmt.Errorf("set propagation of %s: %w", m.Destination, err)
	}
	return nil
}

// makeTarget creates the mount point: a directory for a directory, an empty file otherwise.
func makeTarget(dest string, dir bool) error {
	if dir {
		return os.MkdirAll(dest, 0o755)
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(dest, os.O_CREATE|os.O_RDONLY|unix.O_NOFOLLOW, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
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
