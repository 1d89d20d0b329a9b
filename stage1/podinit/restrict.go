package podinit

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// restrictApp limits what the app can gain, in init itself before the app is forked: the app
// inherits init's bounding set, its empty inheritable and ambient sets and no_new_privs. Init
// keeps its own permitted capabilities, which the bounding set does not reduce and which it needs
// to signal and reap the app; it never execs again, so the dropped bounding set costs it nothing.
//
// The exec of the app then does the rest (capabilities(7), "Transformation of capabilities during
// execve"): a root app's permitted and effective sets become the bounding set; any other app's
// are empty. stage0 writes config.json to match; anything else it asks for, init refuses.
func restrictApp(p *specs.Process) error {
	for _, r := range p.Rlimits {
		if err := setRlimit(r); err != nil {
			return err
		}
	}
	if p.OOMScoreAdj != nil {
		err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*p.OOMScoreAdj)), 0)
		if errors.Is(err, os.ErrPermission) {
			return fmt.Errorf("set oom_score_adj %d: only a privileged process may lower it below its current value (cat /proc/self/oom_score_adj)", *p.OOMScoreAdj)
		}
		if err != nil {
			return fmt.Errorf("set oom_score_adj %d: %w", *p.OOMScoreAdj, err)
		}
	}
	if c := p.Capabilities; c != nil {
		if len(c.Ambient) > 0 || len(c.Inheritable) > 0 {
			return fmt.Errorf("config.json asks for inheritable or ambient capabilities, which kite does not grant")
		}
		if err := limitBounding(c.Bounding); err != nil {
			return err
		}
		if err := capability.ResetAmbient(); err != nil {
			return fmt.Errorf("clear the ambient capabilities: %w", err)
		}
		if err := clearInheritable(); err != nil {
			return err
		}
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return os.NewSyscallError("prctl(PR_SET_NO_NEW_PRIVS)", err)
		}
	}
	return nil
}

// limitBounding drops from the bounding set every capability the kernel has that keep does not
// name (OCI names, CAP_CHOWN).
func limitBounding(keep []string) error {
	kept := map[string]bool{}
	for _, name := range keep {
		kept[strings.ToUpper(name)] = true
	}
	last, err := capability.LastCap()
	if err != nil {
		return fmt.Errorf("find the kernel's capabilities: %w", err)
	}
	var drop []capability.Cap
	for c := capability.Cap(0); c <= last; c++ {
		if !kept["CAP_"+strings.ToUpper(c.String())] {
			drop = append(drop, c)
		}
	}
	if err := capability.DropBound(drop...); err != nil {
		return fmt.Errorf("limit the bounding capability set: %w", err)
	}
	return nil
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

// setRlimit sets a limit on init, which the app inherits when it is forked.
func setRlimit(r specs.POSIXRlimit) error {
	res, ok := rlimitResources[r.Type]
	if !ok {
		return fmt.Errorf("config.json: unknown rlimit %s", r.Type)
	}
	err := unix.Setrlimit(res, &unix.Rlimit{Cur: r.Soft, Max: r.Hard})
	if errors.Is(err, unix.EPERM) {
		var cur unix.Rlimit
		unix.Getrlimit(res, &cur)
		return fmt.Errorf("set %s to %d:%d: a hard limit cannot be raised above the caller's (%d) without privilege", r.Type, r.Soft, r.Hard, cur.Max)
	}
	if err != nil {
		return fmt.Errorf("set %s to %d:%d: %w", r.Type, r.Soft, r.Hard, os.NewSyscallError("setrlimit", err))
	}
	return nil
}

// clearInheritable empties this thread's inheritable set, keeping its permitted and effective
// sets (capget(2) and capset(2) directly: nothing else of the capability state is needed).
func clearInheritable() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("clear the inheritable capabilities: %w", os.NewSyscallError("capget", err))
	}
	data[0].Inheritable, data[1].Inheritable = 0, 0
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("clear the inheritable capabilities: %w", os.NewSyscallError("capset", err))
	}
	return nil
}
