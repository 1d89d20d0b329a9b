// Package spec owns the translation of an image and the user's run options into the OCI
// runtime-spec config.json that stage1 executes. All policy lives here (default mounts, hostname,
// environment); stage1 applies the result literally.
package spec

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/kite-runtime/kite/pkg/poddir"
	"github.com/kite-runtime/kite/stage0/imageindex"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// defaultUmask is the app's umask: the caller's own umask is no business of the pod's (0022, as
// with podman and runc).
var defaultUmask uint32 = 0o022

// Options are the user's choices for one app.
type Options struct {
	// Exec replaces the image's Entrypoint.
	Exec string
	// Args, when non-nil, replace the image's Cmd.
	Args     []string
	Hostname string
	// User and Group replace the image's user and group: numbers, or names in the image's
	// /etc/passwd and /etc/group. SupplementaryGIDs are added to the user's groups.
	User, Group       string
	SupplementaryGIDs []uint32
	// Environment, lowest precedence first (rkt's order): the caller's (with --inherit-env), then
	// the image's, then EnvFile's, then SetEnv's, each KEY=VALUE.
	Inherited, EnvFile, SetEnv []string
	// WorkingDir replaces the image's working directory; stage1 creates it when missing.
	WorkingDir string
	// Volumes and the points where they are mounted.
	Volumes     []Volume
	MountPoints []MountPoint
	// ReadonlyRootfs makes the root read-only, with writable tmpfs on /tmp and /run.
	ReadonlyRootfs bool
	// CapsRetain and CapsRemove adjust the default capability set; AllCapabilities keeps every
	// capability of the user namespace (--insecure-options=capabilities).
	CapsRetain, CapsRemove []string
	AllCapabilities        bool
	// AllowNewPrivileges leaves no_new_privs off (--no-new-privileges=false).
	AllowNewPrivileges bool
	// Seccomp is the --seccomp filter (mode=retain|remove,...); "" means kite's default profile.
	// NoSeccomp runs the app without a filter (--insecure-options=seccomp).
	Seccomp   string
	NoSeccomp bool
	// UnmaskedPaths leaves the kernel's sensitive /proc and /sys paths visible and writable
	// (--insecure-options=paths).
	UnmaskedPaths bool
	// Rlimits are the app's resource limits; OOMScoreAdj, when set, its oom_score_adj.
	Rlimits     []specs.POSIXRlimit
	OOMScoreAdj *int
	// Memory (bytes), CPUQuota (per 100 ms of CPU time) and PidsLimit are the pod's cgroup
	// limits; 0 is none.
	Memory, CPUQuota, PidsLimit int64
}

// maskedPaths are hidden from the app, and readonlyPaths made read-only, as runc and podman do:
// they expose the host kernel's memory, keys and timers, or let root in the pod reconfigure it.
var (
	maskedPaths = []string{
		"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list",
		"/proc/timer_stats", "/sys/firmware", "/sys/devices/virtual/powercap",
	}
	readonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

// ValidHostname checks a hostname the way sethostname(2) and RFC 1123 would, so that a bad
// --hostname fails with a clear message before a pod is made.
func ValidHostname(h string) error {
	if len(h) == 0 || len(h) > 64 {
		return fmt.Errorf("hostname %q: must be 1 to 64 characters", h)
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("hostname %q: each dot-separated part must be non-empty and not start or end with '-'", h)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("hostname %q: only letters, digits, '-' and '.' are allowed", h)
			}
		}
	}
	return nil
}

// Config is config.json for one app, and what stage0 prepares beside it.
type Config struct {
	Spec *specs.Spec
	// EmptyVolumes are the empty volumes stage1 makes in the pod directory.
	EmptyVolumes []poddir.EmptyVolume
	// SeccompNames are the system calls --seccomp named one by one: the filter's compiler must
	// know every one (a misspelt name must not leave a call allowed).
	SeccompNames []string
}

// Generate builds config.json for running image rec with opts.
func Generate(rec *imageindex.Record, opts Options) (*Config, error) {
	s, err := generate(rec, opts)
	if err != nil {
		return nil, err
	}
	mounts, empty, err := volumeMounts(opts.Volumes, opts.MountPoints)
	if err != nil {
		return nil, err
	}
	s.Mounts = append(s.Mounts, mounts...)
	c := &Config{Spec: s, EmptyVolumes: empty}
	if !opts.NoSeccomp {
		if s.Linux.Seccomp, c.SeccompNames, err = seccompProfile(opts.Seccomp, s.Process.Capabilities); err != nil {
			return nil, err
		}
	} else if opts.Seccomp != "" {
		return nil, errors.New("--seccomp and --insecure-options=seccomp contradict each other: give one")
	}
	return c, nil
}

