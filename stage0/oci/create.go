package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kite-runtime/kite/pkg/idmap"
	"github.com/kite-runtime/kite/pkg/poddir"
	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// CreateOptions are kite oci create's.
type CreateOptions struct {
	Root, ID, Bundle string
	// ConsoleSocket receives the controlling side of the container's terminal.
	ConsoleSocket string
	// Compile turns a seccomp profile into the BPF program stage1 loads.
	Compile func(*specs.LinuxSeccomp) ([]byte, error)
	// Warn reports what kite cannot apply and leaves out.
	Warn func(string)
}

// Created is a container directory written and locked, ready for stage1.
type Created struct {
	*Container
	// Spec is the pod's config.json: the namespaces, id maps and resources stage0 applies.
	Spec *specs.Spec
	Lock *os.File
}

// Create writes the directory of container o.ID from the bundle's config.json, and holds its lock.
// On failure nothing is left in the root.
func Create(o CreateOptions) (*Created, error) {
	if err := CheckID(o.ID); err != nil {
		return nil, err
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, err
	}
	s, err := readBundle(bundle)
	if err != nil {
		return nil, err
	}
	if err := checkLSMs(s, o.Warn); err != nil {
		return nil, err
	}
	terminal := s.Process != nil && s.Process.Terminal
	switch {
	case terminal && o.ConsoleSocket == "":
		return nil, errors.New("config.json asks for a terminal (process.terminal): give --console-socket, where kite oci sends it")
	case !terminal && o.ConsoleSocket != "":
		return nil, errors.New("--console-socket: config.json asks for no terminal (process.terminal is false)")
	case terminal:
		if o.ConsoleSocket, err = filepath.Abs(o.ConsoleSocket); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(o.Root, 0o700); err != nil {
		return nil, fmt.Errorf("make the state directory: %w", err)
	}
	dir := filepath.Join(o.Root, o.ID)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("container %s already exists: kite oci delete it first, or choose another ID", o.ID)
		}
		return nil, fmt.Errorf("make the container's directory: %w", err)
	}
	c := &Created{Container: &Container{ID: o.ID, Dir: dir}}
	if c.Lock, err = c.Container.Lock(0); err == nil {
		err = c.write(s, bundle, o)
	}
	if err != nil {
		if c.Lock != nil {
			c.Lock.Close()
		}
		os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

// readBundle reads and checks the bundle's config.json.
func readBundle(bundle string) (*specs.Spec, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("read the bundle's config.json: %w", err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("parse %s: %w", filepath.Join(bundle, "config.json"), err)
	}
	if !strings.HasPrefix(s.Version, "1.") {
		return nil, fmt.Errorf("config.json: ociVersion %q: kite runs runtime-spec 1.x bundles (%s)", s.Version, specs.Version)
	}
	// Without a process the container can be created, not started (runtime.md, "start").
	if p := s.Process; p != nil {
		if len(p.Args) == 0 {
			return nil, errors.New("config.json: process.args is empty: the container needs a program to run")
		}
		if p.Cwd == "" || !filepath.IsAbs(p.Cwd) {
			return nil, fmt.Errorf("config.json: process.cwd %q must be an absolute path", p.Cwd)
		}
		if err := checkCapabilities(p.Capabilities); err != nil {
			return nil, err
		}
	}
	if s.Root == nil || s.Root.Path == "" {
		return nil, errors.New("config.json: root.path is missing")
	}
	if !filepath.IsAbs(s.Root.Path) {
		s.Root.Path = filepath.Join(bundle, s.Root.Path)
	}
	if st, err := os.Stat(s.Root.Path); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("config.json: root.path %s is not a directory", s.Root.Path)
	}
	// A relative bind source is relative to the bundle (config.md, "Mounts"), whether the mount
	// says bind by its type or by its options; the pod's init would read it as a path of the pod
	// directory.
	for i, m := range s.Mounts {
		bind := m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
		if bind && !filepath.IsAbs(m.Source) {
			s.Mounts[i].Source = filepath.Join(bundle, m.Source)
		}
	}
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	for _, p := range append(append([]string{}, s.Linux.MaskedPaths...), s.Linux.ReadonlyPaths...) {
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("config.json: masked or read-only path %q must be absolute", p)
		}
	}
	switch s.Linux.RootfsPropagation {
	case "", "shared", "rshared", "slave", "rslave", "private", "rprivate", "unbindable", "runbindable":
	default:
		return nil, fmt.Errorf("config.json: linux.rootfsPropagation %q: use shared, slave, private or unbindable", s.Linux.RootfsPropagation)
	}
	return &s, nil
}

