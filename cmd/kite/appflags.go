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

// flagSource is where an app's flags are read: the command's context, or an app's own flags over
// it (layered).
type flagSource interface {
	String(name string) string
	Bool(name string) bool
	Int(name string) int
	StringSlice(name string) []string
	IsSet(name string) bool
}

// layered reads an app's own flags first, then the flags given before the first image.
type layered struct{ own, shared flagSource }

func (l layered) pick(name string) flagSource {
	if l.own.IsSet(name) {
		return l.own
	}
	return l.shared
}

func (l layered) String(name string) string { return l.pick(name).String(name) }
func (l layered) Bool(name string) bool     { return l.pick(name).Bool(name) }
func (l layered) Int(name string) int       { return l.pick(name).Int(name) }
func (l layered) IsSet(name string) bool    { return l.own.IsSet(name) || l.shared.IsSet(name) }

// StringSlice joins both: repeatable flags add up.
func (l layered) StringSlice(name string) []string {
	return append(append([]string{}, l.shared.StringSlice(name)...), l.own.StringSlice(name)...)
}

// appOptions reads an app's flags (from src) and the pod's (from c) into spec.Options. Volumes
// are the pod's, read by podVolumes.
func appOptions(c *cli.Context, src flagSource) (spec.Options, error) {
	opts := spec.Options{
		Exec:           src.String("exec"),
		User:           src.String("user"),
		Group:          src.String("group"),
		SetEnv:         append(src.StringSlice("set-env"), src.StringSlice("e")...),
		WorkingDir:     src.String("working-dir"),
		ReadonlyRootfs: src.Bool("readonly-rootfs"),
	}
	insecure, err := insecureOptions(c)
	if err != nil {
		return opts, err
	}
	opts.AllCapabilities = insecure["capabilities"]
	opts.UnmaskedPaths = insecure["paths"]
	opts.NoSeccomp = insecure["seccomp"]
	opts.Seccomp = src.String("seccomp")
	opts.AllowNewPrivileges = !src.Bool("no-new-privileges")
	opts.CapsRetain = splitList(src.StringSlice("caps-retain"), src.StringSlice("cap-add"))
	opts.CapsRemove = splitList(src.StringSlice("caps-remove"), src.StringSlice("cap-drop"))
	for _, u := range src.StringSlice("ulimit") {
		r, err := spec.ParseUlimit(u)
		if err != nil {
			return opts, err
		}
		opts.Rlimits = append(opts.Rlimits, r)
	}
	if src.IsSet("oom-score-adj") {
		adj := src.Int("oom-score-adj")
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
	if src.Bool("inherit-env") {
		opts.Inherited = withoutKeys(os.Environ(), hostOnlyEnv)
	}
	for _, f := range src.StringSlice("set-env-file") {
		env, err := readEnvFile(f)
		if err != nil {
			return opts, err
		}
		opts.EnvFile = append(opts.EnvFile, env...)
	}
	if list := src.String("supplementary-gids"); list != "" {
		for _, g := range strings.Split(list, ",") {
			gid, err := strconv.ParseUint(strings.TrimSpace(g), 10, 32)
			if err != nil {
				return opts, fmt.Errorf("--supplementary-gids %q: %q is not a group id", list, g)
			}
			opts.SupplementaryGIDs = append(opts.SupplementaryGIDs, uint32(gid))
		}
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
