// Package report owns the probe's wire format: the JSON the in-image probe binary prints and the
// byte patterns of its `output` subcommand, so tests can decode and compare what an app saw.
package report

// Report is what `probe info` prints: the process's identity, privileges and view of the pod, read
// from the kernel as the app sees it (no value is taken from the environment except Env itself).
type Report struct {
	UID    int   `json:"uid"`
	GID    int   `json:"gid"`
	EUID   int   `json:"euid"`
	EGID   int   `json:"egid"`
	Groups []int `json:"groups"`

	// UIDMap and GIDMap are the raw text of /proc/self/uid_map and gid_map.
	UIDMap string `json:"uid_map"`
	GIDMap string `json:"gid_map"`

	// The capability sets are the hex strings of /proc/self/status (CapInh: etc.), as printed.
	CapInh string `json:"cap_inh"`
	CapPrm string `json:"cap_prm"`
	CapEff string `json:"cap_eff"`
	CapBnd string `json:"cap_bnd"`
	CapAmb string `json:"cap_amb"`

	NoNewPrivs int `json:"no_new_privs"`
	// Seccomp is the mode from /proc/self/status: 0 off, 1 strict, 2 filter.
	Seccomp int `json:"seccomp"`

	Hostname string `json:"hostname"`
	// Namespaces are /proc/self/ns's links by name (net: "net:[4026531840]").
	Namespaces map[string]string `json:"namespaces"`
	Env        []string          `json:"env"`
	Cwd        string            `json:"cwd"`
	PID        int               `json:"pid"`
	PPID       int               `json:"ppid"`
	FDs        []FD              `json:"fds"`
	Mounts     []Mount           `json:"mounts"`

	// Errors lists what the probe could not read; the fields it belongs to keep their zero value.
	// The probe exits 1 when this is not empty, so a missing /proc is never mistaken for "no mounts".
	Errors []string `json:"errors,omitempty"`
}

// FD is one open file descriptor and the target of its /proc/self/fd symlink.
type FD struct {
	FD     int    `json:"fd"`
	Target string `json:"target"`
}

// Mount is one line of /proc/self/mountinfo (proc(5)), with octal escapes decoded.
type Mount struct {
	MountPoint string `json:"mount_point"`
	// Root is the directory of the filesystem mounted here: not "/" for bind mounts of a subtree.
	Root   string `json:"root"`
	FSType string `json:"fstype"`
	Source string `json:"source"`
	// Options are the per-mount options (ro, nosuid, nodev, noexec, relatime ...).
	Options string `json:"options"`
	// SuperOptions are the per-superblock options (the filesystem's own, e.g. overlay's lowerdir).
	SuperOptions string `json:"super_options"`
}

// Stat is one line of `probe stat`: the lstat(2) of a path inside the container.
type Stat struct {
	Path string `json:"path"`
	UID  int    `json:"uid"`
	GID  int    `json:"gid"`
	// Mode is the permission bits with setuid, setgid and sticky, in octal ("0755", "1777").
	Mode string `json:"mode"`
	// Type is one of file, dir, symlink, char, block, fifo, socket.
	Type string `json:"type"`
	// Error is set, and the other fields are zero, when lstat failed (e.g. "no such file or directory").
	Error string `json:"error,omitempty"`
}

// MountAt returns the mount visible at point: the last one listed there, since mountinfo lists
// mounts in the order they were stacked.
func (r *Report) MountAt(point string) (Mount, bool) {
	for i := len(r.Mounts) - 1; i >= 0; i-- {
		if r.Mounts[i].MountPoint == point {
			return r.Mounts[i], true
		}
	}
	return Mount{}, false
}
