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