// Where the kernel reports whether AppArmor and SELinux are enabled.
var (
	apparmorEnabled = "/sys/module/apparmor/parameters/enabled"
	selinuxEnabled  = "/sys/fs/selinux/enforce"
)

// checkLSMs refuses an AppArmor profile or SELinux label that kite would have to apply: kite
// applies neither. On a host where that security module is not enabled, no runtime can apply
// them, and they are left out with a warning, as runc and crun leave them out.
func checkLSMs(s *specs.Spec, warn func(string)) error {
	var profile, label string
	if s.Process != nil {
		profile, label = s.Process.ApparmorProfile, s.Process.SelinuxLabel
	}
	if label == "" && s.Linux != nil {
		label = s.Linux.MountLabel
	}
	if profile != "" {
		if data, err := os.ReadFile(apparmorEnabled); err == nil && strings.TrimSpace(string(data)) == "Y" {
			return fmt.Errorf("config.json: process.apparmorProfile %q: kite does not apply AppArmor profiles, and AppArmor is enabled here", profile)
		}
		warn(fmt.Sprintf("process.apparmorProfile %q: not applied: AppArmor is not enabled on this host", profile))
	}
	if label != "" {
		if _, err := os.Stat(selinuxEnabled); err == nil {
			return fmt.Errorf("config.json: SELinux label %q: kite does not apply SELinux labels, and SELinux is enabled here", label)
		}
		warn(fmt.Sprintf("SELinux label %q: not applied: SELinux is not enabled on this host", label))
	}
	return nil
}

// checkCapabilities refuses a capability name the kernel does not know: a set that cannot be
// applied as written is an error (runtime-spec config.md, "capabilities").
func checkCapabilities(c *specs.LinuxCapabilities) error {
	if c == nil {
		return nil
	}
	last, err := capability.LastCap()
	if err != nil {
		return fmt.Errorf("find the kernel's capabilities: %w", err)
	}
	known := map[string]bool{}
	for n := capability.Cap(0); n <= last; n++ {
		known["CAP_"+strings.ToUpper(n.String())] = true
	}
	for _, set := range [][]string{c.Bounding, c.Effective, c.Inheritable, c.Permitted, c.Ambient} {
		for _, name := range set {
			if !known[name] {
				return fmt.Errorf("config.json: capability %q is unknown to this kernel (names look like CAP_CHOWN)", name)
			}
		}
	}
	return nil
}

// write writes the pod directory: pod.json, the pod's config.json, and the app's config.json,
// rootfs.json and seccomp.bpf.
func (c *Created) write(s *specs.Spec, bundle string, o CreateOptions) error {
	pod, err := podSpec(s)
	if err != nil {
		return err
	}
	pod.Linux.Resources = applicableResources(s.Linux.Resources, o.Warn)
	app := *s
	if app.Mounts, err = appMounts(s, pod); err != nil {
		return err
	}
	for _, p := range []string{poddir.AppDir(AppName), poddir.RootfsDir} {
		if err := os.MkdirAll(filepath.Join(c.Dir, p), 0o700); err != nil {
			return err
		}
	}
	appDir := filepath.Join(c.Dir, poddir.AppDir(AppName))
	if s.Linux.Seccomp != nil {
		filter, err := o.Compile(s.Linux.Seccomp)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(appDir, poddir.SeccompFile), filter, 0o644); err != nil {
			return err
		}
	}
	if err := poddir.CreateJSON(appDir, poddir.ConfigFile, &app); err != nil {
		return err
	}
	rootfs := poddir.Rootfs{SchemaVersion: poddir.SchemaVersion, Bind: s.Root.Path}
	if err := poddir.CreateJSON(appDir, poddir.RootfsFile, &rootfs); err != nil {
		return err
	}
	if err := poddir.CreateJSON(c.Dir, poddir.ConfigFile, pod); err != nil {
		return err
	}
	c.Spec = pod
	c.Pod = poddir.Pod{
		SchemaVersion: poddir.SchemaVersion,
		UUID:          c.ID,
		Hostname:      s.Hostname,
		Created:       time.Now().UTC(),
		Apps:          []poddir.App{{Name: AppName, Image: bundle}},
		ExitPolicy:    poddir.ExitAll,
		OCI:           &poddir.OCI{ID: c.ID, Bundle: bundle, Annotations: s.Annotations, Hooks: s.Hooks, ConsoleSocket: o.ConsoleSocket},
	}
	c.Created = c.Pod.Created
	// Last: a directory with pod.json is a container kite oci lists.
	return poddir.CreateJSON(c.Dir, poddir.PodFile, &c.Pod)
}

