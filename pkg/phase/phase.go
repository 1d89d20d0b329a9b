// Package phase prints when each step of a pod's start happens, for profiling: with kite --debug
// (which sets Env for stage1), every process on the path of kite run writes "kite: phase PROCESS
// STEP T" lines to stderr, T in milliseconds of the system's monotonic clock, so that the lines
// of all processes line up.
package phase

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Env turns the phase lines on in the processes that inherit it.
const Env = "_KITE_PHASES"

var on = os.Getenv(Env) == "1"

// Enable turns the phase lines on, in this process and those it starts.
func Enable() {
	on = true
	os.Setenv(Env, "1")
}

// Mark prints that process reached step now.
func Mark(process, step string) {
	if !on {
		return
	}
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	fmt.Fprintf(os.Stderr, "kite: phase %-8s %-28s %.3f\n", process, step, float64(ts.Nano())/1e6)
}
