package e2e

import (
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// waitScreen waits until the terminal shows want.
func waitScreen(t *testing.T, s *syncBuffer, p *proc, want string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !strings.Contains(s.String(), want) {
		select {
		case <-p.done:
			// What kite wrote last may still be on its way through the terminal.
			if time.Now().Before(deadline) {
				deadline = time.Now().Add(time.Second)
			}
		default:
		}
		time.Sleep(10 * time.Millisecond)
		if time.Now().After(deadline) {
			t.Fatalf("the terminal never showed %q; it shows %q", want, s.String())
		}
	}
}

// TestTerminal runs apps with -t and -it on a terminal: the app gets a terminal of its own in
// the pod's devpts, sized like the caller's and resized with it, and with -i the caller's keys.
func TestTerminal(t *testing.T) {
	dir := sharedDir(t, "busybox")
	start := func(flags []string, script string) (*proc, *os.File, *syncBuffer) {
		t.Helper()
		ptmx, tty := openPTY(t)
		out := &syncBuffer{}
		go io.Copy(out, ptmx)
		o := &options{stdin: tty, stdout: tty, stderr: tty}
		args := append(append([]string{"run"}, flags...), layoutRef("busybox"), "--", "sh", "-c", script)
		return start(t, dir, o, args...), ptmx, out
	}

	// Its own terminal, sized like the caller's (openPTY makes it 24x100).
	p, _, out := start([]string{"-t"}, `echo pts: $(ls /dev/pts); stty size; tty`)
	wantCode(t, finish(t, p), 0, "kite run -t")
	waitScreen(t, out, p, "/dev/pts/0")
	for _, want := range []string{"pts: 0 ptmx", "24 100", "/dev/pts/0"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the terminal shows %q, want %q in it", out.String(), want)
		}
	}

	// Resized with the caller's: kite relays SIGWINCH to the app's terminal.
	p, ptmx, out := start([]string{"-t"}, `trap 'stty size; exit 0' WINCH; echo ready; while :; do sleep 0.05; done`)
	waitScreen(t, out, p, "ready")
	if err := unix.IoctlSetWinsize(int(ptmx.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 30, Col: 120}); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGWINCH)
	waitScreen(t, out, p, "30 120")
	wantCode(t, finish(t, p), 0, "the resized app")

	// With -i, what the caller types reaches the app's terminal.
	p, ptmx, out = start([]string{"-it"}, `echo ready; read line; echo "got $line"`)
	waitScreen(t, out, p, "ready")
	if _, err := ptmx.Write([]byte("typed\r")); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, out, p, "got typed")
	wantCode(t, finish(t, p), 0, "the interactive app")

	// -t needs a terminal on kite's stdin.
	r := kite(t, dir, "run", "-t", layoutRef("busybox"), "--", "true")
	wantCode(t, r, 125, "-t without a terminal")
	if !strings.Contains(r.Stderr, "not a terminal") {
		t.Errorf("stderr: %q", r.Stderr)
	}
}