// podSpec is the pod's config.json: the bundle's namespaces, with a user namespace of kite's
// when it has none, its id maps (kite's default ones when it gives none), hostname and
// annotations.
func podSpec(s *specs.Spec) (*specs.Spec, error) {
	pod := &specs.Spec{Version: s.Version, Hostname: s.Hostname, Annotations: s.Annotations, Linux: &specs.Linux{Sysctl: s.Linux.Sysctl}}
	hasUser, hasUTS := false, false
	for _, ns := range s.Linux.Namespaces {
		if ns.Path != "" && ns.Type != specs.NetworkNamespace && ns.Type != specs.IPCNamespace {
			return nil, fmt.Errorf("config.json: namespace %s at %s: kite oci joins only network and ipc namespaces by path", ns.Type, ns.Path)
		}
		if slices.ContainsFunc(pod.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == ns.Type }) {
			return nil, fmt.Errorf("config.json: namespace %s is listed twice", ns.Type)
		}
		switch ns.Type {
		case specs.UserNamespace:
			hasUser = true
		case specs.UTSNamespace:
			hasUTS = true
		case specs.PIDNamespace, specs.NetworkNamespace, specs.IPCNamespace, specs.MountNamespace, specs.CgroupNamespace:
		default:
			return nil, fmt.Errorf("config.json: namespace %q is not supported", ns.Type)
		}
		pod.Linux.Namespaces = append(pod.Linux.Namespaces, specs.LinuxNamespace{Type: ns.Type, Path: ns.Path})
	}
	if !slices.ContainsFunc(pod.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.MountNamespace }) {
		return nil, errors.New("config.json: kite runs every container in a mount namespace of its own; add {\"type\": \"mount\"} to linux.namespaces")
	}
	if s.Hostname != "" && !hasUTS {
		return nil, errors.New("config.json: hostname is set without a uts namespace: it would change the host's")
	}
	if !hasUser {
		// As an unprivileged user, every container needs a user namespace: kite makes one.
		pod.Linux.Namespaces = append(pod.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	}
	pod.Linux.UIDMappings, pod.Linux.GIDMappings = s.Linux.UIDMappings, s.Linux.GIDMappings
	if len(pod.Linux.UIDMappings) == 0 || len(pod.Linux.GIDMappings) == 0 {
		pod.Linux.UIDMappings, pod.Linux.GIDMappings, _ = idmap.Default()
	}
	return pod, nil
}

// applicableResources returns the limits of res that kite applies (a cgroup v2 memory, cpu and
// pids limit) and warns about each other setting, which it leaves out.
func applicableResources(res *specs.LinuxResources, warn func(string)) *specs.LinuxResources {
	if res == nil {
		return nil
	}
	var skipped []string
	add := func(set bool, name string) {
		if set {
			skipped = append(skipped, name)
		}
	}
	// Denying every device is what a user namespace does anyway: only the nodes bound in from the
	// host (the default devices and linux.devices) can be opened.
	add(slices.ContainsFunc(res.Devices, func(d specs.LinuxDeviceCgroup) bool { return d.Allow }),
		"devices (without a device cgroup, the container can open the nodes bound in from the host: the default devices and linux.devices)")
	add(res.BlockIO != nil, "blockIO")
	add(len(res.HugepageLimits) > 0, "hugepageLimits")
	add(res.Network != nil, "network")
	add(len(res.Rdma) > 0, "rdma")
	add(len(res.Unified) > 0, "unified")
	out := &specs.LinuxResources{}
	if m := res.Memory; m != nil {
		out.Memory = &specs.LinuxMemory{Limit: m.Limit}
		add(m.Reservation != nil || m.Swap != nil || m.Kernel != nil || m.KernelTCP != nil || m.Swappiness != nil || m.DisableOOMKiller != nil, "memory settings other than limit")
	}
	if cpu := res.CPU; cpu != nil {
		out.CPU = &specs.LinuxCPU{Quota: cpu.Quota, Period: cpu.Period}
		add(cpu.Shares != nil || cpu.RealtimeRuntime != nil || cpu.RealtimePeriod != nil || cpu.Cpus != "" || cpu.Mems != "" || cpu.Idle != nil, "cpu settings other than quota and period")
	}
	if res.Pids != nil {
		out.Pids = &specs.LinuxPids{Limit: res.Pids.Limit}
	}
	if len(skipped) > 0 && warn != nil {
		warn("linux.resources: not applied: " + strings.Join(skipped, "; "))
	}
	return out
}

// hostDevices are bound into every container's /dev from the host (runtime-spec config-linux.md,
// "Default Devices"): a user namespace cannot make device nodes.
var hostDevices = []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"}

