package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/kite-runtime/kite/tests/probe/report"
)

// The tests of kite oci, the runtime-spec command line: each builds bundles in its scratch
// directory (ocibundle_test.go) and drives create, start, state, kill, delete and list against a
// --root of its own, checking what the container's program saw from inside and what is left on
// the host.

// wantFailure fails the test unless kite exited with kite's own failure status (125) and said
// each of hints on stderr.
func wantFailure(t *testing.T, r result, what string, hints ...string) {
	t.Helper()
	wantCode(t, r, 125, what)
	for _, h := range hints {
		if !strings.Contains(r.Stderr, h) {
			t.Errorf("%s: stderr does not say %q: %q", what, h, r.Stderr)
		}
	}
}

// TestOCILifecycle walks one container through create, start, kill and delete, checking at each
// step its state, kite oci list, and whether its program has run.
func TestOCILifecycle(t *testing.T) {
	e := newOCIEnv(t)
	arg := uniqueSleep(30)
	marker := filepath.Join(e.out, "ran")
	// A bundle as the help text makes it: its own rootfs, kite oci spec's config.json.
	b := e.ownBundle(t, "sh", "-c", "echo ran > /out/ran; exec sleep "+arg)
	pidFile := filepath.Join(e.dir, "c1.pid")
	e.create(t, "c1", b, "--pid-file", pidFile)

	created := e.state(t, "c1")
	if created.Status != specs.StateCreated || created.Bundle != b || created.Version != specs.Version {
		t.Errorf("state after create: %+v, want status created, bundle %s, ociVersion %s", created, b, specs.Version)
	}
	pid := created.Pid
	if pid <= 0 || !alive(pid) {
		t.Fatalf("state after create: pid %d does not run", pid)
	}
	// The container's process is the init of its own pid namespace.
	if ns := nsPids(t, pid); len(ns) < 2 || ns[len(ns)-1] != "1" {
		t.Errorf("the container's process %d has NSpid %v, want it to be 1 in a pid namespace of its own", pid, ns)
	}
	if got := strings.TrimSpace(string(readFile(t, pidFile))); got != strconv.Itoa(pid) {
		t.Errorf("--pid-file holds %q, state says pid %d", got, pid)
	}
	// Created: the program has not run.
	noFile(t, marker, "the program ran before kite oci start")
	if p := procsWithArgv(t, "sleep", arg); len(p) > 0 {
		t.Errorf("the program runs before kite oci start: %+v", p)
	}
	if ids := e.ids(t); !slices.Equal(ids, []string{"c1"}) {
		t.Errorf("list -q after create = %v, want [c1]", ids)
	}
	if s := e.listed(t)["c1"]; s.Status != specs.StateCreated || s.Pid != pid || s.Bundle != b {
		t.Errorf("list --format json after create: %+v", s)
	}

	e.start(t, "c1")
	if got := wantFile(t, marker, "the program after kite oci start"); got != "ran\n" {
		t.Errorf("the program wrote %q", got)
	}
	if s := e.state(t, "c1"); s.Status != specs.StateRunning || s.Pid != pid {
		t.Errorf("state after start: %+v, want running with pid %d", s, pid)
	}
	if s := e.listed(t)["c1"]; s.Status != specs.StateRunning || s.Pid != pid {
		t.Errorf("list --format json after start: %+v", s)
	}
	var app []hostProc
	for deadline := time.Now().Add(waitTimeout); len(app) == 0; time.Sleep(10 * time.Millisecond) {
		if app = procsWithArgv(t, "sleep", arg); len(app) == 0 && time.Now().After(deadline) {
			t.Fatalf("the program (sleep %s) never showed up in /proc", arg)
		}
	}
	if ppid := parentOf(t, app[0].PID); ppid != pid {
		t.Errorf("the program's parent is %d, want the container's process %d", ppid, pid)
	}

	wantCode(t, e.oci(t, "kill", "c1", "TERM"), 0, "kite oci kill c1 TERM")
	if s := e.waitStatus(t, "c1", specs.StateStopped); s.Pid != pid {
		t.Errorf("state after the program ended: %+v, want the pid it had (%d)", s, pid)
	}
	if alive(pid) {
		t.Errorf("the container's process %d runs although the container stopped", pid)
	}
	waitProcs(t, goneWithin, "the program after kill TERM", func() []hostProc { return procsWithArgv(t, "sleep", arg) })
	if ids := e.ids(t); !slices.Equal(ids, []string{"c1"}) {
		t.Errorf("list -q once stopped = %v, want [c1]", ids)
	}
	if s := e.listed(t)["c1"]; s.Status != specs.StateStopped {
		t.Errorf("list --format json once stopped: %+v", s)
	}

	wantCode(t, e.oci(t, "delete", "c1"), 0, "kite oci delete c1")
	wantFailure(t, e.oci(t, "state", "c1"), "kite oci state of a deleted container", "c1", "no such container")
	if names := e.rootEntries(t); slices.Contains(names, "c1") {
		t.Errorf("--root still holds c1 after delete: %v", names)
	}
	if ids := e.ids(t); len(ids) != 0 {
		t.Errorf("list -q after delete = %v, want nothing", ids)
	}
	if l := e.listed(t); len(l) != 0 {
		t.Errorf("list --format json after delete = %+v, want []", l)
	}
	e.wantNothingLeft(t, "after delete")
}

