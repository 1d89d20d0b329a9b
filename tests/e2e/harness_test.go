package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kite-runtime/kite/tests/probe/report"
)

// runTimeout is a safety net for one kite run: no test asserts how long anything takes, but a
// hung pod must fail its test rather than the whole suite's -test.timeout.
const runTimeout = 60 * time.Second

// waitTimeout bounds waiting for a line of output or for a process to go away.
const waitTimeout = 30 * time.Second

// result is how one kite invocation ended.
type result struct {
	// Code is the exit status; 128+N when kite itself was killed by signal N.
	Code     int
	Signaled bool
	Stdout   string
	Stderr   string
}

func (r result) String() string {
	return fmt.Sprintf("exit status %d\n--- stdout:\n%s\n--- stderr:\n%s", r.Code, clip(r.Stdout), clip(r.Stderr))
}

// clip keeps failure messages readable when an app printed a lot.
func clip(s string) string {
	const max = 4000
	if len(s) <= max {
		return s
	}
	return s[:max/2] + fmt.Sprintf("\n[... %d bytes ...]\n", len(s)-max) + s[len(s)-max/2:]
}

// options adjusts one kite invocation.
type options struct {
	// env holds KEY=VALUE pairs that replace the test's own variables of the same name.
	env []string
	// stdout and stderr, when set, are given to kite as they are (e.g. regular files) instead of
	// the pipes the harness reads.
	stdout, stderr *os.File
	// extraFiles are inherited by kite as fds 3, 4, ...
	extraFiles []*os.File
	// stdin, when set, is kite's stdin; otherwise kite reads /dev/null.
	stdin *os.File
	// bin, when set, is the directory of the kite binaries to run instead of binDir.
	bin string
}

// proc is a running kite.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{}
	timedOut       atomic.Bool
	timer          *time.Timer
	res            result
	err            error
}

