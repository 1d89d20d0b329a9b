// This file is added to runtime-tools' cmd/runtimetest when tests/scripts/oci-conformance.sh
// builds it (go build -overlay): it lives in testdata so that no build of this module compiles it.
//
// Since Go 1.19 a Go program raises its own soft RLIMIT_NOFILE to the hard limit (less one) as it
// starts. runtime-tools v0.9.0 predates that: built with today's Go, runtimetest would see 3999
// where the runtime set 3000 (process_rlimits asks for soft 3000, hard 4000) and fail every
// runtime. This init puts back the limit runtimetest was started with, the one the runtime set,
// before runtimetest reads it. The value is the one the syscall package kept aside for the
// programs it starts (syscall.origRlimitNofile), which needs the linker flag -checklinkname=0.

package main

import (
	"sync/atomic"
	"syscall"
	_ "unsafe" // for go:linkname
)

//go:linkname origRlimitNofile syscall.origRlimitNofile
var origRlimitNofile atomic.Pointer[syscall.Rlimit]

func init() {
	if lim := origRlimitNofile.Load(); lim != nil {
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, lim)
	}
}
