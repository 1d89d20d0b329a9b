package e2e

import (
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestCVE_2017_5226_TIOCSTI: bubblewrap ran the sandbox's program on the caller's terminal, in
// the caller's session, so the program could push keystrokes into the caller's shell with the
// TIOCSTI ioctl, to run there once the sandbox ended. kite's app always starts a session of its
// own (setsid): the caller's terminal is then not its controlling terminal and the kernel refuses
// TIOCSTI on it; with -t the app gets a terminal of its own in the pod, where it may inject into
// its own input only. Tried from a pty the test made, with the app's stdout on it, with -i (its
// stdin), -t and -it; the caller's side must have nothing to read afterwards.
func TestCVE_2017_5226_TIOCSTI(t *testing.T) {
	recordCVE(t, "CVE-2017-5226", "TIOCSTI into the caller's terminal from the app: stdout on it, -i, -t, -it")
	dir := sharedDir(t, "busybox")
	const marker = "echo kite-cve-2017-5226-injected\n"
	for _, tc := range []struct {
		name  string
		flags []string
		fd    string
		// own is set where the app has a terminal of its own, which it may inject into.
		own bool
	}{
		{"stdout", nil, "1", false},
		{"stdin", []string{"-i"}, "0", false},
		{"tty", []string{"-t"}, "0", true},
		{"interactive tty", []string{"-it"}, "0", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ptmx, tty := openPTY(t)
			screen := &syncBuffer{}
			go io.Copy(screen, ptmx)
			o := &options{stdin: tty, stdout: tty, stderr: tty}
			args := append(append([]string{"run"}, tc.flags...), layoutRef("busybox"), "--", "probe", "tiocsti", tc.fd, marker)
			p := start(t, dir, o, args...)
			wantCode(t, finish(t, p), 0, strings.Join(args, " "))
			want := "tiocsti: EPERM"
			if tc.own {
				want = "tiocsti: ok"
			}
			waitScreen(t, screen, p, "tiocsti: ")
			waitScreen(t, screen, p, want)
			if n := pendingInput(t, tty, ptmx); n != 0 {
				t.Errorf("ESCAPE: the caller's terminal has %d bytes of input waiting after the app ran", n)
			}
			// Echoed input would show on the caller's screen; the app's own terminal echoes
			// what it injected there, and kite shows that.
			if !tc.own && strings.Contains(screen.String(), "kite-cve-2017-5226-injected") {
				t.Errorf("ESCAPE: the caller's terminal echoed the injected text: %q", screen.String())
			}
		})
	}
}

// pendingInput is how many bytes the caller's side of the terminal (tty) could read, checked
// to work first by typing on ptmx and reading it back.
func pendingInput(t *testing.T, tty, ptmx *os.File) int {
	t.Helper()
	fd := int(tty.Fd())
	term, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		t.Fatalf("read the terminal's settings: %v", err)
	}
	// Without canonical mode a partial line counts as input too.
	term.Lflag &^= unix.ICANON | unix.ECHO
	term.Cc[unix.VMIN], term.Cc[unix.VTIME] = 0, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, term); err != nil {
		t.Fatalf("set the terminal's settings: %v", err)
	}
	inq := func() int {
		n, err := unix.IoctlGetInt(fd, unix.TIOCINQ)
		if err != nil {
			t.Fatalf("TIOCINQ: %v", err)
		}
		return n
	}
	n := inq()
	// The check's own check: typed text is seen as waiting input.
	if _, err := ptmx.Write([]byte("typed")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitTimeout)
	for inq() < n+len("typed") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := inq(); got < n+len("typed") {
		t.Fatalf("typed 5 bytes, the terminal has %d waiting (had %d): the check cannot see input", got, n)
	}
	return n
}

