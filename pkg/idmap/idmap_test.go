package idmap

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestFormat(t *testing.T) {
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 65536}}
	if got, want := Format(m), "0 1000 1\n1 100000 65536\n"; got != want {
		t.Errorf("Format = %q, want %q", got, want)
	}
}

func TestOnlySelf(t *testing.T) {
	tests := []struct {
		m    []specs.LinuxIDMapping
		id   int
		want bool
	}{
		{[]specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}, 1000, true},
		{[]specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}, 1001, false},
		{[]specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 2}}, 1000, false},
		{[]specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 10}}, 1000, false},
		{nil, 1000, false},
	}
	for _, tt := range tests {
		if got := onlySelf(tt.m, tt.id); got != tt.want {
			t.Errorf("onlySelf(%v, %d) = %v, want %v", tt.m, tt.id, got, tt.want)
		}
	}
}

func TestHelpersRoundTrip(t *testing.T) {
	hs := Helpers{{Name: "newuidmap", Pid: 123}, {Name: "newgidmap", Pid: 124}}
	got, err := ParseHelpers(hs.String())
	if err != nil || len(got) != 2 || got[0] != hs[0] || got[1] != hs[1] {
		t.Fatalf("ParseHelpers(%q) = %v, %v", hs.String(), got, err)
	}
	if got, err := ParseHelpers(""); err != nil || len(got) != 0 {
		t.Errorf("ParseHelpers(\"\") = %v, %v; want none", got, err)
	}
	for _, bad := range []string{"newuidmap", "newuidmap:x", "newuidmap:-1", ":0"} {
		if _, err := ParseHelpers(bad); err == nil {
			t.Errorf("ParseHelpers(%q) accepted", bad)
		}
	}
}

func TestStartDirectAndWaitNothing(t *testing.T) {
	// A plan with nothing to start waits for nothing.
	if err := (Helpers{}).Wait(); err != nil {
		t.Fatal(err)
	}
}
