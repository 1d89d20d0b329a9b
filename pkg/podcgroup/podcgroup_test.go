package podcgroup

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// fakeCgroup makes a directory with the files of a cgroup v2 directory. The kernel's rules (no
// processes beside enabled controllers, moving a process) are not emulated: these tests check
// what kite reads and writes.
func fakeCgroup(t *testing.T, controllers, procs string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"cgroup.controllers": controllers, "cgroup.procs": procs, "cgroup.subtree_control": "",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func failWith(format string, a ...any) error { return fmt.Errorf("refused: "+format, a...) }

func limits() *specs.LinuxResources {
	mem, quota, pids := int64(64<<20), int64(50000), int64(5)
	period := uint64(100000)
	return &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: &mem},
		CPU:    &specs.LinuxCPU{Quota: &quota, Period: &period},
		Pids:   &specs.LinuxPids{Limit: &pids},
	}
}

func TestNeeded(t *testing.T) {
	if got := strings.Join(Needed(limits()), " "); got != "memory cpu pids" {
		t.Errorf("Needed = %q", got)
	}
	if Needed(nil) != nil || Needed(&specs.LinuxResources{}) != nil {
		t.Error("no limits need controllers")
	}
}

func TestFindRefuses(t *testing.T) {
	need := []string{"memory", "pids"}
	for _, tc := range []struct {
		name, controllers, procs, hint string
	}{
		{"controller missing", "cpu pids", "42\n", "memory controller is not delegated"},
		{"other processes", "memory pids cpu", "42\n43\n", "shares its cgroup"},
	} {
		dir := fakeCgroup(t, tc.controllers, tc.procs)
		if _, err := find(dir, need, 42, failWith); err == nil || !strings.Contains(err.Error(), tc.hint) {
			t.Errorf("%s: %v, want a refusal saying %q", tc.name, err, tc.hint)
		}
	}
	g, err := find(fakeCgroup(t, "cpu memory pids", "42\n"), need, 42, failWith)
	if err != nil || strings.Join(g.Controllers, " ") != "memory pids" {
		t.Errorf("a delegated cgroup kite is alone in: %+v, %v", g, err)
	}
}

func TestCreate(t *testing.T) {
	dir := fakeCgroup(t, "cpu memory pids", "42\n")
	g := &Group{Dir: dir, Controllers: Needed(limits())}
	pod, err := g.Create("uuid", limits())
	if err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		"kite-monitor/cgroup.procs": "0",
		"cgroup.subtree_control":    "+memory +cpu +pids",
		"kite-pod-uuid/memory.max":  "67108864",
		"kite-pod-uuid/cpu.max":     "50000 100000",
		"kite-pod-uuid/pids.max":    "5",
	} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", file, b, err, want)
		}
	}
	if err := Add(pod, 1234); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(pod, "cgroup.procs")); string(b) != "1234" {
		t.Errorf("cgroup.procs = %q after Add", b)
	}
}
