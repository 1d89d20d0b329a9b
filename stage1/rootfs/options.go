package rootfs

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// mountOptions is a runtime-spec mount's option list translated for mount(2) and
// mount_setattr(2).
type mountOptions struct {
	bind      bool
	recursive bool    // rbind, or an attribute that must reach every submount (rro)
	flags     uintptr // mount(2) flags for a new (non-bind) mount
	// attrSet and attrClr are mount_setattr(2) attributes applied after a bind mount: a bind mount
	// ignores most mount(2) flags, and mount_setattr changes only the attributes named, leaving the
	// ones the kernel locked in a user namespace alone.
	attrSet, attrClr uint64
	propagation      uintptr
	atime            bool     // an access-time option was given
	data             []string // filesystem-specific options (mode=, size=, newinstance...)
}

var flagOptions = map[string]struct {
	flag uintptr
	attr uint64
	set  bool
}{
	"ro":          {unix.MS_RDONLY, unix.MOUNT_ATTR_RDONLY, true},
	"rw":          {unix.MS_RDONLY, unix.MOUNT_ATTR_RDONLY, false},
	"nosuid":      {unix.MS_NOSUID, unix.MOUNT_ATTR_NOSUID, true},
	"suid":        {unix.MS_NOSUID, unix.MOUNT_ATTR_NOSUID, false},
	"nodev":       {unix.MS_NODEV, unix.MOUNT_ATTR_NODEV, true},
	"dev":         {unix.MS_NODEV, unix.MOUNT_ATTR_NODEV, false},
	"noexec":      {unix.MS_NOEXEC, unix.MOUNT_ATTR_NOEXEC, true},
	"exec":        {unix.MS_NOEXEC, unix.MOUNT_ATTR_NOEXEC, false},
	"noatime":     {unix.MS_NOATIME, unix.MOUNT_ATTR_NOATIME, true},
	"relatime":    {unix.MS_RELATIME, unix.MOUNT_ATTR_RELATIME, true},
	"strictatime": {unix.MS_STRICTATIME, unix.MOUNT_ATTR_STRICTATIME, true},
	"nodiratime":  {unix.MS_NODIRATIME, unix.MOUNT_ATTR_NODIRATIME, true},
}

var propagationOptions = map[string]uintptr{
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// Propagation converts a root propagation (linux.rootfsPropagation) to the flags that make the
// root mount, and those below it, so; 0 for "", which leaves the app's root a recursive slave, as
// the app's start makes it.
func Propagation(name string) (uintptr, error) {
	if name == "" {
		return 0, nil
	}
	f, ok := propagationOptions[name]
	if !ok {
		return 0, fmt.Errorf("root propagation %q is unknown", name)
	}
	// What is set on the root reaches every mount below it.
	return f | unix.MS_REC, nil
}

// OptionNames lists the mount options kite knows, beside filesystem data such as mode= or size=,
// which it passes on to the filesystem (kite oci features).
func OptionNames() []string {
	names := []string{"bind", "rbind", "rro"}
	for n := range flagOptions {
		names = append(names, n)
	}
	for n := range propagationOptions {
		names = append(names, n)
	}
	return names
}

func parseOptions(opts []string) mountOptions {
	var o mountOptions
	for _, opt := range opts {
		switch {
		case opt == "bind":
			o.bind = true
		case opt == "rbind":
			o.bind, o.recursive = true, true
		case opt == "rro":
			o.recursive = true
			o.flags |= unix.MS_RDONLY
			o.attrSet |= unix.MOUNT_ATTR_RDONLY
		case propagationOptions[opt] != 0:
			o.propagation = propagationOptions[opt]
		default:
			f, ok := flagOptions[opt]
			if !ok {
				o.data = append(o.data, opt)
				continue
			}
			if f.attr == unix.MOUNT_ATTR_NOATIME || f.attr == unix.MOUNT_ATTR_RELATIME || f.attr == unix.MOUNT_ATTR_STRICTATIME {
				o.atime = true
			}
			if f.set {
				o.flags |= f.flag
				o.attrSet |= f.attr
				o.attrClr &^= f.attr
			} else {
				o.flags &^= f.flag
				o.attrSet &^= f.attr
				o.attrClr |= f.attr
			}
		}
	}
	// The access-time attributes are one field, not independent bits (mount_setattr(2)).
	if o.atime {
		o.attrClr |= unix.MOUNT_ATTR__ATIME
	}
	return o
}

func (o mountOptions) dataString() string { return strings.Join(o.data, ",") }
