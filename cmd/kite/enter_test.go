package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kite-runtime/kite/pkg/poddir"
)

// TestJoinPodCgroup checks where kite enter puts its command: nowhere new for a pod without a
// cgroup of its own, into the pod's cgroup (a fake directory here) for one with limits, and a
// cgroup that cannot take it fails the enter (CVE-2019-10147: a command outside the pod's
// cgroup escapes its limits).
func TestJoinPodCgroup(t *testing.T) {
	pod := t.TempDir()
	if err := joinPodCgroup(pod, 42); err != nil {
		t.Fatalf("a pod without a cgroup: %v", err)
	}
	cgroup := t.TempDir()
	if err := os.WriteFile(filepath.Join(pod, poddir.CgroupFile), []byte(cgroup+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := joinPodCgroup(pod, 42); err != nil {
		t.Fatalf("a pod with a cgroup: %v", err)
	}
	if got, err := os.ReadFile(filepath.Join(cgroup, "cgroup.procs")); err != nil || string(got) != "42" {
		t.Errorf("cgroup.procs holds %q (%v), want 42", got, err)
	}
	gone := filepath.Join(cgroup, "gone")
	if err := os.WriteFile(filepath.Join(pod, poddir.CgroupFile), []byte(gone+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := joinPodCgroup(pod, 42); err == nil || !strings.Contains(err.Error(), "pod's cgroup") {
		t.Errorf("a cgroup that cannot take the command: %v, want an error naming the pod's cgroup", err)
	}
}
