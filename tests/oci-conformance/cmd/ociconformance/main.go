// Command ociconformance runs the validation programs of runtime-tools v0.9.0 against an OCI
// runtime, judges each from its TAP output, prints a table and compares it with a list of
// programs expected to pass. tests/scripts/oci-conformance.sh builds the programs and runs it as
// an unprivileged user; README.md beside go.mod says how each program is judged.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
)

type config struct {
	dir      string // NAME.t, runtimetest and rootfs-amd64.tar.gz
	runtime  string // absolute path of the runtime
	run      *regexp.Regexp
	expected string
	update   bool
	timeout  time.Duration
	logs     string
	verbose  bool
}

func main() {
	os.Exit(realMain())
}

func realMain() int {
	var c config
	var runPattern string
	self, _ := os.Executable()
	flag.StringVar(&c.dir, "dir", filepath.Dir(self), "directory of the programs (NAME.t), runtimetest and rootfs-amd64.tar.gz")
	flag.StringVar(&c.runtime, "runtime", os.Getenv("RUNTIME"), "the runtime to judge: one executable, found in $PATH if no path (default $RUNTIME, else kite-oci)")
	flag.StringVar(&runPattern, "run", "", "run only the programs whose name matches this regular expression")
	flag.StringVar(&c.expected, "expected", "", "file listing the programs that must pass (none: no comparison)")
	flag.BoolVar(&c.update, "update", false, "rewrite the -expected file with the programs that passed")
	flag.DurationVar(&c.timeout, "timeout", 120*time.Second, "time-out of one program (a time-out is a failure)")
	flag.StringVar(&c.logs, "logs", "", "directory where to write each program's output as NAME.log")
	flag.BoolVar(&c.verbose, "v", false, "also list the skipped checks of each program")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "ociconformance: no arguments expected, flags only")
		return 2
	}
	var err error
	if c.run, err = regexp.Compile(runPattern); err != nil {
		fmt.Fprintln(os.Stderr, "ociconformance: -run:", err)
		return 2
	}
	if c.update && c.expected == "" {
		fmt.Fprintln(os.Stderr, "ociconformance: -update needs -expected")
		return 2
	}
	if err := check(&c); err != nil {
		fmt.Fprintln(os.Stderr, "ociconformance:", err)
		return 2
	}
	names, err := programs(c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ociconformance:", err)
		return 2
	}
	results, interrupted, err := runAll(c, names)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ociconformance:", err)
		return 2
	}
	applyGate(results)
	fmt.Printf("runtime: %s\n", c.runtime)
	printTable(os.Stdout, results, c.verbose)
	bad := compare(c, results)
	if interrupted {
		fmt.Println("interrupted: not every program ran")
		return 1
	}
	if bad {
		return 1
	}
	return 0
}

// check refuses root and fills in the runtime's path. As root, the runtimes keep their state in
// directories shared with the host (/run/runc, /run/crun), so the clean-up between programs, which
// deletes every container the runtime lists, could delete containers that are not the run's.
func check(c *config) error {
	if os.Geteuid() == 0 {
		return errors.New("run as an unprivileged user (tests/scripts/oci-conformance.sh does, as root)")
	}
	if c.runtime == "" {
		c.runtime = "kite-oci"
	}
	// The programs find RUNTIME with exec.LookPath and add their arguments: it must be one
	// executable, and an absolute path keeps it the same in every program's directory.
	path, err := exec.LookPath(c.runtime)
	if err != nil {
		return fmt.Errorf("runtime: %w", err)
	}
	if c.runtime, err = filepath.Abs(path); err != nil {
		return err
	}
	for _, f := range []string{"runtimetest", "rootfs-amd64.tar.gz"} {
		if _, err := os.Stat(filepath.Join(c.dir, f)); err != nil {
			return fmt.Errorf("-dir %s has no %s (the programs copy it from their directory)", c.dir, f)
		}
	}
	return nil
}

// programs lists the programs (NAME.t in -dir) that -run selects, the gate first when a mustFail
// program is among them and the gate is not, so that the mustFail rule can be applied.
func programs(c config) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(c.dir, "*.t"))
	if err != nil {
		return nil, err
	}
	var all, names []string
	for _, f := range files {
		all = append(all, strings.TrimSuffix(filepath.Base(f), ".t"))
	}
	needGate := false
	for _, n := range all {
		if c.run.MatchString(n) {
			names = append(names, n)
			needGate = needGate || mustFail[n]
		}
	}
	if needGate && !slices.Contains(names, gate) && slices.Contains(all, gate) {
		names = append([]string{gate}, names...)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no program in %s matches -run %q", c.dir, c.run)
	}
	return names, nil
}

