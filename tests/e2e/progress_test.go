package e2e

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kite-runtime/kite/tests/registry"
	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair: the controlling side and the terminal a program writes to.
func openPTY(t *testing.T) (ptmx, tty *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		needHost(t, "open /dev/ptmx: %v", err)
	}
	fd := int(ptmx.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock the pty: %v", err)
	}
	// A terminal has a size; progress bars are drawn to fit it.
	if err := unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 100}); err != nil {
		t.Fatalf("size the pty: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("find the pty's number: %v", err)
	}
	tty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open the pty: %v", err)
	}
	t.Cleanup(func() { ptmx.Close(); tty.Close() })
	return ptmx, tty
}

// TestFetchProgress fetches from a slow registry with stderr on a terminal, where kite draws the
// image library's progress bars, and on a pipe and with --quiet, where it prints no progress.
func TestFetchProgress(t *testing.T) {
	e := startRegistry(t, registry.Options{})
	e.push(t, "busybox", "team/app:1")
	e.reg.FaultBlob(layoutLayers(t, "busybox")[0], registry.BlobFault{ChunkSize: 256 << 10, ChunkDelay: 50 * time.Millisecond})

	// onTerminal runs kite fetch with stderr on a terminal and returns what the terminal showed.
	onTerminal := func(args ...string) string {
		t.Helper()
		ptmx, tty := openPTY(t)
		var screen bytes.Buffer
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			io.Copy(&screen, ptmx) // ends with EIO when the test closes the terminal
		}()
		o := *e.opts
		o.stderr = tty
		r := kiteWith(t, newDataDir(t), &o, append([]string{"--insecure-options=image", "fetch"}, args...)...)
		wantID(t, r, "fetch on a terminal")
		tty.Close()
		wg.Wait()
		return screen.String()
	}
	if screen := onTerminal(e.ref("team/app:1")); !strings.Contains(screen, "Copying blob") {
		t.Errorf("no progress bars on the terminal: %q", screen)
	}
	if screen := onTerminal("--quiet", e.ref("team/app:1")); strings.Contains(screen, "Copying") {
		t.Errorf("progress on the terminal with --quiet: %q", screen)
	}

	r := e.kite(t, newDataDir(t), "--insecure-options=image", "fetch", e.ref("team/app:1"))
	wantID(t, r, "fetch with stderr on a pipe")
	if strings.Contains(r.Stderr, "Copying") || strings.Contains(r.Stderr, "signatures") {
		t.Errorf("progress on a pipe: %q", r.Stderr)
	}
}
