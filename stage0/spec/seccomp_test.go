package spec

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// BenchmarkDefaultSeccompProfile measures building and encoding the default profile, which every
// `kite run` does.
func BenchmarkDefaultSeccompProfile(b *testing.B) {
	caps, err := capabilitySets(nil, nil, false, true)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		p, _, err := seccompProfile("", caps)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(p); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSeccompProfileModes(t *testing.T) {
	caps, err := capabilitySets(nil, nil, false, true)
	if err != nil {
		t.Fatal(err)
	}
	def, names, err := seccompProfile("", caps)
	if err != nil {
		t.Fatal(err)
	}
	if def.DefaultAction != specs.ActErrno || len(def.Architectures) == 0 || len(def.Syscalls) == 0 || names != nil {
		t.Errorf("default profile: action %s, %d architectures, %d rules, names %v", def.DefaultAction, len(def.Architectures), len(def.Syscalls), names)
	}

	p, names, err := seccompProfile("mode=remove,errno=ENOSYS,getppid,@kite/default-deny", caps)
	if err != nil {
		t.Fatal(err)
	}
	if p.DefaultAction != specs.ActAllow || len(p.Syscalls) != 1 || p.Syscalls[0].Action != specs.ActErrno ||
		*p.Syscalls[0].ErrnoRet != uint(unix.ENOSYS) || !slices.Contains(p.Syscalls[0].Names, "mount") ||
		!slices.Contains(p.Syscalls[0].Names, "getppid") || !slices.Equal(names, []string{"getppid"}) {
		t.Errorf("remove: %+v, names %v", p, names)
	}

	p, _, err = seccompProfile("mode=retain,@kite/default-allow", caps)
	if err != nil {
		t.Fatal(err)
	}
	if p.DefaultAction != specs.ActErrno || *p.DefaultErrnoRet != uint(unix.EPERM) || p.Syscalls[0].Action != specs.ActAllow ||
		!slices.Contains(p.Syscalls[0].Names, "execve") || slices.Contains(p.Syscalls[0].Names, "mount") {
		t.Errorf("retain: default %s, rule %s, %d names", p.DefaultAction, p.Syscalls[0].Action, len(p.Syscalls[0].Names))
	}
}

func TestSeccompGroups(t *testing.T) {
	root, err := capabilitySets(nil, nil, false, true)
	if err != nil {
		t.Fatal(err)
	}
	group := func(g string) []string {
		names, err := seccompGroup(g, root)
		if err != nil {
			t.Fatal(err)
		}
		return names
	}
	for _, tc := range []struct {
		group   string
		in, out []string
	}{
		{GroupKiteAllow, []string{"read", "execve", "clone", "chroot"}, []string{"mount", "reboot", "init_module"}},
		// chroot needs CAP_SYS_CHROOT, which an app without capabilities lacks.
		{GroupDockerAllow, []string{"read", "execve", "clone"}, []string{"chroot", "mount"}},
		{GroupKiteDeny, []string{"mount", "umount2", "reboot", "init_module", "kexec_load", "bpf", "keyctl"}, []string{"read", "execve", "chroot"}},
	} {
		names := group(tc.group)
		for _, n := range tc.in {
			if !slices.Contains(names, n) {
				t.Errorf("%s lacks %s", tc.group, n)
			}
		}
		for _, n := range tc.out {
			if slices.Contains(names, n) {
				t.Errorf("%s has %s", tc.group, n)
			}
		}
	}
}

// TestSeccompDenyGroup checks that removing @kite/default-deny never takes away a call the
// default profile allows with the default capabilities.
func TestSeccompDenyGroup(t *testing.T) {
	caps, err := capabilitySets(nil, nil, false, true)
	if err != nil {
		t.Fatal(err)
	}
	allowed, err := seccompGroup(GroupKiteAllow, caps)
	if err != nil {
		t.Fatal(err)
	}
	deny, err := seccompGroup(GroupKiteDeny, caps)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range deny {
		if slices.Contains(allowed, n) {
			t.Errorf("%s is in both %s and %s", n, GroupKiteDeny, GroupKiteAllow)
		}
	}
}

func TestParseSeccompErrors(t *testing.T) {
	for _, tc := range []struct{ in, hint string }{
		{"retain,read", "must start with mode="},
		{"mode=keep,read", "must start with mode="},
		{"mode=remove", "no system call"},
		{"mode=remove,errno=EWHAT,read", `unknown errno "EWHAT"`},
		{"mode=remove,@nosuch", "unknown group @nosuch"},
		{"mode=remove,Read;", "not a system call name"},
	} {
		if _, err := parseSeccomp(tc.in); err == nil || !strings.Contains(err.Error(), tc.hint) {
			t.Errorf("parseSeccomp(%q) = %v, want an error saying %q", tc.in, err, tc.hint)
		}
	}
	r, err := parseSeccomp("mode=remove,errno=enotsup,getpid")
	if err != nil || r.errno != uint(unix.EOPNOTSUPP) {
		t.Errorf("errno=enotsup: %+v, %v", r, err)
	}
}
