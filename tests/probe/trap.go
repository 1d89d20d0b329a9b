package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// trapTimeout bounds `probe trap` so a runtime that never forwards the signal fails the test
// instead of hanging it.
const trapTimeout = 30 * time.Second

func cmdTrap(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		return usageError(stderr, "trap needs a signal name")
	}
	sig, err := parseSignal(args[0])
	if err != nil {
		return usageError(stderr, err.Error())
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sig)
	// "ready" only after Notify, so a test that signals on reading it cannot race the handler.
	fmt.Fprintln(stdout, "ready")
	select {
	case got := <-ch:
		fmt.Fprintf(stdout, "got %s\n", unix.SignalName(got.(syscall.Signal)))
		return exitOK
	case <-time.After(trapTimeout):
		fmt.Fprintf(stderr, "probe: no %s within %s\n", unix.SignalName(sig), trapTimeout)
		return exitTimeout
	}
}

// parseSignal accepts TERM, SIGTERM, term or a number.
func parseSignal(name string) (syscall.Signal, error) {
	var sig syscall.Signal
	if n, err := strconv.Atoi(name); err == nil {
		sig = syscall.Signal(n)
	} else {
		upper := strings.ToUpper(name)
		if !strings.HasPrefix(upper, "SIG") {
			upper = "SIG" + upper
		}
		sig = unix.SignalNum(upper)
	}
	if sig <= 0 || unix.SignalName(sig) == "" {
		return 0, fmt.Errorf("unknown signal %q", name)
	}
	// signal(7): SIGKILL and SIGSTOP cannot be caught.
	if sig == unix.SIGKILL || sig == unix.SIGSTOP {
		return 0, fmt.Errorf("signal %s cannot be trapped", unix.SignalName(sig))
	}
	return sig, nil
}
