package spec

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// cpuPeriod is the cgroup CPU period kite uses: a quota of cpuPeriod is one CPU.
const cpuPeriod = 100000

// ParseMemory reads a --memory size: bytes, or a number with k, m, g or t (powers of 1024, with
// an optional i and b: 512m, 1Gi, 64MB).
func ParseMemory(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "b"), "i")
	mult := int64(1)
	if t != "" {
		if i := strings.IndexByte("kmgt", t[len(t)-1]); i >= 0 {
			mult = int64(1) << (10 * (i + 1))
			t = t[:len(t)-1]
		}
	}
	n, err := strconv.ParseFloat(t, 64)
	// The checks are written so that NaN fails them (every comparison with NaN is false), and
	// 2^63, which is float64(math.MaxInt64), is out of range: a size must be a whole byte at least,
	// since 0 means no limit.
	bytes := n * float64(mult)
	if err != nil || !(bytes >= 1 && bytes < math.MaxInt64) {
		return 0, fmt.Errorf("--memory %q: give a size from 1 byte up, such as 512m or 2g", s)
	}
	return int64(bytes), nil
}

// ParseCPU reads a --cpu share as rkt and podman write it: millicores (500m) or CPUs (1.5), and
// returns the quota per cpuPeriod.
func ParseCPU(s string) (int64, error) {
	t := strings.TrimSpace(s)
	scale := float64(cpuPeriod)
	if m, ok := strings.CutSuffix(t, "m"); ok {
		t, scale = m, cpuPeriod/1000
	}
	n, err := strconv.ParseFloat(t, 64)
	// The kernel takes no quota under 1 ms. The range is checked on the float, before converting:
	// converting an infinite or huge float to int64 is implementation-defined in Go.
	quota := n * scale
	if err != nil || !(quota >= 1000 && quota < math.MaxInt64) {
		return 0, fmt.Errorf("--cpu %q: give CPUs (1.5) or millicores (500m), at least 10m", s)
	}
	return int64(quota), nil
}

// resources builds config.json's limits; nil when there are none.
func resources(opts Options) *specs.LinuxResources {
	if opts.Memory == 0 && opts.CPUQuota == 0 && opts.PidsLimit == 0 {
		return nil
	}
	r := &specs.LinuxResources{}
	if opts.Memory != 0 {
		r.Memory = &specs.LinuxMemory{Limit: &opts.Memory}
	}
	if opts.CPUQuota != 0 {
		period := uint64(cpuPeriod)
		r.CPU = &specs.LinuxCPU{Quota: &opts.CPUQuota, Period: &period}
	}
	if opts.PidsLimit != 0 {
		r.Pids = &specs.LinuxPids{Limit: &opts.PidsLimit}
	}
	return r
}