// TestOCIKillCreated signals a container that was created and never started: a signal that ends
// a process ends the container; its program never runs, and it can no longer be started.
func TestOCIKillCreated(t *testing.T) {
	e := newOCIEnv(t)
	marker := filepath.Join(e.out, "ran")
	e.create(t, "c1", e.bundle(t, e.spec(t, "sh", "-c", "echo ran > /out/ran")))
	pid := e.state(t, "c1").Pid
	wantCode(t, e.oci(t, "kill", "c1", "TERM"), 0, "kite oci kill of a created container")
	e.waitStatus(t, "c1", specs.StateStopped)
	if alive(pid) {
		t.Errorf("the created container's process %d still runs after TERM", pid)
	}
	wantFailure(t, e.oci(t, "start", "c1"), "kite oci start of a stopped container", "c1 is stopped")
	noFile(t, marker, "the program of a container killed before its start")
	wantCode(t, e.oci(t, "delete", "c1"), 0, "kite oci delete")
	e.wantNothingLeft(t, "after delete")
}

// TestOCIPidFileFailure asks kite oci create for a --pid-file it cannot write: create fails, and
// like any failed create (and runc's) it must leave no container behind, or the caller, told the
// create failed, would find the ID taken by a container it does not know about.
func TestOCIPidFileFailure(t *testing.T) {
	e := newOCIEnv(t)
	r, _ := e.tryCreate(t, "c1", e.bundle(t, e.spec(t, "true")), nil, "--pid-file", filepath.Join(e.dir, "no-such-dir", "c1.pid"))
	wantFailure(t, r, "kite oci create with a --pid-file in a missing directory", "--pid-file")
	e.wantNothingLeft(t, "after a failed create")
}

// TestOCIKillSignals sends signals with kite oci kill: a running program gets them; a created
// container is ended by one whose default action ends a process, and keeps waiting for its start
// through one that does not.
func TestOCIKillSignals(t *testing.T) {
	e := newOCIEnv(t)
	c := e.create(t, "trap", e.bundle(t, e.spec(t, "probe", "trap", "USR1")))
	e.start(t, "trap")
	for deadline := time.Now().Add(waitTimeout); c.stdoutText(t) != "ready\n"; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the probe did not get ready: %q", c.stdoutText(t))
		}
	}
	wantCode(t, e.oci(t, "kill", "trap", "SIGUSR1"), 0, "kite oci kill trap SIGUSR1")
	e.waitStatus(t, "trap", specs.StateStopped)
	if got := c.stdoutText(t); got != "ready\ngot SIGUSR1\n" {
		t.Errorf("the program printed %q, want it to get SIGUSR1", got)
	}
	wantCode(t, e.oci(t, "delete", "trap"), 0, "kite oci delete")

	marker := filepath.Join(e.out, "ran")
	b := e.bundle(t, e.spec(t, "sh", "-c", "echo ran > /out/ran"))
	e.create(t, "created", b)
	pid := e.state(t, "created").Pid
	// SIGWINCH is ignored by default: the container stays created, and starts.
	wantCode(t, e.oci(t, "kill", "created", "WINCH"), 0, "kite oci kill created WINCH")
	time.Sleep(100 * time.Millisecond)
	if s := e.state(t, "created"); s.Status != specs.StateCreated || s.Pid != pid || !alive(pid) {
		t.Fatalf("after SIGWINCH: %+v, want it still created", s)
	}
	e.start(t, "created")
	wantFile(t, marker, "the program after SIGWINCH and start")
	e.waitStatus(t, "created", specs.StateStopped)
	wantCode(t, e.oci(t, "delete", "created"), 0, "kite oci delete")

	// SIGUSR1 (by number) ends a created container; its program never runs.
	os.Remove(marker)
	e.create(t, "created", b)
	wantCode(t, e.oci(t, "kill", "--all", "created", strconv.Itoa(int(unix.SIGUSR1))), 0, "kite oci kill created 10")
	e.waitStatus(t, "created", specs.StateStopped)
	wantFailure(t, e.oci(t, "start", "created"), "start after SIGUSR1", "created is stopped")
	noFile(t, marker, "the program of a container ended by SIGUSR1 before its start")
}