func generate(rec *imageindex.Record, opts Options) (*specs.Spec, error) {
	if opts.Hostname != "" {
		if err := ValidHostname(opts.Hostname); err != nil {
			return nil, fmt.Errorf("--hostname: %w", err)
		}
	}
	cfg := rec.Config
	entrypoint, cmd := cfg.Entrypoint, cfg.Cmd
	if opts.Exec != "" {
		// A new entrypoint makes the image's Cmd meaningless, as with podman --entrypoint.
		entrypoint, cmd = []string{opts.Exec}, nil
	}
	if opts.Args != nil {
		cmd = opts.Args
	}
	args := append(slices.Clone(entrypoint), cmd...)
	if len(args) == 0 {
		return nil, fmt.Errorf("image %s sets no Entrypoint or Cmd: give the command after --, e.g. kite run IMAGE -- /bin/sh", rec.Name)
	}
	u, err := ResolveUser(userSpec(cfg.User, opts.User, opts.Group), rec.Layers)
	if err != nil {
		return nil, err
	}
	for _, g := range opts.SupplementaryGIDs {
		if g != u.GID && !slices.Contains(u.Groups, g) {
			u.Groups = append(u.Groups, g)
		}
	}
	cwd := cfg.WorkingDir
	if opts.WorkingDir != "" {
		if !strings.HasPrefix(opts.WorkingDir, "/") {
			return nil, fmt.Errorf("--working-dir %s: give an absolute path", opts.WorkingDir)
		}
		cwd = opts.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	// /proc/self/fd/N would name a descriptor of whatever process enters it, one that may lead
	// out of the pod (CVE-2024-21626); nothing in /proc is a place to work in.
	if c := path.Clean(cwd); c == "/proc" || strings.HasPrefix(c, "/proc/") {
		return nil, fmt.Errorf("working directory %s: it must not be in /proc; give another with --working-dir", cwd)
	}
	env, err := mergeEnv(opts.Inherited, cfg.Env, opts.EnvFile, opts.SetEnv)
	if err != nil {
		return nil, err
	}
	caps, err := capabilitySets(opts.CapsRetain, opts.CapsRemove, opts.AllCapabilities, u.UID == 0)
	if err != nil {
		return nil, err
	}
	s := &specs.Spec{
		Version:  specs.Version,
		Hostname: opts.Hostname,
		Root:     &specs.Root{Path: "rootfs", Readonly: opts.ReadonlyRootfs},
		Process: &specs.Process{
			Args:            args,
			Env:             environment(env, u, opts.Hostname),
			Cwd:             cwd,
			User:            specs.User{UID: u.UID, GID: u.GID, AdditionalGids: u.Groups, Umask: &defaultUmask},
			Capabilities:    caps,
			NoNewPrivileges: !opts.AllowNewPrivileges,
			Rlimits:         opts.Rlimits,
			OOMScoreAdj:     opts.OOMScoreAdj,
		},
		Mounts: defaultMounts(opts.ReadonlyRootfs),
		Linux: &specs.Linux{
			UIDMappings: rec.UIDMap,
			GIDMappings: rec.GIDMap,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.UserNamespace}, {Type: specs.MountNamespace}, {Type: specs.PIDNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.IPCNamespace},
			},
		},
		Annotations: map[string]string{"org.opencontainers.image.ref.name": rec.Name},
	}
	s.Linux.Resources = resources(opts)
	if !opts.UnmaskedPaths {
		s.Linux.MaskedPaths = slices.Clone(maskedPaths)
		s.Linux.ReadonlyPaths = slices.Clone(readonlyPaths)
	}
	return s, nil
}

// environment is the image's Env with the variables every app can count on filled in.
func environment(image []string, u User, hostname string) []string {
	env := slices.Clone(image)
	has := func(k string) bool {
		return slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, k+"=") })
	}
	if !has("PATH") {
		env = append(env, "PATH="+poddir.DefaultPath)
	}
	if !has("HOME") {
		env = append(env, "HOME="+u.Home)
	}
	if !has("HOSTNAME") && hostname != "" {
		env = append(env, "HOSTNAME="+hostname)
	}
	// systemd and other programs detect a container by this variable (systemd-detect-virt).
	if !has("container") {
		env = append(env, "container=kite")
	}
	return env
}

// hostDevices are bind-mounted from the host: a user namespace cannot create device nodes.
var hostDevices = []string{"null", "zero", "full", "random", "urandom", "tty"}

func defaultMounts(readonlyRoot bool) []specs.Mount {
	m := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		// No gid= option: the tty group need not be mapped in the pod's user namespace.
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
	}
	for _, d := range hostDevices {
		m = append(m, specs.Mount{Destination: "/dev/" + d, Type: "bind", Source: "/dev/" + d, Options: []string{"bind", "nosuid", "noexec"}})
	}
	m = append(m,
		// The pod shares the host's network namespace, so a fresh sysfs cannot be mounted
		// (sysfs(5) needs a network namespace the user namespace owns); bind the host's, read-only.
		specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys", Options: []string{"rbind", "ro", "nosuid", "noexec", "nodev"}},
		specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"}},
	)
	if readonlyRoot {
		// Programs keep their sockets and pid files in /run; with a read-only root it must be a
		// writable tmpfs, as with podman --read-only.
		m = append(m, specs.Mount{Destination: "/run", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=755"}})
	}
	return m
}

// userSpec is the "user[:group]" to resolve: the image's, with the user and group the caller gave
// replacing their parts.
func userSpec(image, user, group string) string {
	u, g, _ := strings.Cut(image, ":")
	if user != "" {
		// A new user brings its own primary group unless one is given.
		u, g = user, ""
	}
	if group != "" {
		g = group
	}
	if g == "" {
		return u
	}
	return u + ":" + g
}

// mergeEnv merges KEY=VALUE lists, later lists overriding earlier ones key by key; a key keeps
// the position it first had.
func mergeEnv(lists ...[]string) ([]string, error) {
	var out []string
	index := map[string]int{}
	for _, list := range lists {
		for _, kv := range list {
			k, _, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("environment variable %q: use KEY=VALUE", kv)
			}
			if i, seen := index[k]; seen {
				out[i] = kv
				continue
			}
			index[k] = len(out)
			out = append(out, kv)
		}
	}
	return out, nil
}
