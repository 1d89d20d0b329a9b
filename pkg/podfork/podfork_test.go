package podfork

import (
	"testing"
	"time"

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

// TestStartChildSeesCallerGone checks that a child whose caller goes away before releasing it
// exits: it must not hold the caller's end of the sync socket itself, which would keep it
// waiting for ever (a kite killed between the fork and the release left such children behind).
func TestStartChildSeesCallerGone(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	pid, err := Start(0, []string{"/bin/true"}, nil, fds[1], fds[0], false)
	if err != nil {
		t.Fatal(err)
	}
	// The caller's end closes without a message, as when the caller dies.
	unix.Close(fds[0])
	done := make(chan unix.WaitStatus, 1)
	go func() {
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, 0, nil)
		done <- ws
	}()
	select {
	case ws := <-done:
		if !ws.Exited() || ws.ExitStatus() != 125 {
			t.Errorf("the child ended with %v, want exit status 125", ws)
		}
	case <-time.After(5 * time.Second):
		unix.Kill(pid, unix.SIGKILL)
		t.Fatal("the child still waits on the sync socket after its caller's end closed")
	}
}
