package podfork

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestCloneFlags(t *testing.T) {
	ns := func(types ...specs.LinuxNamespaceType) []specs.LinuxNamespace {
		var out []specs.LinuxNamespace
		for _, ty := range types {
			out = append(out, specs.LinuxNamespace{Type: ty})
		}
		return out
	}
	tests := []struct {
		name    string
		in      []specs.LinuxNamespace
		want    uintptr
		wantErr bool
	}{
		{"pod default", ns(specs.UserNamespace, specs.MountNamespace, specs.PIDNamespace, specs.UTSNamespace, specs.IPCNamespace),
			unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC, false},
		{"network and cgroup", ns(specs.UserNamespace, specs.NetworkNamespace, specs.CgroupNamespace),
			unix.CLONE_NEWUSER | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP, false},
		{"no user namespace", ns(specs.MountNamespace), 0, true},
		{"joining a network namespace", []specs.LinuxNamespace{{Type: specs.UserNamespace}, {Type: specs.NetworkNamespace, Path: "/proc/1/ns/net"}}, unix.CLONE_NEWUSER, false},
		{"joining a pid namespace", []specs.LinuxNamespace{{Type: specs.UserNamespace}, {Type: specs.PIDNamespace, Path: "/proc/1/ns/pid"}}, 0, true},
		{"unknown type", ns(specs.UserNamespace, "time"), 0, true},
	}
	for _, tt := range tests {
		got, err := CloneFlags(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("%s: CloneFlags = %#x, %v; want %#x, error %v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
}
