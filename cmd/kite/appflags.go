package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/kite-runtime/kite/stage0/spec"
	"github.com/urfave/cli/v2"
)

// appOptions reads the app's flags of kite run into spec.Options.
func appOptions(c *cli.Context) (spec.Options, error) {
	opts := spec.Options{
		Exec:           c.String("exec"),
		User:           c.String("user"),
		Group:          c.String("group"),
		SetEnv:         append(c.StringSlice("set-env"), c.StringSlice("e")...),
		WorkingDir:     c.String("working-dir"),
		ReadonlyRootfs: c.Bool("readonly-rootfs"),
	}
	insecure, err := insecureOptions(c)
	if err != nil {
		return opts, err
	}
	opts.AllCapabilities = insecure["capabilities"]
	opts.UnmaskedPaths = insecure["paths"]
	opts.NoSeccomp = insecure["seccomp"]
	opts.Seccomp = c.String("seccomp")
	opts.AllowNewPrivileges = !c.Bool("no-new-privileges")
	opts.CapsRetain = splitList(c.StringSlice("caps-retain"), c.StringSlice("cap-add"))
	opts.CapsRemove = splitList(c.StringSlice("caps-remove"), c.StringSlice("cap-drop"))
	for _, u := range c.StringSlice("ulimit") {
		r, err := spec.ParseUlimit(u)
		if err != nil {
			return opts, err
		}
		opts.Rlimits = append(opts.Rlimits, r)
	}
	if c.IsSet("oom-score-adj") {
		adj := c.Int("oom-score-adj")
		if adj < -1000 || adj > 1000 {
			return opts, fmt.Errorf("--oom-score-adj %d: must be between -1000 and 1000", adj)
		}
		opts.OOMScoreAdj = &adj
	}
	if v := c.String("memory"); v != "" {
		if opts.Memory, err = spec.ParseMemory(v); err != nil {
			return opts, err
		}
	}
	if v := c.String("cpu"); v != "" {
		if opts.CPUQuota, err = spec.ParseCPU(v); err != nil {
			return opts, err
		}
	}
	if c.IsSet("pids-limit") {
		if opts.PidsLimit = c.Int64("pids-limit"); opts.PidsLimit < 1 {
			return opts, fmt.Errorf("--pids-limit %d: give at least 1", opts.PidsLimit)
		}
	}
	if c.Bool("inherit-env") {
		opts.Inherited = os.Environ()
	}
	for _, f := range c.StringSlice("set-env-file") {
		env, err := readEnvFile(f)
		if err != nil {
			return opts, err
		}
		opts.EnvFile = append(opts.EnvFile, env...)
	}
	if list := c.String("supplementary-gids"); list != "" {
		for _, g := range strings.Split(list, ",") {
			gid, err := strconv.ParseUint(strings.TrimSpace(g), 10, 32)
			if err != nil {
				return opts, fmt.Errorf("--supplementary-gids %q: %q is not a group id", list, g)
			}
			opts.SupplementaryGIDs = append(opts.SupplementaryGIDs, uint32(gid))
		}
	}
	for i, v := range append(c.StringSlice("volume"), c.StringSlice("v")...) {
		vol, point, err := spec.ParseVolume(v, i)
		if err != nil {
			return opts, err
		}
		opts.Volumes = append(opts.Volumes, vol)
		if point != nil {
			opts.MountPoints = append(opts.MountPoints, *point)
		}
	}
	for _, m := range c.StringSlice("mount") {
		point, err := spec.ParseMount(m)
		if err != nil {
			return opts, err
		}
		opts.MountPoints = append(opts.MountPoints, point)
	}
	return opts, nil
}

// readEnvFile reads KEY=VALUE lines; blank lines and lines starting with # are skipped.
func readEnvFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--set-env-file: %w", err)
	}
	defer f.Close()
	var env []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, _, ok := strings.Cut(line, "="); !ok || k == "" {
			return nil, fmt.Errorf("--set-env-file %s:%d: %q is not KEY=VALUE", path, n, line)
		}
		env = append(env, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--set-env-file %s: %w", path, err)
	}
	return env, nil
}

// splitList joins the comma-separated values of repeated flags into one list.
func splitList(flags ...[]string) []string {
	var out []string
	for _, values := range flags {
		for _, v := range values {
			for _, item := range strings.Split(v, ",") {
				if item = strings.TrimSpace(item); item != "" {
					out = append(out, item)
				}
			}
		}
	}
	return out
}
