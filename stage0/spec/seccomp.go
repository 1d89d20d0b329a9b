package spec

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"

	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Seccomp groups for --seccomp. Each is derived from Docker's default profile, which is kite's
// default, with its argument filters left out: a group names system calls, not arguments.
const (
	// GroupAll is every system call.
	GroupAll = "@all"
	// GroupDockerAllow is what Docker's default profile allows an app without capabilities.
	GroupDockerAllow = "@docker/default-allow"
	// GroupKiteAllow is what kite's default profile allows this app, for its capabilities.
	GroupKiteAllow = "@kite/default-allow"
	// GroupKiteDeny is what kite's default profile allows only to capabilities beyond the
	// default set (mounting, modules, reboot, clocks, bpf, tracing other processes...), and the
	// calls of neverAllowed.
	GroupKiteDeny = "@kite/default-deny"
)

// neverAllowed are calls Docker's default profile allows no app, and so names nowhere: the
// kernel keyring, kexec, the obsolete module and sysctl interfaces, vm86.
var neverAllowed = []string{
	"_sysctl", "add_key", "create_module", "get_kernel_syms", "kexec_file_load", "kexec_load",
	"keyctl", "nfsservctl", "query_module", "request_key", "sysfs", "uselib", "ustat", "vm86", "vm86old",
}

// SeccompGroups lists the groups --seccomp knows.
var SeccompGroups = []string{GroupKiteAllow, GroupKiteDeny, GroupDockerAllow, GroupAll}

// seccompRequest is a parsed --seccomp: mode=retain|remove[,errno=ENAME],SYSCALL|@GROUP,...
type seccompRequest struct {
	retain bool
	errno  uint
	// names are the system calls named one by one; groups the @groups.
	names, groups []string
}

