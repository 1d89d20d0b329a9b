// Sizing GOMAXPROCS from the cgroup at start, and again every second, is work that kite's
// short-lived or idle processes never use.

//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0

// kite-stage1 is the small, resident part of kite: it runs a prepared pod directory.
//
//	kite-stage1 run <poddir>    the monitor, exec'd by kite in the caller's process
//	kite-stage1 init <poddir>   the pod's init, exec'd by kite's fork in the pod's namespaces
//	kite-stage1 enter <uuid>    kite enter's command starter, exec'd by its fork in a running
//	                            pod's namespaces, with its plan on descriptor 3
package main

import (
	"fmt"
	"os"

	"github.com/kite-runtime/kite/pkg/exitcode"
	"github.com/kite-runtime/kite/pkg/phase"
	"github.com/kite-runtime/kite/stage1/monitor"
	"github.com/kite-runtime/kite/stage1/podinit"
)

func main() {
	// Like kite, stage1 needs no privileges; a setuid copy would run pods for anyone.
	if os.Geteuid() != os.Getuid() || os.Getegid() != os.Getgid() {
		fmt.Fprintln(os.Stderr, "kite-stage1: refusing to run setuid or setgid: remove the bit with chmod u-s,g-s")
		os.Exit(exitcode.Failed)
	}
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "kite-stage1: usage: kite-stage1 run|init <poddir>, or enter <uuid> (started by kite, not by hand)")
		os.Exit(exitcode.Failed)
	}
	if os.Args[1] == "run" {
		phase.Mark("monitor", "main")
	} else {
		phase.Mark(os.Args[1], "main")
	}
	switch os.Args[1] {
	case "run":
		os.Exit(monitor.Main(os.Args[2]))
	case "init":
		os.Exit(podinit.Main(os.Args[2]))
	case "enter":
		os.Exit(podinit.Enter())
	default:
		fmt.Fprintf(os.Stderr, "kite-stage1: unknown command %q\n", os.Args[1])
		os.Exit(exitcode.Failed)
	}
}
