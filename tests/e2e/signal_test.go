package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSignalReachesApp sends signals to the kite process the caller started (stage0 became the
// monitor in place, with the same pid) and expects the app to receive them.
func TestSignalReachesApp(t *testing.T) {
	dir := sharedDir(t, "busybox")
	for sig := syscall.Signal(1); sig <= 31; sig++ {
		// Not catchable; the monitor's and the init's own; kept by the Go runtime (of kite, and of
		// the probe) for its profiler.
		if sig == syscall.SIGKILL || sig == syscall.SIGSTOP || sig == syscall.SIGCHLD || sig == syscall.SIGPROF {
			continue
		}
		name := strings.TrimPrefix(unix.SignalName(sig), "SIG")
		t.Run(name, func(t *testing.T) {
			// The probe is a Go program too: without asynchronous preemption, every SIGURG it
			// sees comes from kite.
			p := start(t, dir, nil, "run", "-e", "GODEBUG=asyncpreemptoff=1", layoutRef("busybox"), "--", "probe", "trap", name)
			waitOutput(t, p, "ready\n")
			if err := p.cmd.Process.Signal(sig); err != nil {
				t.Fatalf("signal kite: %v", err)
			}
			r := finish(t, p)
			wantCode(t, r, 0, "probe trap "+name)
			if want := "ready\ngot " + unix.SignalName(sig) + "\n"; r.Stdout != want {
				t.Fatalf("stdout = %q, want %q", r.Stdout, want)
			}
		})
	}
}

// TestSignalKillsApp sends SIGTERM or SIGINT to kite while the app does not handle it: the app
// dies of it and kite exits 128+N.
func TestSignalKillsApp(t *testing.T) {
	dir := sharedDir(t, "busybox")
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		p := start(t, dir, nil, runArgs(layoutRef("busybox"), "sh", "-c", "echo ready; exec sleep 30")...)
		waitOutput(t, p, "ready\n")
		if err := p.cmd.Process.Signal(sig); err != nil {
			t.Fatalf("signal kite: %v", err)
		}
		r := finish(t, p)
		if r.Signaled {
			t.Fatalf("kite itself died of %s instead of relaying it: %s", unix.SignalName(sig), r)
		}
		wantCode(t, r, 128+int(sig), unix.SignalName(sig)+" to an app that does not trap it")
	}
}

// TestZombieReaped orphans a process inside the pod; the pod's init, to which it is reparented,
// must reap it when it exits.
func TestZombieReaped(t *testing.T) {
	dir := sharedDir(t, "busybox")
	// The inner sh starts sleep in the background and exits at once, so sleep's parent is gone and
	// the kernel reparents it to pid 1 of the pod. It ends after 0.2 s, well before probe counts.
	r := runImage(t, dir, layoutRef("busybox"), "sh", "-c", `(sh -c "sleep 0.2 &"); sleep 1; probe zombies`)
	wantCode(t, r, 0, "probe zombies")
	if strings.TrimSpace(r.Stdout) != "0" {
		t.Fatalf("zombies in the pod = %q, want 0 (the pod's init does not reap orphans)", strings.TrimSpace(r.Stdout))
	}
}

// TestAppSignalDispositions checks the app starts as a new program should: no signal blocked, none
// ignored, even when kite's own caller ignored some (as nohup does with SIGHUP), and a handler the
// app installs for a signal the Go runtime does not unblock by itself (SIGUSR2) runs.
func TestAppSignalDispositions(t *testing.T) {
	dir := sharedDir(t, "busybox")
	kite := filepath.Join(binDir, "kite")
	// The caller ignores SIGHUP and SIGUSR1 before it execs kite.
	cmd := exec.Command("/bin/sh", "-c", `trap "" HUP USR1; exec "$@"`, "sh",
		kite, "--dir", dir, "run", layoutRef("busybox"), "--",
		"sh", "-c", `grep -E "^Sig(Blk|Ign):" /proc/self/status; trap "echo got USR2" USR2; kill -USR2 $$`)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kite run: %v\n%s", err, out)
	}
	got := string(out)
	for _, want := range []string{"SigBlk:\t0000000000000000\n", "SigIgn:\t0000000000000000\n", "got USR2\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("the app printed %q, want it to contain %q", got, want)
		}
	}
}

// TestEarlySignal sends SIGTERM to kite at points spread over its start-up, while the pod is
// still being set up: whichever process holds the signal then (kite, the monitor, the init), it
// must not be lost, so the app, a long sleep, never outlives it.
func TestEarlySignal(t *testing.T) {
	dir := sharedDir(t, "busybox")
	// The start-up takes some tens of milliseconds; signal 0, 3, 6 ... 57 ms after the start.
	for i := range 20 {
		p := start(t, dir, nil, runArgs(layoutRef("busybox"), "sleep", "30")...)
		time.Sleep(time.Duration(i) * 3 * time.Millisecond)
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		r := finish(t, p)
		if r.Code != 143 {
			t.Errorf("delay %d ms: exit status %d, want 143 (SIGTERM), stderr %q", i*3, r.Code, r.Stderr)
		}
	}
}

// TestKiteKilled SIGKILLs kite run while its pod runs several processes: nothing of the pod may
// survive it, as systemd's KillMode=mixed and a plain kill -9 expect.
func TestKiteKilled(t *testing.T) {
	dir := sharedDir(t, "busybox")
	p := start(t, dir, nil, "run", "--name", "killed", layoutRef("busybox"), "--", "sh", "-c", "sleep 300 & sleep 300 & echo ready; wait")
	waitOutput(t, p, "ready\n")
	st := podStatus(t, dir, "killed")
	podNS, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", st.Pid))
	if err != nil {
		t.Fatalf("the pod's pid namespace: %v", err)
	}
	inPod := func() []int {
		var pids []int
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			// The pod's processes are in the pod's pid namespace, or (the init) own it.
			if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); err == nil && ns == podNS {
				pids = append(pids, pid)
			}
		}
		return pids
	}
	if n := len(inPod()); n < 3 {
		t.Fatalf("%d processes in the pod's pid namespace, want the init, sh and two sleeps", n)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.wait()
	for deadline := time.Now().Add(waitTimeout); ; time.Sleep(20 * time.Millisecond) {
		left := inPod()
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes of the pod outlive kite: %v", left)
		}
	}
	if st := podStatus(t, dir, "killed"); st.State != "exited" {
		t.Errorf("the pod is %s after its kite was killed, want exited", st.State)
	}
	kite(t, dir, "rm", "killed")
}