// ociRunToEnd creates and starts a container of s, waits until it has stopped, deletes it and
// returns what its program wrote to stdout.
func ociRunToEnd(t *testing.T, e *ociEnv, id string, s *specs.Spec) string {
	t.Helper()
	c := e.create(t, id, e.bundle(t, s))
	e.start(t, id)
	e.waitStatus(t, id, specs.StateStopped)
	wantCode(t, e.oci(t, "delete", id), 0, "kite oci delete "+id)
	stderr := c.stderrText(t)
	t.Cleanup(func() {
		if t.Failed() && stderr != "" {
			t.Logf("container %s's stderr: %s", id, stderr)
		}
	})
	return c.stdoutText(t)
}

// decodeReport decodes the probe's report at the start of out and returns the lines after it.
func decodeReport(t *testing.T, out string) (report.Report, []string) {
	t.Helper()
	var rep report.Report
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("decode the probe's report: %v\n%s", err, out)
	}
	if len(rep.Errors) > 0 {
		t.Errorf("the probe could not read: %v", rep.Errors)
	}
	return rep, lines(out[dec.InputOffset():])
}

// withoutUserNamespace removes the user namespace and id maps `kite oci spec --rootless` adds: kite
// then makes one of its own.
func withoutUserNamespace(s *specs.Spec) {
	s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.UserNamespace })
	s.Linux.UIDMappings, s.Linux.GIDMappings = nil, nil
}

// wantDefaultMap is kite's id map for a container whose config.json has no user namespace: 0 is
// the caller's own id, the subordinate ranges of subFile follow from 1 on.
func wantDefaultMap(own int, subFile string) []idRange {
	m := []idRange{{0, uint64(own), 1}}
	next := uint64(1)
	for _, r := range subRanges(subFile) {
		m = append(m, idRange{next, r.Host, r.Size})
		next += r.Size
	}
	return m
}

// TestOCICreateExistingID creates a container under an ID in use: it fails, and the existing
// container stays as it was, ready to start.
func TestOCICreateExistingID(t *testing.T) {
	e := newOCIEnv(t)
	marker := filepath.Join(e.out, "ran")
	first := e.bundle(t, e.spec(t, "sh", "-c", "echo first > /out/ran; exec sleep 30"))
	e.create(t, "c1", first)
	before := e.state(t, "c1")

	second := e.bundle(t, e.spec(t, "sh", "-c", "echo second > /out/ran"))
	r, _ := e.tryCreate(t, "c1", second, nil)
	wantFailure(t, r, "kite oci create of an existing ID", "c1", "already exists")
	if after := e.state(t, "c1"); after.Status != specs.StateCreated || after.Pid != before.Pid || after.Bundle != first {
		t.Errorf("state after the second create: %+v, want it unchanged: %+v", after, before)
	}
	if !alive(before.Pid) {
		t.Errorf("the first container's process %d is gone", before.Pid)
	}
	if ids := e.ids(t); !slices.Equal(ids, []string{"c1"}) {
		t.Errorf("list -q = %v, want [c1]", ids)
	}
	noFile(t, marker, "a program ran before kite oci start")
	e.start(t, "c1")
	if got := wantFile(t, marker, "the first container's program"); got != "first\n" {
		t.Errorf("the program that ran wrote %q, want the first bundle's (first)", got)
	}
	e.waitStatus(t, "c1", specs.StateRunning)
}

