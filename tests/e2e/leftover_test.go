package e2e

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"
)

// goneWithin bounds how long the kernel may take to tear a pod down once its init died.
const goneWithin = 10 * time.Second

// uniqueSleep returns a sleep duration no other process on the host has on its command line, so
// the test can find the app's sleep in /proc.
func uniqueSleep(whole int) string {
	return fmt.Sprintf("%d.%d%d", whole, os.Getpid(), time.Now().UnixNano()%1000)
}

// TestNothingLeftAfterRun checks that nothing of kite outlives the pod: no monitor, init or image
// helper once kite has exited, even after a first run that fetched the image, and no process the
// app left behind in the background.
func TestNothingLeftAfterRun(t *testing.T) {
	dir := newDataDir(t)
	arg := uniqueSleep(30)
	r := runImage(t, dir, layoutRef("busybox"), "sh", "-c", "sleep "+arg+" & echo started")
	wantCode(t, r, 0, "a run that leaves a background process")
	if left := kiteProcsOf(t, dir); len(left) > 0 {
		t.Errorf("kite processes still running after kite exited: %+v", left)
	}
	waitProcs(t, goneWithin, "the app's background sleep "+arg, func() []hostProc { return procsWithArgv(t, "sleep", arg) })
}

// TestNothingLeftAfterKiteKilled SIGKILLs the kite process while the app runs: the pod's init
// dies with its monitor (parent-death signal), and with it every process of the pod.
func TestNothingLeftAfterKiteKilled(t *testing.T) {
	dir := sharedDir(t, "busybox")
	arg := uniqueSleep(31)
	p := start(t, dir, nil, runArgs(layoutRef("busybox"), "sh", "-c", "echo started; exec sleep "+arg)...)
	waitOutput(t, p, "started\n")
	// Make sure the test can see the app before it asserts that it is gone.
	deadline := time.Now().Add(waitTimeout)
	for len(procsWithArgv(t, "sleep", arg)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the app (sleep %s) never showed up in /proc", arg)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill kite: %v", err)
	}
	r := finish(t, p)
	if !r.Signaled || r.Code != 137 {
		t.Fatalf("want kite killed by SIGKILL, got %s", r)
	}
	waitProcs(t, goneWithin, "the app (sleep "+arg+") after kite was killed", func() []hostProc { return procsWithArgv(t, "sleep", arg) })
	waitProcs(t, goneWithin, "kite's processes after kite was killed", func() []hostProc { return kiteProcsOf(t, dir) })
}

// TestNothingWrittenOutside fetches and runs an image with no XDG_RUNTIME_DIR (no login session)
// and a TMPDIR of its own: kite writes only below its data directory, so TMPDIR stays empty.
func TestNothingWrittenOutside(t *testing.T) {
	dir := newDataDir(t)
	tmp := newScratchDir(t, "tmpdir-")
	o := &options{env: []string{"TMPDIR=" + tmp, "XDG_RUNTIME_DIR="}}
	wantCode(t, kiteWith(t, dir, o, runArgs(layoutRef("busybox"), "true")...), 0, "first run")
	wantCode(t, kiteWith(t, dir, o, runArgs(archiveRef("busybox"), "true")...), 0, "run from an archive")
	entries, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("kite left %s in TMPDIR", e.Name())
	}
}
