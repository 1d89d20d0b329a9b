package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
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
		cmd := exec.Command(kite, "--debug", "--dir", data, "run", image, "--", "true")
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