// TestOCIWrongState runs each command on a container in a state that does not allow it: start of
// a running or stopped container, kill of a stopped one, delete of a running one; they fail
// saying why and change nothing. delete --force ends a running container and everything in it.
func TestOCIWrongState(t *testing.T) {
	e := newOCIEnv(t)
	b := e.bundle(t, e.spec(t, "sh", "-c", "echo ran > /out/ran; exec sleep 30"))
	e.create(t, "c1", b)
	e.start(t, "c1")
	wantFile(t, filepath.Join(e.out, "ran"), "the program")
	pid := e.waitStatus(t, "c1", specs.StateRunning).Pid

	wantFailure(t, e.oci(t, "start", "c1"), "start of a running container", "c1 is running", "only a created container can be started")
	wantFailure(t, e.oci(t, "delete", "c1"), "delete of a running container", "c1 is running", "--force")
	if s := e.state(t, "c1"); s.Status != specs.StateRunning || s.Pid != pid || !alive(pid) {
		t.Fatalf("after the refused commands: %+v (process alive: %v), want it running as before", s, alive(pid))
	}

	wantCode(t, e.oci(t, "kill", "c1", "KILL"), 0, "kill KILL")
	e.waitStatus(t, "c1", specs.StateStopped)
	wantFailure(t, e.oci(t, "kill", "c1", "TERM"), "kill of a stopped container", "c1 is stopped", "only a created or running container can be signalled")
	wantFailure(t, e.oci(t, "start", "c1"), "start of a stopped container", "c1 is stopped", "only a created container can be started")
	wantFailure(t, e.oci(t, "kill", "c1", "NOSUCHSIG"), "kill with an unknown signal", "NOSUCHSIG")
	wantCode(t, e.oci(t, "delete", "c1"), 0, "delete of a stopped container")

	wantFailure(t, e.oci(t, "start", "c1"), "start of a deleted container", "no such container")
	wantFailure(t, e.oci(t, "kill", "c1"), "kill of a deleted container", "no such container")
	wantFailure(t, e.oci(t, "delete", "c1"), "delete of a deleted container", "no such container")
	wantCode(t, e.oci(t, "delete", "--force", "c1"), 0, "delete --force of a container that does not exist")
	wantFailure(t, e.oci(t, "state", "../c1"), "an ID that is not a name", "container ID")

	// A created container is not deleted without --force either (runtime.md, "delete").
	e.create(t, "c3", b)
	wantFailure(t, e.oci(t, "delete", "c3"), "delete of a created container", "c3 is created", "--force")
	if s := e.state(t, "c3"); s.Status != specs.StateCreated || !alive(s.Pid) {
		t.Errorf("after a refused delete: %+v, want it created as before", s)
	}
	wantCode(t, e.oci(t, "delete", "--force", "c3"), 0, "delete --force")

	// delete --force of a running container, and of a created one.
	for _, start := range []bool{true, false} {
		e.create(t, "c2", b)
		pid := e.state(t, "c2").Pid
		if start {
			e.start(t, "c2")
			e.waitStatus(t, "c2", specs.StateRunning)
		}
		tasks := e.tasks(t, "c2", pid)
		wantCode(t, e.oci(t, "delete", "--force", "c2"), 0, "delete --force")
		if alive(pid) {
			t.Errorf("delete --force returned while the container's process %d runs", pid)
		}
		waitTasksGone(t, "the container's processes after delete --force", tasks)
		e.wantNothingLeft(t, "after delete --force")
	}
}

