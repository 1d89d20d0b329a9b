package report

import (
	"bytes"
	"testing"
)

func TestPatternLines(t *testing.T) {
	got := string(StdoutPattern(40))
	want := "o 0000000000000\no 0000000000016\no 000000"
	if got != want {
		t.Fatalf("StdoutPattern(40) = %q, want %q", got, want)
	}
	if e := StderrPattern(16); string(e) != "e 0000000000000\n" {
		t.Fatalf("StderrPattern(16) = %q", e)
	}
	if StdoutPattern(0) == nil || len(StdoutPattern(0)) != 0 {
		t.Fatal("StdoutPattern(0) must be empty and non-nil")
	}
}

// TestPatternSlices checks that any window equals the same window of the whole pattern, which is
// what lets the probe write its output chunk by chunk.
func TestPatternSlices(t *testing.T) {
	const total = 3*ChunkSize + 123
	whole := Pattern(Stderr, 0, total)
	if len(whole) != total {
		t.Fatalf("len = %d, want %d", len(whole), total)
	}
	for _, w := range []struct{ off, n int64 }{{0, 1}, {1, 15}, {7, 33}, {15, 2}, {ChunkSize, ChunkSize}, {total - 5, 5}, {100, 0}} {
		if got := Pattern(Stderr, w.off, w.n); !bytes.Equal(got, whole[w.off:w.off+w.n]) {
			t.Errorf("Pattern(off=%d, n=%d) = %q, want %q", w.off, w.n, got, whole[w.off:w.off+w.n])
		}
	}
}

func TestMountAt(t *testing.T) {
	r := Report{Mounts: []Mount{{MountPoint: "/", FSType: "overlay"}, {MountPoint: "/tmp", FSType: "tmpfs"}, {MountPoint: "/tmp", FSType: "ext4"}}}
	if m, ok := r.MountAt("/tmp"); !ok || m.FSType != "ext4" {
		t.Fatalf("MountAt(/tmp) = %+v, %v; want the last (ext4)", m, ok)
	}
	if _, ok := r.MountAt("/nope"); ok {
		t.Fatal("MountAt(/nope) found a mount")
	}
}