// TestCVE_2022_29162_InheritableCaps: runc gave the container's process a non-empty inheritable capability set,
// so that a program with inheritable file capabilities gained them on exec, beyond what the
// container was meant to have. kite gives an empty inheritable (and ambient) set unless
// config.json names one (kite run never does), so file capabilities can grant only what the
// bounding set allows, and under no_new_privs (kite's default) nothing. Tried: a copy of the
// probe given every file capability, run as a non-root user, with and without no_new_privs,
// and the sets kite run and kite oci give.
func TestCVE_2022_29162_InheritableCaps(t *testing.T) {
	recordCVE(t, "CVE-2022-29162", "inheritable set of kite run and kite oci; exec of a file with every file capability as uid 1000, with and without no_new_privs")
	const none = "0000000000000000"
	dir := sharedDir(t, "busybox")
	for _, flags := range [][]string{nil, {"--user", "1000"}, {"--cap-add", "all"}} {
		rep := decodeInfo(t, runProbe(t, dir, nil, flags...))
		if rep.CapInh != none || rep.CapAmb != none {
			t.Errorf("%v: inheritable %s, ambient %s; want none", flags, rep.CapInh, rep.CapAmb)
		}
	}

	// The pod's root gives a copy of the probe every file capability, then runs it as kiteuser. Not
	// in /tmp, which is mounted nosuid: the kernel ignores file capabilities there.
	const script = `cp /usr/bin/probe /capprobe && probe setcap /capprobe &&
exec probe as-user 1000 /capprobe info`
	for _, tc := range []struct {
		flags []string
		nnp   bool
	}{{nil, true}, {[]string{"--no-new-privileges=false"}, false}} {
		r := kite(t, dir, append(append([]string{"run"}, tc.flags...), layoutRef("busybox"), "--", "sh", "-c", script)...)
		first, rest, _ := strings.Cut(r.Stdout, "\n")
		if first != "setcap: ok" {
			t.Fatalf("%v: the file capabilities could not be set, so nothing was tried: %s", tc.flags, r)
		}
		r.Stdout = rest
		rep := decodeInfo(t, r)
		if rep.UID != 1000 || rep.CapInh != none || rep.CapAmb != none {
			t.Errorf("%v: uid %d, inheritable %s, ambient %s; want 1000 and none", tc.flags, rep.UID, rep.CapInh, rep.CapAmb)
		}
		bnd, prm, eff := capBits(t, rep.CapBnd), capBits(t, rep.CapPrm), capBits(t, rep.CapEff)
		if prm&^bnd != 0 || eff&^bnd != 0 {
			t.Errorf("ESCAPE: %v: the file's capabilities gave permitted %s, effective %s beyond the bounding set %s", tc.flags, rep.CapPrm, rep.CapEff, rep.CapBnd)
		}
		if tc.nnp && (prm != 0 || eff != 0) {
			t.Errorf("%v: under no_new_privs the file's capabilities gave permitted %s, effective %s", tc.flags, rep.CapPrm, rep.CapEff)
		}
		// Without no_new_privs the kernel grants the file's permitted set within the bounding
		// set: the attack did take effect, and the check above could fail.
		if !tc.nnp && prm != bnd {
			t.Errorf("without no_new_privs the file's capabilities gave permitted %s, want the bounding set %s: were they set?", rep.CapPrm, rep.CapBnd)
		}
	}

	t.Run("oci", func(t *testing.T) {
		e := newOCIEnv(t)
		s := e.spec(t, "probe", "info")
		s.Process.Capabilities.Inheritable = nil
		s.Process.Capabilities.Ambient = nil
		rep, _ := decodeReport(t, ociRunToEnd(t, e, "noinh", s))
		if rep.CapInh != none || rep.CapAmb != none {
			t.Errorf("kite oci with no inheritable set in config.json: inheritable %s, ambient %s", rep.CapInh, rep.CapAmb)
		}
	})
}

// capBits parses a capability set as /proc/PID/status prints it.
func capBits(t *testing.T, hex string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(hex, 16, 64)
	if err != nil {
		t.Fatalf("capability set %q: %v", hex, errors.Unwrap(err))
	}
	return v
}
