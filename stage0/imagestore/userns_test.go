package imagestore

import (
	"reflect"
	"testing"

	"github.com/kite-runtime/kite/pkg/idmap"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestConsecutive(t *testing.T) {
	self := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}
	got := idmap.Follow(self, []specs.LinuxIDMapping{{HostID: 100000, Size: 65536}, {HostID: 200000, Size: 10}})
	want := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 65536}, {ContainerID: 65537, HostID: 200000, Size: 10}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("consecutive = %v, want %v", got, want)
	}
}

func TestCheckIDMaps(t *testing.T) {
	root := t.TempDir()
	full := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 65536}}
	single := full[:1]
	if err := checkIDMaps(root, full, full); err != nil {
		t.Fatalf("new store: %v", err)
	}
	if err := checkIDMaps(root, full, full); err != nil {
		t.Errorf("same mappings: %v", err)
	}
	if err := checkIDMaps(root, single, single); err == nil {
		t.Error("a store created with subordinate ranges was opened with a single mapping")
	}
}