// startKite starts `kite --dir dir ARGS...` in a process group of its own, so that the safety-net
// timeout can kill it and whatever it started.
func startKite(dir string, o *options, args ...string) (*proc, error) {
	if o == nil {
		o = &options{}
	}
	bin := binDir
	if o.bin != "" {
		bin = o.bin
	}
	cmd := exec.Command(filepath.Join(bin, "kite"), append([]string{"--dir", dir}, args...)...)
	cmd.Env = mergeEnv(os.Environ(), o.env)
	p := &proc{cmd: cmd, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if o.stdout != nil {
		cmd.Stdout = o.stdout
	}
	if o.stderr != nil {
		cmd.Stderr = o.stderr
	}
	cmd.ExtraFiles = o.extraFiles
	if o.stdin != nil {
		cmd.Stdin = o.stdin
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// If something of the pod kept kite's stdout open after kite exited, don't wait forever.
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start kite: %w", err)
	}
	p.timer = time.AfterFunc(runTimeout, func() {
		p.timedOut.Store(true)
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	})
	go func() {
		err := cmd.Wait()
		p.timer.Stop()
		p.res = result{Stdout: p.stdout.String(), Stderr: p.stderr.String()}
		ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		var ee *exec.ExitError
		switch {
		case ws.Signaled():
			p.res.Code, p.res.Signaled = 128+int(ws.Signal()), true
		case err == nil || errors.As(err, &ee):
			p.res.Code = ws.ExitStatus()
		default:
			p.err = err
		}
		if p.timedOut.Load() {
			p.err = fmt.Errorf("kite %s did not end within %s and was killed", strings.Join(args, " "), runTimeout)
		}
		close(p.done)
	}()
	return p, nil
}

// wait waits for kite to end.
func (p *proc) wait() (result, error) {
	<-p.done
	return p.res, p.err
}

// kill ends a kite that is still running, with its process group.
func (p *proc) kill() {
	select {
	case <-p.done:
	default:
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// runKite runs kite to its end.
func runKite(dir string, o *options, args ...string) (result, error) {
	p, err := startKite(dir, o, args...)
	if err != nil {
		return result{}, err
	}
	return p.wait()
}

// start starts kite for a test, which it kills should the test end first.
func start(t *testing.T, dir string, o *options, args ...string) *proc {
	t.Helper()
	p, err := startKite(dir, o, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.kill)
	return p
}

// finish waits for a kite the test started.
func finish(t *testing.T, p *proc) result {
	t.Helper()
	r, err := p.wait()
	if err != nil {
		t.Fatalf("%v\n%s", err, r)
	}
	return r
}

// kite runs `kite --dir dir ARGS...` to its end.
func kite(t *testing.T, dir string, args ...string) result {
	t.Helper()
	return finish(t, start(t, dir, nil, args...))
}

// kiteWith runs kite with options to its end.
func kiteWith(t *testing.T, dir string, o *options, args ...string) result {
	t.Helper()
	return finish(t, start(t, dir, o, args...))
}

// runArgs is `run REF [-- APP...]`: local images need no signature.
func runArgs(ref string, app ...string) []string {
	args := []string{"run", ref}
	if len(app) > 0 {
		args = append(append(args, "--"), app...)
	}
	return args
}

// runImage runs the app in the image ref.
func runImage(t *testing.T, dir, ref string, app ...string) result {
	t.Helper()
	return kite(t, dir, runArgs(ref, app...)...)
}

// wantCode fails the test unless kite exited with want.
func wantCode(t *testing.T, r result, want int, what string) {
	t.Helper()
	if r.Code != want {
		t.Fatalf("%s: want exit status %d, got %s", what, want, r)
	}
}

// waitOutput waits until the running kite's stdout contains want.
func waitOutput(t *testing.T, p *proc, want string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !strings.Contains(p.stdout.String(), want) {
		select {
		case <-p.done:
			t.Fatalf("kite ended before printing %q: %s", want, p.res)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q on stdout within %s; stdout so far: %q, stderr: %q", want, waitTimeout, p.stdout.String(), p.stderr.String())
		}
	}
}

// probeInfo runs `probe info` in the image and decodes what the app saw.
func probeInfo(t *testing.T, dir, ref string) report.Report {
	t.Helper()
	return decodeInfo(t, runImage(t, dir, ref, "probe", "info"))
}

func decodeInfo(t *testing.T, r result) report.Report {
	t.Helper()
	wantCode(t, r, 0, "probe info")
	var rep report.Report
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		t.Fatalf("decode the probe's report: %v\n%s", err, r)
	}
	return rep
}

// probeStat runs `probe stat PATHS...` in the image and returns the stats by path. It does not
// check the exit status: a missing path makes the probe exit 1.
func probeStat(t *testing.T, dir, ref string, paths ...string) map[string]report.Stat {
	t.Helper()
	r := runImage(t, dir, ref, append([]string{"probe", "stat"}, paths...)...)
	if r.Code != 0 && r.Code != 1 {
		t.Fatalf("probe stat: want exit status 0 or 1, got %s", r)
	}
	stats := map[string]report.Stat{}
	dec := json.NewDecoder(strings.NewReader(r.Stdout))
	for dec.More() {
		var s report.Stat
		if err := dec.Decode(&s); err != nil {
			t.Fatalf("decode probe stat: %v\n%s", err, r)
		}
		stats[s.Path] = s
	}
	for _, p := range paths {
		if _, ok := stats[p]; !ok {
			t.Fatalf("probe stat printed nothing for %s: %s", p, r)
		}
	}
	return stats
}

// mergeEnv returns env with the KEY=VALUE pairs of over replacing those of the same key.
func mergeEnv(env, over []string) []string {
	keys := map[string]bool{}
	for _, kv := range over {
		k, _, _ := strings.Cut(kv, "=")
		keys[k] = true
	}
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !keys[k] {
			out = append(out, kv)
		}
	}
	return append(out, over...)
}

// syncBuffer is a bytes.Buffer that a test may read while kite writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
