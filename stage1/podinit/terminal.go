package podinit

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// terminal is the app's pseudo-terminal (--tty): the init holds its controlling side and relays
// between it and the caller's stdio, which the init inherited.
type terminal struct {
	master *os.File
	// output is closed once everything the app wrote has been copied to the caller.
	output chan struct{}
}

// newTerminal opens a pseudo-terminal in the devpts of the app whose root filesystem is root
// (mounted with newinstance, so it is the pod's own) sized like the caller's terminal, and
// returns it with its terminal side, which becomes the app's controlling terminal and stdio,
// owned by the app's user.
func newTerminal(root string, p *specs.Process) (*terminal, *os.File, error) {
	master, err := os.OpenFile(filepath.Join(root, "dev/pts/ptmx"), os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open a terminal for the app: %w", err)
	}
	fail := func(err error) (*terminal, *os.File, error) {
		master.Close()
		return nil, nil, fmt.Errorf("open a terminal for the app: %w", err)
	}
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		return fail(os.NewSyscallError("ioctl(TIOCSPTLCK)", err))
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		return fail(os.NewSyscallError("ioctl(TIOCGPTN)", err))
	}
	slave, err := os.OpenFile(filepath.Join(root, "dev/pts", strconv.Itoa(n)), os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(err)
	}
	if err := slave.Chown(int(p.User.UID), -1); err != nil {
		slave.Close()
		return fail(err)
	}
	if b := p.ConsoleSize; b != nil {
		ws := &unix.Winsize{Row: uint16(b.Height), Col: uint16(b.Width)}
		if err := unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, ws); err != nil {
			slave.Close()
			return fail(os.NewSyscallError("ioctl(TIOCSWINSZ)", err))
		}
	}
	return &terminal{master: master, output: make(chan struct{})}, slave, nil
}

// relay copies the caller's input to the app (stdin is /dev/null without -i: it ends at once)
// and the app's output to the caller, until the app's side closes.
func (t *terminal) relay() {
	go io.Copy(t.master, os.Stdin)
	go func() {
		// Ends with EIO once no process holds the terminal side any more.
		io.Copy(os.Stdout, t.master)
		close(t.output)
	}()
}

// resize gives the app's terminal the size of the caller's, which changed (SIGWINCH); the
// kernel then signals the app's foreground process group.
func (t *terminal) resize() {
	for _, fd := range []int{1, 0, 2} {
		if ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ); err == nil {
			unix.IoctlSetWinsize(int(t.master.Fd()), unix.TIOCSWINSZ, ws)
			return
		}
	}
}

// drain waits a moment for the app's last output to reach the caller: processes the app left
// behind may keep its terminal open, and they die with the pod.
func (t *terminal) drain() {
	select {
	case <-t.output:
	case <-time.After(200 * time.Millisecond):
	}
}
