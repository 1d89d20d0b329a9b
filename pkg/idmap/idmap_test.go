package idmap

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
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

func TestRead(t *testing.T) {
	p := filepath.Join(t.TempDir(), "uid_map")
	os.WriteFile(p, []byte("         0       1000          1\n         1     100000      65536\n"), 0o644)
	got, err := Read(p)
	want := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 65536}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Read = %v, %v; want %v", got, err, want)
	}
	os.WriteFile(p, []byte("0 1000\n"), 0o644)
	if _, err := Read(p); err == nil {
		t.Error("Read accepted a line with two fields")
	}
	os.WriteFile(p, nil, 0o644)
	if _, err := Read(p); err == nil {
		t.Error("Read accepted an empty map")
	}
}

func TestContainsAndRanges(t *testing.T) {
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 65536}}
	for id, want := range map[uint32]bool{0: true, 1: true, 1000: true, 65536: true, 65537: false, 4294967295: false} {
		if got := Contains(m, id); got != want {
			t.Errorf("Contains(%d) = %v, want %v", id, got, want)
		}
	}
	if got := Contains([]specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 4294967295}}, 4294967294); !got {
		t.Error("the identity mapping of every id does not contain 4294967294")
	}
	if got, want := Ranges(m), "0-0, 1-65536"; got != want {
		t.Errorf("Ranges = %q, want %q", got, want)
	}
}

func TestParseSubordinate(t *testing.T) {
	in := "# comment\nalice:100000:65536\nbob:200000:1000\n1001:300000:10\nalice:bad:1\nalice:5:0\nalice:400000:5\n"
	got := parseSubordinate(strings.NewReader(in), "alice", 1001)
	want := []specs.LinuxIDMapping{{HostID: 100000, Size: 65536}, {HostID: 300000, Size: 10}, {HostID: 400000, Size: 5}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parseSubordinate = %v, want %v", got, want)
	}
	m := Follow([]specs.LinuxIDMapping{{ContainerID: 0, HostID: 1001, Size: 1}}, got)
	if m[1].ContainerID != 1 || m[2].ContainerID != 65537 || m[3].ContainerID != 65547 {
		t.Fatalf("follow gave %v: ids inside must follow each other", m)
	}
}

func TestRootMappings(t *testing.T) {
	dir := t.TempDir()
	write := func(content string) string {
		p := filepath.Join(dir, "map")
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	host := rootMappings(write("         0          0 4294967295\n"))
	if !reflect.DeepEqual(host, []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 65536}}) {
		t.Errorf("on the host: %v", host)
	}
	// Root of a rootless engine's namespace: each extent maps onto one of the parent's.
	nested := rootMappings(write("0 1001 1\n1 100000 65536\n65537 200000 65536\n"))
	want := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 1}, {ContainerID: 1, HostID: 1, Size: 65536}, {ContainerID: 65537, HostID: 65537, Size: 65536}}
	if !reflect.DeepEqual(nested, want) {
		t.Errorf("in a user namespace: %v, want %v", nested, want)
	}
}