// runAll runs the programs one after the other in a scratch directory of its own: the runtime's
// XDG_RUNTIME_DIR (its default state directory) and each program's TMPDIR (the bundles) are in
// it, and it is removed at the end. SIGINT and SIGTERM stop the run after the current program's
// clean-up.
func runAll(c config, names []string) (results []result, interrupted bool, err error) {
	if err := becomeSubreaper(); err != nil {
		return nil, false, fmt.Errorf("cannot become a child subreaper: %w", err)
	}
	// Short names: a runtime's sockets live under XDG_RUNTIME_DIR/RUNTIME/ID (ID a 36-character
	// UUID), and a socket's path has at most 107 bytes.
	scratch, err := os.MkdirTemp("", "occ.")
	if err != nil {
		return nil, false, err
	}
	defer func() {
		if err := os.RemoveAll(scratch); err != nil {
			fmt.Fprintf(os.Stderr, "ociconformance: cannot remove %s: %v\n", scratch, err)
		}
	}()
	xdg := filepath.Join(scratch, "xdg")
	if err := os.Mkdir(xdg, 0o700); err != nil {
		return nil, false, err
	}
	cwd, err := workDir(c.dir, scratch)
	if err != nil {
		return nil, false, err
	}
	if c.logs != "" {
		if err := os.MkdirAll(c.logs, 0o755); err != nil {
			return nil, false, err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := testEnv(c.runtime, xdg)
	if v, err := runtimeCmd(c.runtime, env, "--version"); err == nil {
		fmt.Fprintf(os.Stderr, "runtime: %s (%s)\n", c.runtime, firstLine(v))
	}
	for i, name := range names {
		if ctx.Err() != nil {
			return results, true, nil
		}
		r, err := runOne(ctx, c, name, scratch, xdg, cwd)
		if err != nil {
			return results, false, err
		}
		fmt.Fprintf(os.Stderr, "[%d/%d] %-34s %s\n", i+1, len(names), name, r.status)
		results = append(results, r)
	}
	return results, ctx.Err() != nil, nil
}

// workDir makes the programs' working directory, where they find runtimetest and the root file
// system tarball. runtimetest is copied: the programs copy it into each bundle with
// github.com/mrunalp/fileutils, which gives the copy the owner of the original, and only a copy
// of the runner's user's own can be given that owner by that user.
func workDir(dir, scratch string) (string, error) {
	cwd := filepath.Join(scratch, "cwd")
	if err := os.Mkdir(cwd, 0o755); err != nil {
		return "", err
	}
	data, err := os.ReadFile(filepath.Join(dir, "runtimetest"))
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(cwd, "runtimetest"), data, 0o755); err != nil {
		return "", err
	}
	tarball := "rootfs-amd64.tar.gz"
	return cwd, os.Symlink(filepath.Join(dir, tarball), filepath.Join(cwd, tarball))
}

// testEnv is the runner's environment with RUNTIME, XDG_RUNTIME_DIR and (when tmp is not "")
// TMPDIR set.
func testEnv(runtime, xdg string, tmp ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != "RUNTIME" && k != "XDG_RUNTIME_DIR" && k != "TMPDIR" {
			env = append(env, kv)
		}
	}
	env = append(env, "RUNTIME="+runtime, "XDG_RUNTIME_DIR="+xdg)
	for _, t := range tmp {
		env = append(env, "TMPDIR="+t)
	}
	return env
}

// runOne runs one program with its own TMPDIR, then removes what it left behind and judges it.
func runOne(ctx context.Context, c config, name, scratch, xdg, cwd string) (result, error) {
	tmp := filepath.Join(scratch, "tmp-"+name)
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return result{}, err
	}
	env := testEnv(c.runtime, xdg, tmp)
	tctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cmd := exec.CommandContext(tctx, filepath.Join(c.dir, name+".t"))
	cmd.Dir = cwd
	cmd.Env = env
	// The output goes to files, not pipes, so that a process the program leaves behind with them
	// open does not hold the wait until the time-out (it is killed below, as a stray).
	outFile, errFile := filepath.Join(scratch, "stdout"), filepath.Join(scratch, "stderr")
	var err error
	if cmd.Stdout, err = os.Create(outFile); err != nil {
		return result{}, err
	}
	defer cmd.Stdout.(*os.File).Close()
	if cmd.Stderr, err = os.Create(errFile); err != nil {
		return result{}, err
	}
	defer cmd.Stderr.(*os.File).Close()
	// The program and the runtime commands it starts share a process group, killed as one on a
	// time-out.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	start := time.Now()
	err = cmd.Run()
	took := time.Since(start)
	timedOut := errors.Is(tctx.Err(), context.DeadlineExceeded)
	exitCode := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		exitCode = ee.ExitCode()
	} else if err != nil && !timedOut {
		return result{}, fmt.Errorf("%s: %w", name, err)
	}
	if timedOut && exitCode == 0 {
		exitCode = -1
	}

	// Clean-up: containers first (the runtime stops their processes), then any process left,
	// then the bundles.
	notes := removeContainers(c.runtime, env)
	notes = append(notes, killStrays()...)
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		notes = append(notes, fmt.Sprintf("removed %d files or bundles left in TMPDIR (%s...)", len(left), left[0].Name()))
	}
	if err := os.RemoveAll(tmp); err != nil {
		notes = append(notes, "cannot remove the bundles: "+err.Error())
	}

	stdout, _ := os.ReadFile(outFile)
	stderr, _ := os.ReadFile(errFile)
	r := judge(name, exitCode, timedOut, string(stdout), string(stderr))
	for _, n := range notes {
		fmt.Fprintf(os.Stderr, "ociconformance: %s: clean-up: %s\n", name, n)
	}
	if c.logs != "" {
		log := fmt.Sprintf("program: %s.t\nruntime: %s\nexit: %d (time-out: %v) after %s\nresult: %s %s\nclean-up: %s\n--- stdout\n%s\n--- stderr\n%s",
			name, c.runtime, exitCode, timedOut, took.Round(time.Millisecond), r.status, r.why,
			strings.Join(notes, "; "), stdout, stderr)
		if err := os.WriteFile(filepath.Join(c.logs, name+".log"), []byte(log), 0o644); err != nil {
			return r, err
		}
	}
	return r, nil
}
