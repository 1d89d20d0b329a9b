package main

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kite-runtime/kite/tests/probe/report"
)

// probeBin is the probe built the way the images get it (CGO_ENABLED=0), so these tests check the
// real artifact, including its go:debug line, rather than the test binary.
var probeBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "probe-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	probeBin = filepath.Join(dir, "probe")
	// go test puts its own GOROOT/bin first in PATH, so this is the toolchain running the test.
	// No VCS stamp: git refuses a checkout owned by another user, e.g. when run as the test user.
	build := exec.Command("go", "build", "-buildvcs=false", "-o", probeBin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build probe: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runProbe runs the probe with args and returns stdout, stderr and the exit status.
func runProbe(t *testing.T, cmd *exec.Cmd) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		return stdout.String(), stderr.String(), exitErr.ExitCode()
	case err != nil:
		t.Fatalf("run %v: %v", cmd.Args, err)
	}
	return stdout.String(), stderr.String(), 0
}

func TestStaticallyLinked(t *testing.T) {
	f, err := elf.Open(probeBin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("probe has a PT_INTERP program header: it is dynamically linked")
		}
	}
}

func TestInfo(t *testing.T) {
	cwd := t.TempDir()
	extra, err := os.Create(filepath.Join(cwd, "extra"))
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()

	cmd := exec.Command(probeBin, "info")
	cmd.Dir = cwd
	cmd.Env = []string{"Z=1", "A=2", "M=three words"}
	cmd.ExtraFiles = []*os.File{extra}
	stdout, stderr, code := runProbe(t, cmd)
	if code != 0 {
		t.Fatalf("probe info exited %d: %s", code, stderr)
	}
	if strings.Count(stdout, "\n") != 1 {
		t.Errorf("probe info printed %d lines, want one JSON line", strings.Count(stdout, "\n"))
	}
	var r report.Report
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("decode %q: %v", stdout, err)
	}

	groups, _ := unix.Getgroups()
	if groups == nil {
		groups = []int{}
	}
	uidMap, _ := os.ReadFile("/proc/self/uid_map")
	hostname, _ := os.Hostname()
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"uid", r.UID, os.Getuid()},
		{"gid", r.GID, os.Getgid()},
		{"euid", r.EUID, os.Geteuid()},
		{"egid", r.EGID, os.Getegid()},
		{"groups", fmt.Sprint(r.Groups), fmt.Sprint(groups)},
		{"uid_map", r.UIDMap, string(uidMap)},
		{"env", fmt.Sprintf("%q", r.Env), fmt.Sprintf("%q", cmd.Env)},
		{"cwd", r.Cwd, cwd},
		{"pid", r.PID, cmd.Process.Pid},
		{"ppid", r.PPID, os.Getpid()},
		{"hostname", r.Hostname, hostname},
		{"errors", len(r.Errors), 0},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	for name, v := range map[string]string{"cap_inh": r.CapInh, "cap_prm": r.CapPrm, "cap_eff": r.CapEff, "cap_bnd": r.CapBnd, "cap_amb": r.CapAmb} {
		if _, err := strconv.ParseUint(v, 16, 64); err != nil || len(v) != 16 {
			t.Errorf("%s = %q, want 16 hex digits", name, v)
		}
	}
	if r.NoNewPrivs != 0 {
		t.Errorf("no_new_privs = %d, want 0 (the test did not set it)", r.NoNewPrivs)
	}

	// Exactly stdio, the extra file and whatever the test itself inherited without CLOEXEC (exec
	// passes those on): anything else is an fd the probe opened itself.
	fds := make([]int, len(r.FDs))
	for i, fd := range r.FDs {
		fds[i] = fd.FD
	}
	want := append([]int{0, 1, 2, 3}, leakedFDs(t)...)
	slices.Sort(want)
	want = slices.Compact(want)
	if !slices.Equal(fds, want) {
		t.Errorf("fds = %+v, want fds %v", r.FDs, want)
	} else if r.FDs[3].Target != extra.Name() {
		t.Errorf("fd 3 target = %q, want %q", r.FDs[3].Target, extra.Name())
	}

	if m, ok := r.MountAt("/proc"); !ok || m.FSType != "proc" {
		t.Errorf("mount at /proc = %+v, %v; want a proc mount", m, ok)
	}
}

// leakedFDs lists this process's fds above 2 that lack FD_CLOEXEC, i.e. those every child inherits.
func leakedFDs(t *testing.T) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var fds []int
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		// The fd ReadDir used is closed by now, so fcntl fails on it and it is skipped.
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
			fds = append(fds, fd)
		}
	}
	return fds
}