// appMounts is the app's mount list: the bundle's, made possible in a user namespace, then binds
// of the default devices and of linux.devices.
func appMounts(s *specs.Spec, pod *specs.Spec) ([]specs.Mount, error) {
	// A namespace the container joins belongs to the caller's user namespace, where the
	// container's root has no privilege to mount its sysfs or mqueue.
	has := func(t specs.LinuxNamespaceType) bool {
		return slices.ContainsFunc(pod.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == t && n.Path == "" })
	}
	var out []specs.Mount
	ownDev := false
	for _, m := range s.Mounts {
		if !filepath.IsAbs(m.Destination) {
			m.Destination = "/" + m.Destination
		}
		if filepath.Clean(m.Destination) == "/dev" {
			ownDev = true
		}
		switch m.Type {
		case "sysfs":
			if !has(specs.NetworkNamespace) {
				// sysfs needs a network namespace the user namespace owns: bind the host's.
				m = hostBind(m, "/sys")
			}
		case "mqueue":
			if !has(specs.IPCNamespace) {
				if _, err := os.Stat("/dev/mqueue"); err != nil {
					return nil, fmt.Errorf("config.json: mount %s: an mqueue without an ipc namespace of the container's own is the host's /dev/mqueue, which this host has not; add an ipc namespace", m.Destination)
				}
				m = hostBind(m, "/dev/mqueue")
			}
		case "cgroup", "cgroup2":
			// A user namespace cannot mount cgroup v1 hierarchies, nor this host's cgroup v2 one
			// without a cgroup namespace: bind the host's, read-only.
			m = hostBind(m, "/sys/fs/cgroup")
			m.Options = append(m.Options, "ro")
		case "devpts":
			m.Options = mappedGIDOption(m.Options, pod.Linux.GIDMappings)
		}
		out = append(out, m)
	}
	if ownDev {
		for _, d := range hostDevices {
			if slices.ContainsFunc(s.Linux.Devices, func(dev specs.LinuxDevice) bool { return dev.Path == d }) {
				continue
			}
			out = append(out, specs.Mount{Destination: d, Type: "bind", Source: d, Options: []string{"bind", "nosuid", "noexec"}})
		}
	}
	for _, d := range s.Linux.Devices {
		m, err := deviceBind(d)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// hostBind turns m into a recursive bind of the host's dir, keeping its flags.
func hostBind(m specs.Mount, dir string) specs.Mount {
	opts := []string{"rbind"}
	for _, o := range m.Options {
		switch o {
		case "ro", "nosuid", "noexec", "nodev":
			opts = append(opts, o)
		}
	}
	return specs.Mount{Destination: m.Destination, Type: "bind", Source: dir, Options: opts}
}

// mappedGIDOption drops devpts's gid= option when that group is not mapped in the container
// (only the caller's group is, without subordinate ranges): the mount would fail.
func mappedGIDOption(opts []string, gids []specs.LinuxIDMapping) []string {
	var out []string
	for _, o := range opts {
		if v, ok := strings.CutPrefix(o, "gid="); ok {
			var gid uint32
			if _, err := fmt.Sscan(v, &gid); err == nil && !idmap.Contains(gids, gid) {
				continue
			}
		}
		out = append(out, o)
	}
	return out
}

// deviceBind binds the host's node for d, which must be the same device: a user namespace cannot
// make device nodes.
func deviceBind(d specs.LinuxDevice) (specs.Mount, error) {
	fail := func(why string) (specs.Mount, error) {
		return specs.Mount{}, fmt.Errorf("config.json: device %s (%s %d:%d): %s; kite oci binds devices from the host, as an unprivileged user cannot make device nodes", d.Path, d.Type, d.Major, d.Minor, why)
	}
	var st unix.Stat_t
	if err := unix.Stat(d.Path, &st); err != nil {
		return fail("the host has no such node")
	}
	want := map[string]uint32{"c": unix.S_IFCHR, "u": unix.S_IFCHR, "b": unix.S_IFBLK, "p": unix.S_IFIFO}[d.Type]
	if want == 0 {
		return fail("unknown type")
	}
	if st.Mode&unix.S_IFMT != want {
		return fail("the host's node is of another type")
	}
	if want != unix.S_IFIFO && (int64(unix.Major(st.Rdev)) != d.Major || int64(unix.Minor(st.Rdev)) != d.Minor) {
		return fail(fmt.Sprintf("the host's node is %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev)))
	}
	return specs.Mount{Destination: d.Path, Type: "bind", Source: d.Path, Options: []string{"bind", "nosuid", "noexec"}}, nil
}
