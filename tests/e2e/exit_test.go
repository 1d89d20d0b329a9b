package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestExitStatus checks kite's exit status contract (docs/architecture.md, "Signals and exit
// status"): the app's own code, 128+N for signal N, 126 and 127 for an app that cannot run, and
// 125 for kite's own failures.
func TestExitStatus(t *testing.T) {
	dir := sharedDir(t, "busybox")
	busybox := layoutRef("busybox")
	cases := []struct {
		name string
		args []string
		code int
		// stdout, when set, is the app's whole output.
		stdout string
		// stderr, when set, must appear in kite's stderr (kite's own message for 125-127).
		stderr string
	}{
		{name: "app exits 7", args: runArgs(busybox, "sh", "-c", "echo hi; exit 7"), code: 7, stdout: "hi\n"},
		{name: "true", args: runArgs(busybox, "true"), code: 0, stdout: ""},
		{name: "false", args: runArgs(busybox, "false"), code: 1, stdout: ""},
		{name: "probe exit 42", args: runArgs(busybox, "probe", "exit", "42"), code: 42},
		{name: "app not executable", args: runArgs(busybox, "/etc/passwd"), code: 126, stderr: "/etc/passwd"},
		{name: "app not found", args: runArgs(busybox, "/nonexistent"), code: 127, stderr: "/nonexistent"},
		{name: "app not in PATH", args: runArgs(busybox, "no-such-command"), code: 127, stderr: "no-such-command"},
		{name: "app killed by SIGKILL", args: runArgs(busybox, "sh", "-c", "kill -9 $$"), code: 137},
		{name: "app killed by SIGTERM", args: runArgs(busybox, "sh", "-c", "kill -TERM $$"), code: 143},
		{name: "unknown tag", args: runArgs(layoutRef("nosuchtag"), "true"), code: 125, stderr: "nosuchtag"},
		{name: "bad flag", args: append([]string{"run", "--bogus"}, runArgs(busybox, "true")[1:]...), code: 125, stderr: "bogus"},
		{name: "bad global flag", args: append([]string{"--bogus"}, runArgs(busybox, "true")...), code: 125, stderr: "bogus"},
		{name: "unknown command", args: []string{"frobnicate"}, code: 125, stderr: "frobnicate"},
		{name: "no image", args: []string{"run", "--insecure-options=image"}, code: 125, stderr: "image"},
		{name: "arguments without --", args: []string{"run", busybox, "true"}, code: 125, stderr: "--"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := kite(t, dir, c.args...)
			wantCode(t, r, c.code, "kite "+strings.Join(c.args, " "))
			if c.stdout != "" && r.Stdout != c.stdout {
				t.Errorf("stdout = %q, want %q", r.Stdout, c.stdout)
			}
			if c.stderr != "" && !strings.Contains(r.Stderr, c.stderr) {
				t.Errorf("stderr does not mention %q: %q", c.stderr, r.Stderr)
			}
		})
	}
}

// TestExecReplacesEntrypoint checks that --exec runs another program with the given arguments.
func TestExecReplacesEntrypoint(t *testing.T) {
	dir := sharedDir(t, "busybox")
	r := kite(t, dir, "run", "--exec", "/bin/echo", layoutRef("busybox"), "--", "hello")
	wantCode(t, r, 0, "kite run --exec /bin/echo")
	if r.Stdout != "hello\n" {
		t.Fatalf("stdout = %q, want %q", r.Stdout, "hello\n")
	}
}

// TestVersionJSON checks `kite version --format json`.
func TestVersionJSON(t *testing.T) {
	r := kite(t, newScratchDir(t, "version-"), "version", "--format", "json")
	wantCode(t, r, 0, "kite version --format json")
	var v map[string]any
	if err := json.Unmarshal([]byte(r.Stdout), &v); err != nil {
		t.Fatalf("kite version --format json printed invalid JSON: %v\n%s", err, r)
	}
	if s, _ := v["version"].(string); s == "" {
		t.Fatalf("no version in %s", r.Stdout)
	}
}
