package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A validation program that fails or is killed half-way leaves containers behind (its own
// clean-up runs in deferred calls that a time-out or util.Fatal skip), and processes: a
// container's, or the "unshare ... sleep 10000" of the linux_ns_path tests. The runner removes
// them after each program so that one test cannot disturb the next, using only what it owns: the
// runtime's state directory, which is private to the run (its own XDG_RUNTIME_DIR), and the
// processes re-parented to the runner, which is a child subreaper.

// becomeSubreaper makes the orphans of every program run by this process its children instead of
// init's, so that strayChildren finds them.
func becomeSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// runtimeCmd runs the runtime with args in the test environment env, for at most 30 s.
func runtimeCmd(runtime string, env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, runtime, args...)
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
		err = fmt.Errorf("%v: %s", err, firstLine(string(ee.Stderr)))
	}
	return string(out), err
}

// containers lists the IDs the runtime knows: "list -q", or else the first column of "list" less
// its header (runc's and crun's both start with "ID").
func containers(runtime string, env []string) ([]string, error) {
	out, err := runtimeCmd(runtime, env, "list", "-q")
	quiet := err == nil
	if !quiet {
		if out, err = runtimeCmd(runtime, env, "list"); err != nil {
			return nil, err
		}
	}
	var ids []string
	for i, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || (!quiet && i == 0 && f[0] == "ID") {
			continue
		}
		ids = append(ids, f[0])
	}
	return ids, nil
}

// removeContainers kills and deletes every container the runtime lists, and says what it did.
func removeContainers(runtime string, env []string) []string {
	ids, err := containers(runtime, env)
	if err != nil {
		return []string{"cannot list the containers: " + err.Error()}
	}
	var notes []string
	for _, id := range ids {
		runtimeCmd(runtime, env, "kill", id, "KILL") // fails on a stopped container, as it should
		if _, err := runtimeCmd(runtime, env, "delete", "--force", id); err != nil {
			notes = append(notes, fmt.Sprintf("container %s left: delete --force: %v", id, err))
		} else {
			notes = append(notes, "deleted container "+id)
		}
	}
	return notes
}

// killStrays kills the runner's children, which at this point (no program or runtime command
// running) are orphans re-parented to it, and reaps them. Their own children become the runner's
// in turn, so it goes on until none is left or 10 s have passed. It says what it killed, and what
// survived.
func killStrays() []string {
	var notes []string
	seen := map[int]bool{}
	deadline := time.Now().Add(10 * time.Second)
	for {
		reap()
		kids := children()
		if len(kids) == 0 {
			return notes
		}
		if time.Now().After(deadline) {
			for _, pid := range kids {
				notes = append(notes, fmt.Sprintf("process %d (%s) survived SIGKILL", pid, cmdline(pid)))
			}
			return notes
		}
		for _, pid := range kids {
			if !seen[pid] {
				seen[pid] = true
				notes = append(notes, fmt.Sprintf("killed stray process %d (%s)", pid, cmdline(pid)))
			}
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// reap collects the exit status of every child that has ended, without waiting.
func reap() {
	for {
		pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

// children returns the pids whose parent is this process, from /proc/PID/stat.
func children() []int {
	self := os.Getpid()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var kids []int
	for _, p := range stats {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last ')'.
		s := string(data)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid == self {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			kids = append(kids, pid)
		}
	}
	return kids
}

func cmdline(pid int) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(data), "\x00", " "))
}

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}