func TestStat(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// Set explicitly: the umask would otherwise clear bits.
	if err := os.Chmod(file, 0o640|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink("file", link); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")

	stdout, _, code := runProbe(t, exec.Command(probeBin, "stat", file, dir, link, missing))
	if code != 1 {
		t.Errorf("exit status = %d, want 1 for a missing path", code)
	}
	uid, gid := os.Getuid(), os.Getgid()
	want := []report.Stat{
		{Path: file, UID: uid, GID: gid, Mode: "2640", Type: "file"},
		{Path: dir, UID: uid, GID: gid, Mode: "1755", Type: "dir"},
		{Path: link, UID: uid, GID: gid, Mode: "0777", Type: "symlink"},
		{Path: missing, Error: "no such file or directory"},
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), stdout)
	}
	for i, line := range lines {
		var got report.Stat
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("decode %q: %v", line, err)
		}
		if got != want[i] {
			t.Errorf("line %d = %+v, want %+v", i, got, want[i])
		}
	}
}

func TestTrap(t *testing.T) {
	for _, c := range []struct {
		arg  string
		sig  syscall.Signal
		want string
	}{
		{"TERM", unix.SIGTERM, "got SIGTERM"},
		{"SIGINT", unix.SIGINT, "got SIGINT"},
		{"hup", unix.SIGHUP, "got SIGHUP"},
		{"USR1", unix.SIGUSR1, "got SIGUSR1"},
	} {
		t.Run(c.arg, func(t *testing.T) {
			cmd := exec.Command(probeBin, "trap", c.arg)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			r := bufio.NewReader(out)
			if line, err := r.ReadString('\n'); line != "ready\n" {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("first line = %q, %v; want ready", line, err)
			}
			if err := cmd.Process.Signal(c.sig); err != nil {
				t.Fatal(err)
			}
			line, _ := r.ReadString('\n')
			if err := cmd.Wait(); err != nil {
				t.Errorf("probe trap: %v", err)
			}
			if line != c.want+"\n" {
				t.Errorf("after the signal printed %q, want %q", line, c.want)
			}
		})
	}
}

func TestZombies(t *testing.T) {
	// A child that has exited and is not waited for stays a zombie until Wait below.
	child := exec.Command(probeBin, "exit", "0")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Wait()
	stat := fmt.Sprintf("/proc/%d/stat", child.Process.Pid)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile(stat)
		if err != nil {
			t.Fatal(err)
		}
		if s, _ := procState(string(b)); s == 'Z' {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("child did not become a zombie")
		}
	}
	stdout, stderr, code := runProbe(t, exec.Command(probeBin, "zombies"))
	if code != 0 {
		t.Fatalf("probe zombies exited %d: %s", code, stderr)
	}
	n, err := strconv.Atoi(strings.TrimSpace(stdout))
	if err != nil || n < 1 {
		t.Errorf("probe zombies printed %q, want an integer >= 1", stdout)
	}
}

func TestOutput(t *testing.T) {
	for _, n := range []int64{0, 1, report.ChunkSize, 3*report.ChunkSize + 100, 1 << 20} {
		t.Run(strconv.FormatInt(n, 10), func(t *testing.T) {
			stdout, stderr, code := runProbe(t, exec.Command(probeBin, "output", strconv.FormatInt(n, 10)))
			if code != 0 {
				t.Fatalf("exit status %d: %s", code, stderr)
			}
			if !bytes.Equal([]byte(stdout), report.StdoutPattern(n)) {
				t.Errorf("stdout (%d bytes) differs from StdoutPattern(%d)", len(stdout), n)
			}
			if !bytes.Equal([]byte(stderr), report.StderrPattern(n)) {
				t.Errorf("stderr (%d bytes) differs from StderrPattern(%d)", len(stderr), n)
			}
		})
	}
}

func TestExitAndUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"exit", "0"}, 0},
		{[]string{"exit", "7"}, 7},
		{[]string{"exit", "255"}, 255},
		{[]string{"exit", "256"}, exitUsage},
		{[]string{"exit", "x"}, exitUsage},
		{[]string{"exit"}, exitUsage},
		{[]string{"output", "-1"}, exitUsage},
		{[]string{"trap", "KILL"}, exitUsage},
		{[]string{"trap", "NOSUCH"}, exitUsage},
		{[]string{"stat"}, exitUsage},
		{[]string{"frobnicate"}, exitUsage},
	} {
		if _, _, code := runProbe(t, exec.Command(probeBin, c.args...)); code != c.want {
			t.Errorf("probe %v exited %d, want %d", c.args, code, c.want)
		}
	}
}