func parseSeccomp(s string) (*seccompRequest, error) {
	fail := func(format string, a ...any) error {
		return fmt.Errorf("--seccomp %s: %s; use mode=retain|remove[,errno=ENAME],SYSCALL|@GROUP,... (groups: %s)",
			s, fmt.Sprintf(format, a...), strings.Join(SeccompGroups, ", "))
	}
	items := strings.Split(s, ",")
	r := &seccompRequest{errno: uint(unix.EPERM)}
	switch strings.TrimSpace(items[0]) {
	case "mode=retain":
		r.retain = true
	case "mode=remove":
	default:
		return nil, fail("it must start with mode=retain (allow only the calls listed) or mode=remove (deny them)")
	}
	for _, item := range items[1:] {
		item = strings.TrimSpace(item)
		switch {
		case item == "":
		case strings.HasPrefix(item, "errno="):
			e, ok := errnoByName(strings.TrimPrefix(item, "errno="))
			if !ok {
				return nil, fail("unknown errno %q: give a name such as EPERM, EACCES or ENOSYS", strings.TrimPrefix(item, "errno="))
			}
			r.errno = uint(e)
		case strings.HasPrefix(item, "@"):
			if !slices.Contains(SeccompGroups, item) {
				return nil, fail("unknown group %s", item)
			}
			r.groups = append(r.groups, item)
		case strings.ContainsFunc(item, func(c rune) bool { return !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') }):
			return nil, fail("%q is not a system call name", item)
		default:
			r.names = append(r.names, item)
		}
	}
	if len(r.names) == 0 && len(r.groups) == 0 {
		return nil, fail("no system call or group given")
	}
	return r, nil
}

// errnoByName finds an errno by its C name (EPERM); errno values are small.
func errnoByName(name string) (syscall.Errno, bool) {
	name = strings.ToUpper(name)
	// ErrnoName is "" for numbers without a name, which an empty name would match.
	if name == "" {
		return 0, false
	}
	for e := syscall.Errno(1); e < 4096; e++ {
		if unix.ErrnoName(e) == name {
			return e, true
		}
	}
	// Linux has no ENOTSUP of its own: it is EOPNOTSUPP.
	if name == "ENOTSUP" {
		return unix.EOPNOTSUPP, true
	}
	return 0, false
}

// seccompProfile builds the app's filter: kite's default (Docker's default profile, adjusted to
// the app's capabilities) when request is "", the filter request asks for otherwise. It also
// returns the system calls the user named one by one, which must all exist.
func seccompProfile(request string, caps *specs.LinuxCapabilities) (*specs.LinuxSeccomp, []string, error) {
	def, err := defaultProfile(caps)
	if err != nil {
		return nil, nil, err
	}
	if request == "" {
		return def, nil, nil
	}
	r, err := parseSeccomp(request)
	if err != nil {
		return nil, nil, err
	}
	all := slices.Contains(r.groups, GroupAll)
	names := slices.Clone(r.names)
	for _, g := range r.groups {
		group, err := seccompGroup(g, caps)
		if err != nil {
			return nil, nil, err
		}
		names = append(names, group...)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	errno := r.errno
	p := &specs.LinuxSeccomp{Architectures: def.Architectures}
	execAllowed := false
	switch {
	case r.retain && all:
		p.DefaultAction, execAllowed = specs.ActAllow, true
	case r.retain:
		p.DefaultAction, p.DefaultErrnoRet = specs.ActErrno, &errno
		p.Syscalls = []specs.LinuxSyscall{{Names: names, Action: specs.ActAllow}}
		execAllowed = slices.Contains(names, "execve")
	case all:
		p.DefaultAction, p.DefaultErrnoRet = specs.ActErrno, &errno
	default:
		p.DefaultAction = specs.ActAllow
		p.Syscalls = []specs.LinuxSyscall{{Names: names, Action: specs.ActErrno, ErrnoRet: &errno}}
		execAllowed = !slices.Contains(names, "execve")
	}
	if !execAllowed {
		return nil, nil, fmt.Errorf("--seccomp %s: the filter would deny execve, so the app could never start; allow execve (e.g. add %s)", request, GroupKiteAllow)
	}
	return p, r.names, nil
}

// defaultProfile is Docker's default profile for an app with caps.
func defaultProfile(caps *specs.LinuxCapabilities) (*specs.LinuxSeccomp, error) {
	p, err := seccomp.GetDefaultProfile(&specs.Spec{Process: &specs.Process{Capabilities: caps}})
	if err != nil {
		return nil, fmt.Errorf("build the default seccomp profile: %w", err)
	}
	if p == nil || len(p.Architectures) == 0 {
		return nil, errors.New("build the default seccomp profile: it has no rules for this machine's architecture")
	}
	return p, nil
}

// seccompGroup lists the system calls of group for an app with caps.
func seccompGroup(group string, caps *specs.LinuxCapabilities) ([]string, error) {
	switch group {
	case GroupAll:
		return nil, nil
	case GroupKiteAllow:
		return allowedCalls(caps)
	case GroupDockerAllow:
		return allowedCalls(&specs.LinuxCapabilities{})
	case GroupKiteDeny:
		allowed, err := allowedCalls(&specs.LinuxCapabilities{Bounding: DefaultCapabilities})
		if err != nil {
			return nil, err
		}
		deny := slices.Clone(neverAllowed)
		for _, rule := range seccomp.DefaultProfile().Syscalls {
			if rule.Includes == nil || len(rule.Includes.Caps) == 0 || rule.Action != specs.ActAllow {
				continue
			}
			for _, n := range rule.Names {
				if !slices.Contains(allowed, n) {
					deny = append(deny, n)
				}
			}
		}
		return deny, nil
	}
	return nil, fmt.Errorf("unknown seccomp group %s", group)
}

// allowedCalls lists the system calls the default profile allows an app with caps, for any
// arguments or some.
func allowedCalls(caps *specs.LinuxCapabilities) ([]string, error) {
	p, err := defaultProfile(caps)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, rule := range p.Syscalls {
		if rule.Action == specs.ActAllow {
			names = append(names, rule.Names...)
		}
	}
	return names, nil
}