// TestOCIBadBundle gives kite oci create config.json files it must refuse: each fails at create,
// naming what is wrong, and leaves nothing in --root.
func TestOCIBadBundle(t *testing.T) {
	e := newOCIEnv(t)
	for _, tc := range []struct {
		name  string
		edit  func(s *specs.Spec)
		hints []string
	}{
		{"unknown capability", func(s *specs.Spec) {
			s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_NOT_A_CAP")
		}, []string{"capability", `"CAP_NOT_A_CAP"`}},
		{"unknown ambient capability", func(s *specs.Spec) {
			s.Process.Capabilities.Ambient = []string{"CAP_WHATEVER"}
		}, []string{"capability", `"CAP_WHATEVER"`}},
		{"relative masked path", func(s *specs.Spec) {
			s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, "proc/kcore")
		}, []string{"masked", `"proc/kcore"`, "absolute"}},
		{"relative read-only path", func(s *specs.Spec) {
			s.Linux.ReadonlyPaths = append(s.Linux.ReadonlyPaths, "proc/sys")
		}, []string{"read-only", `"proc/sys"`}},
		{"missing root", func(s *specs.Spec) { s.Root.Path = filepath.Join(e.dir, "no-such-rootfs") }, []string{"root.path", "no-such-rootfs"}},
		{"no root", func(s *specs.Spec) { s.Root = nil }, []string{"root.path"}},
		{"ociVersion 2.0", func(s *specs.Spec) { s.Version = "2.0" }, []string{"ociVersion", `"2.0"`}},
		{"relative cwd", func(s *specs.Spec) { s.Process.Cwd = "tmp" }, []string{"process.cwd", `"tmp"`}},
		{"empty args", func(s *specs.Spec) { s.Process.Args = nil }, []string{"process.args"}},
		{"terminal", func(s *specs.Spec) { s.Process.Terminal = true }, []string{"process.terminal"}},
		{"hostname without uts namespace", func(s *specs.Spec) {
			s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.UTSNamespace })
		}, []string{"hostname", "uts"}},
		{"joined namespace", func(s *specs.Spec) {
			s.Linux.Namespaces[0].Path = "/proc/1/ns/pid"
		}, []string{"namespace", "/proc/1/ns/pid"}},
		{"rootfsPropagation", func(s *specs.Spec) { s.Linux.RootfsPropagation = "sideways" }, []string{"rootfsPropagation", `"sideways"`}},
		{"seccomp notify", func(s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActNotify}}}
		}, []string{"seccomp", "SCMP_ACT_NOTIFY"}},
		{"device that is not the host's", func(s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/null", Type: "c", Major: 1, Minor: 5}}
		}, []string{"device /dev/null", "1:3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := e.spec(t, "true")
			tc.edit(s)
			r, _ := e.tryCreate(t, "bad", e.bundle(t, s), nil)
			wantFailure(t, r, "kite oci create", tc.hints...)
			e.wantNothingLeft(t, "after a refused create")
		})
	}
	t.Run("not JSON", func(t *testing.T) {
		r, _ := e.tryCreate(t, "bad", e.rawBundle(t, []byte(`{"ociVersion": "1.2.0", "process": `)), nil)
		wantFailure(t, r, "kite oci create", "config.json")
		e.wantNothingLeft(t, "after a refused create")
	})
}

// TestOCINoProcess creates a container from a config.json without a process: that works (runtime
// -spec allows it), starting it does not, saying why.
func TestOCINoProcess(t *testing.T) {
	e := newOCIEnv(t)
	s := e.spec(t, "true")
	s.Process = nil
	e.create(t, "c1", e.bundle(t, s))
	st := e.state(t, "c1")
	if st.Status != specs.StateCreated || !alive(st.Pid) {
		t.Fatalf("state of a container without a process: %+v, want created with a live process", st)
	}
	wantFailure(t, e.oci(t, "start", "c1"), "kite oci start of a container without a process", "config.json has no process")
	e.waitStatus(t, "c1", specs.StateStopped)
	wantCode(t, e.oci(t, "delete", "c1"), 0, "kite oci delete")
	e.wantNothingLeft(t, "after delete")
}

// recordingHook is a hook that appends "NAME UID" to dir/order, saves its stdin to dir/NAME.json
// and its user and pid namespaces to dir/NAME.ns, then exits with status code (saying "NAME
// broke" on stderr unless it is 0). sh is the shell's path (the host's, or the container's for
// startContainer hooks) and dir the directory as the hook sees it.
func recordingHook(sh, dir, name string, code int) specs.Hook {
	script := `cat > "$1/$2.json"; echo "$2 $(id -u)" >> "$1/order"; ` + nsScript(`"$1/$2.ns"`) + `; if [ "$3" != 0 ]; then echo "$2 broke" >&2; fi; exit "$3"`
	return specs.Hook{Path: sh, Args: []string{"sh", "-c", script, "sh", dir, name, strconv.Itoa(code)},
		Env: []string{"PATH=/usr/bin:/bin"}}
}

