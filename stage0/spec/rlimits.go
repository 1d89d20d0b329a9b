package spec

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// rlimitNames are the resources --ulimit takes, by the names ulimit(1) and podman use.
var rlimitNames = map[string]string{
	"as": "RLIMIT_AS", "core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA",
	"fsize": "RLIMIT_FSIZE", "locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK",
	"msgqueue": "RLIMIT_MSGQUEUE", "nice": "RLIMIT_NICE", "nofile": "RLIMIT_NOFILE",
	"nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS", "rtprio": "RLIMIT_RTPRIO",
	"rttime": "RLIMIT_RTTIME", "sigpending": "RLIMIT_SIGPENDING", "stack": "RLIMIT_STACK",
}

// ParseUlimit parses a --ulimit value, NAME=SOFT[:HARD], where a limit is a number or
// "unlimited"; HARD defaults to SOFT.
func ParseUlimit(s string) (specs.POSIXRlimit, error) {
	name, value, ok := strings.Cut(s, "=")
	typ, known := rlimitNames[strings.ToLower(name)]
	if !ok || !known {
		return specs.POSIXRlimit{}, fmt.Errorf("--ulimit %q: use NAME=SOFT[:HARD] with NAME one of as, core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack", s)
	}
	softText, hardText, hasHard := strings.Cut(value, ":")
	soft, err := parseLimit(softText)
	if err != nil {
		return specs.POSIXRlimit{}, fmt.Errorf("--ulimit %q: %w", s, err)
	}
	hard := soft
	if hasHard {
		if hard, err = parseLimit(hardText); err != nil {
			return specs.POSIXRlimit{}, fmt.Errorf("--ulimit %q: %w", s, err)
		}
	}
	if soft > hard {
		return specs.POSIXRlimit{}, fmt.Errorf("--ulimit %q: the soft limit is above the hard one", s)
	}
	return specs.POSIXRlimit{Type: typ, Soft: soft, Hard: hard}, nil
}

func parseLimit(s string) (uint64, error) {
	if s == "unlimited" || s == "-1" {
		return math.MaxUint64, nil // RLIM_INFINITY
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number or unlimited", s)
	}
	return n, nil
}
