package idmap

import (
	"os"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// BenchmarkPrepare measures planning a pod's id maps, which every kite run does before it forks
// the init (writing them runs newuidmap and newgidmap, which this does not measure).
func BenchmarkPrepare(b *testing.B) {
	self := uint32(os.Getuid())
	uids := []specs.LinuxIDMapping{{ContainerID: 0, HostID: self, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 65536}}
	for b.Loop() {
		if _, err := Prepare(uids, uids); err != nil {
			b.Fatal(err)
		}
	}
}