// nsScript is a shell command that writes the user and pid namespaces of the shell to file.
func nsScript(file string) string {
	return `{ readlink /proc/self/ns/user; readlink /proc/self/ns/pid; } > ` + file
}

// hookOrder reads the hooks' order file: "NAME UID" lines.
func hookOrder(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "order"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return lines(string(b))
}

// hookState decodes the state hook name read on its stdin.
func hookState(t *testing.T, dir, name string) specs.State {
	t.Helper()
	var s specs.State
	if err := json.Unmarshal(readFile(t, filepath.Join(dir, name+".json")), &s); err != nil {
		t.Fatalf("the state the %s hook read: %v", name, err)
	}
	return s
}

// waitOrder polls the order file until it has n lines.
func waitOrder(t *testing.T, dir string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		got := hookOrder(t, dir)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hooks wrote %q, want %d lines", got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOCIMonitorKilled SIGKILLs a running container's monitor (as the OOM killer might): the
// container may end with it or run on, but kite oci state must tell which; delete --force then
// leaves nothing of it, and its poststop hook is told it stopped.
func TestOCIMonitorKilled(t *testing.T) {
	e := newOCIEnv(t)
	s := e.spec(t, "sh", "-c", "echo app >> /out/app; exec sleep 30")
	s.Hooks = &specs.Hooks{Poststop: []specs.Hook{recordingHook("/bin/sh", e.out, "poststop", 0)}}
	e.create(t, "c1", e.bundle(t, s))
	e.start(t, "c1")
	wantFile(t, filepath.Join(e.out, "app"), "the program")
	pid := e.waitStatus(t, "c1", specs.StateRunning).Pid
	tasks := e.tasks(t, "c1", pid)
	if err := unix.Kill(tasks[0].PID, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The init outlives its monitor (it is kite oci create's caller's child) or dies with it:
	// either way, once the monitor is gone the state must agree with what runs.
	var st specs.State
	var left []hostTask
	waitTasksGone(t, "the monitor", tasks[:1])
	for deadline := time.Now().Add(goneWithin); ; time.Sleep(20 * time.Millisecond) {
		left = slices.DeleteFunc(slices.Clone(tasks[1:]), func(p hostTask) bool { return !p.running() })
		st = e.state(t, "c1")
		if (len(left) == 0) == (st.Status == specs.StateStopped) || time.Now().After(deadline) {
			break
		}
	}
	switch {
	case len(left) > 0 && st.Status == specs.StateStopped:
		t.Errorf("kite oci state says the container stopped, but its processes run: %+v", left)
	case len(left) == 0 && st.Status != specs.StateStopped:
		t.Errorf("kite oci state says the container is %s, but its processes are gone", st.Status)
	}
	wantCode(t, e.oci(t, "delete", "--force", "c1"), 0, "kite oci delete --force")
	waitTasksGone(t, "the container's processes after delete --force", tasks)
	if st := hookState(t, e.out, "poststop"); st.ID != "c1" || st.Status != specs.StateStopped || st.Pid != pid {
		t.Errorf("the poststop hook read %+v, want c1 stopped with pid %d", st, pid)
	}
	e.wantNothingLeft(t, "after delete")
}

// TestOCINothingLeft starts a container whose program leaves processes behind, one of them
// reparented to the container's init, and checks that once the container stopped nothing of it
// runs: not its processes, not its monitor (kite-stage1 run).
func TestOCINothingLeft(t *testing.T) {
	e := newOCIEnv(t)
	orphan, child := uniqueSleep(41), uniqueSleep(42)
	b := e.bundle(t, e.spec(t, "sh", "-c", "(sleep "+orphan+" &); sleep "+child+" & echo ready > /out/ready; wait"))
	e.create(t, "c1", b)
	pid := e.state(t, "c1").Pid
	e.start(t, "c1")
	wantFile(t, filepath.Join(e.out, "ready"), "the program")
	for deadline := time.Now().Add(waitTimeout); len(procsWithArgv(t, "sleep", orphan)) != 1 || len(procsWithArgv(t, "sleep", child)) != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the program's sleeps never showed up")
		}
	}
	tasks := e.tasks(t, "c1", pid)
	for _, argv := range [][]string{{"sleep", orphan}, {"sleep", child}} {
		p := procsWithArgv(t, argv...)[0]
		if !slices.ContainsFunc(tasks, func(x hostTask) bool { return x.PID == p.PID }) {
			t.Errorf("%v (pid %d) is not below the container's process %d: %+v", argv, p.PID, pid, tasks)
		}
	}
	if p := procsWithArgv(t, "sleep", orphan)[0]; parentOf(t, p.PID) != pid {
		t.Errorf("the orphaned sleep's parent is %d, want the container's process %d", parentOf(t, p.PID), pid)
	}

	wantCode(t, e.oci(t, "kill", "c1", "TERM"), 0, "kite oci kill")
	e.waitStatus(t, "c1", specs.StateStopped)
	waitTasksGone(t, "the container's monitor and processes once it stopped", tasks)
	wantCode(t, e.oci(t, "delete", "c1"), 0, "kite oci delete")
	e.wantNothingLeft(t, "after delete")

	// delete --force while it runs.
	e.create(t, "c2", b)
	e.start(t, "c2")
	wantFile(t, filepath.Join(e.out, "ready"), "the program")
	tasks = e.tasks(t, "c2", e.waitStatus(t, "c2", specs.StateRunning).Pid)
	wantCode(t, e.oci(t, "delete", "--force", "c2"), 0, "kite oci delete --force")
	waitTasksGone(t, "the container's monitor and processes after delete --force", tasks)
	e.wantNothingLeft(t, "after delete --force")
}

