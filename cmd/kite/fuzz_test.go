package main

// Fuzz targets for the grammars kite's command line parses itself: the app list of kite run
// (IMAGE [FLAGS] [-- ARGS] --- ...), app names, --set-env-file files, kite oci kill's signals
// and --preserve-fds. `make unit` runs their seeds; `make fuzz` fuzzes each for $(FUZZTIME).

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// FuzzSplitApps checks kite run's app list, given as NUL-separated arguments: an accepted list
// has one app per "---"-separated part, each with its first argument as image (never empty or
// "--"), exactly the arguments after its first "--", and flags only when some were given; and
// appNames gives the apps distinct names that stay one directory below the pod's apps.
func FuzzSplitApps(f *testing.F) {
	for _, args := range [][]string{
		{"oci:x"}, {"oci:x", "--"}, {"oci:x", "--", "sh", "-c", "exit 7"}, {"oci:x", "--", "--", "a"},
		{"oci:x", "--user", "7", "--", "id", "---", "oci:y", "-u", "8", "---", "oci:z"}, {"oci:x", "sh"}, {"oci:x", "--nosuchflag"},
		{"oci:x", "---"}, {"---", "oci:x"}, {""}, {"oci:a", "---", "oci:b", "--name", "web", "---", "oci:c"},
		{"oci:a", "--name", "x", "---", "oci:b", "--name", "x"}, {"oci:a", "--name", "../x"}, {"oci:a", "--name=", "--"},
		{"oci:a", "-e", "A=1", "--set-env", "B=2", "-it", "--", "---"}, {"oci:a", "--help"}, {"oci:a", "-v", "/x:/y", "--mount", "volume=a,target=/b"},
		{"oci:a", "--name", "app", "---", "oci:b"}, {"oci:a", "--name", "app-2", "---", "oci:b", "---", "oci:c"},
	} {
		f.Add(strings.Join(args, "\x00"))
	}
	f.Fuzz(func(t *testing.T, joined string) {
		var args []string
		if joined != "" {
			args = strings.Split(joined, "\x00")
		}
		apps, err := splitApps(args)
		if err != nil {
			return
		}
		parts := [][]string{}
		for rest := args; ; {
			i := slices.Index(rest, "---")
			if i < 0 {
				parts = append(parts, rest)
				break
			}
			parts, rest = append(parts, rest[:i]), rest[i+1:]
		}
		if len(apps) != len(parts) {
			t.Fatalf("splitApps(%q) = %d apps, want %d", args, len(apps), len(parts))
		}
		for i, a := range apps {
			p := parts[i]
			if a.image == "" || a.image == "--" || a.image != p[0] {
				t.Fatalf("splitApps(%q): app %d has image %q", args, i, a.image)
			}
			flags := p[1:]
			var want []string
			if j := slices.Index(flags, "--"); j >= 0 {
				flags, want = flags[:j], p[1+j+1:]
			}
			if !slices.Equal(a.args, want) || (want == nil) != (a.args == nil) {
				t.Fatalf("splitApps(%q): app %d has arguments %q, want %q", args, i, a.args, want)
			}
			if (a.flags != nil) != (len(flags) > 0) {
				t.Fatalf("splitApps(%q): app %d has flags %v for %q", args, i, a.flags != nil, flags)
			}
		}
		defaults := make([]string, len(apps))
		for i := range defaults {
			defaults[i] = "app"
		}
		names, err := appNames(apps, defaults)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, n := range names {
			if n == "" || seen[n] || filepath.Base(n) != n || n == "." || n == ".." {
				t.Fatalf("appNames(%q) = %q", args, names)
			}
			seen[n] = true
		}
	})
}

// FuzzReadEnvFile checks --set-env-file: every variable read is a KEY=VALUE line of the file with
// a non-empty key, trimmed, and no comment.
func FuzzReadEnvFile(f *testing.F) {
	for _, s := range []string{
		"A=1\nB=2\n", "# comment\n\nA=1", "=x\n", "novalue\n", "  A = 1  \r\n", "A=1=2\n#B=2\n", "A=\n", "\x00=1\n",
		"A=" + strings.Repeat("x", 70000) + "\n", " # not a comment?\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "app.env")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		env, err := readEnvFile(p)
		if err != nil {
			return
		}
		lines := strings.Split(string(data), "\n")
		if len(env) > len(lines) {
			t.Fatalf("readEnvFile(%q) = %d variables from %d lines", data, len(env), len(lines))
		}
		for _, kv := range env {
			k, _, ok := strings.Cut(kv, "=")
			if !ok || k == "" || strings.HasPrefix(kv, "#") || strings.TrimSpace(kv) != kv || strings.Contains(kv, "\n") {
				t.Fatalf("readEnvFile(%q) gave %q", data, kv)
			}
		}
	})
}

// FuzzParseSignal checks kite oci kill's signal: what it accepts is a signal of Linux (1 to 64),
// by number or by the name it has.
func FuzzParseSignal(f *testing.F) {
	for _, s := range []string{"TERM", "SIGKILL", "sigint", "9", "0", "64", "65", "-1", "+9", "SIG", "", "SIGRTMIN", "RTMIN+1", "KILL ", "09"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sig, err := parseSignal(s)
		if err != nil {
			return
		}
		if sig < 1 || sig > 64 {
			t.Fatalf("parseSignal(%q) = %d", s, sig)
		}
		name := strings.ToUpper(s)
		if !strings.HasPrefix(name, "SIG") {
			name = "SIG" + name
		}
		if n := unix.SignalNum(name); n != 0 && n != sig {
			t.Fatalf("parseSignal(%q) = %d, but %s is %d", s, sig, name, n)
		}
	})
}

// FuzzCheckPreservedFDs checks --preserve-fds: an accepted count is not negative, and 3+count, the
// app's descriptor count, does not overflow (an overflow skips the check of every descriptor).
func FuzzCheckPreservedFDs(f *testing.F) {
	for _, n := range []int{0, 1, 2, -1, math.MaxInt, math.MaxInt - 3, math.MaxInt - 2, math.MinInt, 1 << 31} {
		f.Add(n)
	}
	f.Fuzz(func(t *testing.T, n int) {
		if checkPreservedFDs(n) != nil {
			return
		}
		if n < 0 {
			t.Fatalf("checkPreservedFDs(%d) accepted a negative count", n)
		}
		if 3+n-1 > math.MaxInt32 {
			t.Fatalf("checkPreservedFDs(%d) accepted descriptors beyond the largest there can be", n)
		}
	})
}
