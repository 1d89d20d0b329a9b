package podinit

import (
	"fmt"
	"strings"

	"github.com/kite-runtime/kite/pkg/podfork"
	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// restrict fills in what app may gain, as config.json's process says: its resource limits and
// oom_score_adj, the capabilities to drop from its bounding set, and no_new_privs. The app's own
// fork applies them (podfork.StartApp), so that each app of a pod gets its own and the init keeps
// its capabilities, which it needs to signal and reap.
//
// The exec of the app then does the rest (capabilities(7), "Transformation of capabilities during
// execve"): a root app's permitted and effective sets become the bounding set; any other app's
// are empty. stage0 writes config.json to match; anything else it asks for, init refuses.
func restrict(p *specs.Process, app *podfork.App, lastCap capability.Cap) error {
	for _, r := range p.Rlimits {
		res, ok := rlimitResources[r.Type]
		if !ok {
			return fmt.Errorf("config.json: unknown rlimit %s", r.Type)
		}
		var cur unix.Rlimit
		if err := unix.Getrlimit(res, &cur); err == nil && r.Hard > cur.Max {
			return fmt.Errorf("set %s to %d:%d: a hard limit cannot be raised above the caller's (%d) without privilege", r.Type, r.Soft, r.Hard, cur.Max)
		}
		app.Rlimits = append(app.Rlimits, podfork.Rlimit{Resource: res, Limit: unix.Rlimit{Cur: r.Soft, Max: r.Hard}})
	}
	app.OOMScoreAdj = p.OOMScoreAdj
	app.NoNewPrivs = p.NoNewPrivileges
	if c := p.Capabilities; c != nil {
		app.DropBounding = dropFromBounding(c.Bounding, lastCap)
		// kite run's config.json never names inheritable or ambient capabilities; an OCI bundle's
		// may (runtime-spec config.md, "capabilities").
		inheritable, err := capNumbers(c.Inheritable, lastCap)
		if err != nil {
			return err
		}
		for _, n := range inheritable {
			app.Inheritable |= 1 << n
		}
		if app.Ambient, err = capNumbers(c.Ambient, lastCap); err != nil {
			return err
		}
		for _, n := range app.Ambient {
			if app.Inheritable&(1<<n) == 0 {
				return fmt.Errorf("config.json: ambient capability %s is not in the inheritable set, where the kernel requires it", capability.Cap(n))
			}
		}
	}
	return nil
}

// capNumbers converts OCI capability names (CAP_CHOWN) to numbers, refusing a name the kernel
// does not have.
func capNumbers(names []string, last capability.Cap) ([]uintptr, error) {
	var nums []uintptr
	for _, name := range names {
		found := false
		for c := capability.Cap(0); c <= last; c++ {
			if strings.EqualFold(name, "CAP_"+c.String()) {
				nums, found = append(nums, uintptr(c)), true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("config.json: capability %s is unknown to this kernel", name)
		}
	}
	return nums, nil
}

// dropFromBounding lists every capability the kernel has (0 to last) that keep does not name
// (OCI names, CAP_CHOWN).
func dropFromBounding(keep []string, last capability.Cap) []uintptr {
	kept := map[string]bool{}
	for _, name := range keep {
		kept[strings.ToUpper(name)] = true
	}
	var drop []uintptr
	for c := capability.Cap(0); c <= last; c++ {
		if !kept["CAP_"+strings.ToUpper(c.String())] {
			drop = append(drop, uintptr(c))
		}
	}
	return drop
}

// rlimitResources maps OCI rlimit names to setrlimit(2) resources.
var rlimitResources = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE,
	"RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC,
	"RLIMIT_RSS": unix.RLIMIT_RSS, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING, "RLIMIT_STACK": unix.RLIMIT_STACK,
}