// TestOCIConcurrentStart runs kite oci start three times at once: one starts the program, once,
// and the others fail saying the container is no longer created. So that the three requests reach
// the container's monitor together every time, the monitor is stopped (SIGSTOP) until all three
// have connected to it.
func TestOCIConcurrentStart(t *testing.T) {
	e := newOCIEnv(t)
	c := e.create(t, "c1", e.bundle(t, e.spec(t, "sh", "-c", "echo ran; exec sleep 30")))
	monitor := e.monitor(t, "c1")
	if err := unix.Kill(monitor, unix.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Kill(monitor, unix.SIGCONT) })
	var procs []*proc
	for range 3 {
		procs = append(procs, start(t, e.data, nil, "oci", "--root", e.root, "start", "c1"))
	}
	for _, p := range procs {
		for deadline := time.Now().Add(waitTimeout); !connectedSocket(t, p.cmd.Process.Pid); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("kite oci start (pid %d) did not connect to the container's monitor", p.cmd.Process.Pid)
			}
		}
	}
	if err := unix.Kill(monitor, unix.SIGCONT); err != nil {
		t.Fatal(err)
	}
	started := 0
	for _, p := range procs {
		r := finish(t, p)
		switch {
		case r.Code == 0:
			started++
		case r.Code != 125 || !strings.Contains(r.Stderr, "only a created container can be started"):
			t.Errorf("a concurrent kite oci start: want it to start the container, or to fail saying it is no longer created; got %s", r)
		}
	}
	if started != 1 {
		t.Errorf("%d of 3 concurrent starts succeeded, want 1", started)
	}
	e.waitStatus(t, "c1", specs.StateRunning)
	for deadline := time.Now().Add(waitTimeout); c.stdoutText(t) == "" && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if got := c.stdoutText(t); got != "ran\n" {
		t.Errorf("the program printed %q, want it to have run once", got)
	}
}

// connectedSocket reports whether process pid holds a connected Unix socket (state 03 in
// /proc/net/unix).
func connectedSocket(t *testing.T, pid int) bool {
	t.Helper()
	entries, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	inodes := map[string]bool{}
	for _, en := range entries {
		link, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, en.Name()))
		if inode, ok := strings.CutPrefix(link, "socket:["); ok {
			inodes[strings.TrimSuffix(inode, "]")] = true
		}
	}
	for _, l := range strings.Split(string(readFile(t, "/proc/net/unix")), "\n") {
		// Num RefCount Protocol Flags Type St Inode [Path]
		if f := strings.Fields(l); len(f) >= 7 && f[5] == "03" && inodes[f[6]] {
			return true
		}
	}
	return false
}
