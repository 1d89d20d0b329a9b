package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kite-runtime/kite/stage0/spec"
	"github.com/kite-runtime/kite/stage1/rootfs"
	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"github.com/urfave/cli/v2"
)

func ociSpecCommand() *cli.Command {
	return &cli.Command{
		Name:  "spec",
		Usage: "write a config.json to start a bundle from: sh in ./rootfs, confined as kite run confines apps",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Value: ".", Usage: "write config.json in `DIR`"},
			&cli.BoolFlag{Name: "rootless", Usage: "add a user namespace that maps you to root, for runtimes that do not make one"},
		},
		Action: func(c *cli.Context) error {
			path := filepath.Join(c.String("bundle"), "config.json")
			if _, err := os.Stat(path); err == nil {
				return fmt.Errorf("%s exists: remove it first", path)
			}
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				return err
			}
			if err := writeJSON(f, defaultOCISpec(c.Bool("rootless"))); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		},
	}
}

func defaultOCISpec(rootless bool) *specs.Spec {
	s := &specs.Spec{
		Version:  specs.Version,
		Hostname: "kite",
		Root:     &specs.Root{Path: "rootfs", Readonly: true},
		Process: &specs.Process{
			Args:            []string{"sh"},
			Env:             []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"},
			Cwd:             "/",
			NoNewPrivileges: true,
			// kite run's default set, which is Docker's.
			Capabilities: &specs.LinuxCapabilities{Bounding: spec.DefaultCapabilities, Effective: spec.DefaultCapabilities, Permitted: spec.DefaultCapabilities},
			Rlimits:      []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace}, {Type: specs.CgroupNamespace}},
			MaskedPaths: []string{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
				"/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
	if rootless {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Getuid()), Size: 1}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Getgid()), Size: 1}}
	}
	return s
}

func ociFeaturesCommand() *cli.Command {
	return &cli.Command{
		Name:  "features",
		Usage: "print what kite oci supports, as runtime-spec's features.md JSON",
		Action: func(c *cli.Context) error {
			f, err := ociFeatures()
			if err != nil {
				return err
			}
			return writeJSON(os.Stdout, f)
		},
	}
}

func ociFeatures() (*features.Features, error) {
	yes, no := true, false
	last, err := capability.LastCap()
	if err != nil {
		return nil, errors.New("find the kernel's capabilities: " + err.Error())
	}
	var caps []string
	for c := capability.Cap(0); c <= last; c++ {
		caps = append(caps, "CAP_"+strings.ToUpper(c.String()))
	}
	opts := rootfs.OptionNames()
	slices.Sort(opts)
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions:  opts,
		Linux: &features.Linux{
			Namespaces:   []string{"cgroup", "ipc", "mount", "network", "pid", "user", "uts"},
			Capabilities: caps,
			Cgroup:       &features.Cgroup{V1: &no, V2: &yes, Systemd: &no, SystemdUser: &no},
			Seccomp: &features.Seccomp{
				Enabled:   &yes,
				Actions:   []string{"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRAP"},
				Operators: []string{"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"},
				Archs:     []string{"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32"},
			},
			Apparmor: &features.Apparmor{Enabled: &no},
			Selinux:  &features.Selinux{Enabled: &no},
		},
	}, nil
}
