package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"time"
)

// phase is one step of a pod's start, as kite --debug reports it (pkg/phase), with the median of
// its time since kite parsed its flags.
type phase struct {
	process, step string
	at            float64 // milliseconds
}

// startPhases runs kite --debug run n times and returns each step's median time.
func startPhases(kite, data, image string, n int) ([]phase, error) {
	var order []string
	samples := map[string][]float64{}
	for range n {
		cmd := exec.Command(kite, "--debug", "--dir", data, "run", "--net=host", image, "--", "true")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("kite --debug run: %v\n%s", err, stderr.String())
		}
		start := -1.0
		sc := bufio.NewScanner(&stderr)
		for sc.Scan() {
			// kite: phase PROCESS STEP... T
			f := strings.Fields(sc.Text())
			if len(f) < 5 || f[0] != "kite:" || f[1] != "phase" {
				continue
			}
			t, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				continue
			}
			if start < 0 {
				start = t
			}
			key := f[2] + "\t" + strings.Join(f[3:len(f)-1], " ")
			if _, ok := samples[key]; !ok {
				order = append(order, key)
			}
			samples[key] = append(samples[key], t-start)
		}
	}
	var out []phase
	for _, key := range order {
		process, step, _ := strings.Cut(key, "\t")
		out = append(out, phase{process: process, step: step, at: median(samples[key])})
	}
	return out, nil
}

// emptyProgramStart measures what starting a program costs on this machine: a Go program that
// does nothing (tests/cmd/empty, as kite's three processes pay it at least) and /bin/true.
func emptyProgramStart(scratch, empty string, runs int) ([]measured, error) {
	return hyperfine(scratch, bench{commands: [][]string{{empty}, {"/bin/true"}}, warmup: 3, runs: runs})
}

// idMapHelpers measures newuidmap and newgidmap, run in parallel as kite runs them, on a fresh
// user namespace each time (a map is written once): the median of n samples, in seconds. The
// ranges are this user's first /etc/subuid and /etc/subgid ones.
func idMapHelpers(n int) (float64, error) {
	uids, err := firstRange("/etc/subuid")
	if err != nil {
		return 0, err
	}
	gids, err := firstRange("/etc/subgid")
	if err != nil {
		return 0, err
	}
	self := []string{"0", strconv.Itoa(os.Getuid()), "1"}
	var times []float64
	for range n {
		target := exec.Command("unshare", "-U", "sleep", "5")
		if err := target.Start(); err != nil {
			return 0, err
		}
		time.Sleep(50 * time.Millisecond)
		pid := strconv.Itoa(target.Process.Pid)
		began := time.Now()
		u := exec.Command("newuidmap", append(append([]string{pid}, self...), "1", uids[0], uids[1])...)
		g := exec.Command("newgidmap", append(append([]string{pid}, self...), "1", gids[0], gids[1])...)
		errU, errG := u.Start(), g.Start()
		if errU == nil {
			errU = u.Wait()
		}
		if errG == nil {
			errG = g.Wait()
		}
		times = append(times, time.Since(began).Seconds())
		target.Process.Kill()
		target.Wait()
		if errU != nil || errG != nil {
			return 0, fmt.Errorf("newuidmap: %v, newgidmap: %v", errU, errG)
		}
	}
	return median(times), nil
}

// firstRange is the first "start count" range of this user in a subordinate id file.
func firstRange(file string) ([2]string, error) {
	u, err := user.Current()
	if err != nil {
		return [2]string{}, err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return [2]string{}, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) == 3 && (f[0] == u.Username || f[0] == u.Uid) {
			return [2]string{f[1], f[2]}, nil
		}
	}
	return [2]string{}, fmt.Errorf("%s has no range for %s", file, u.Username)
}
