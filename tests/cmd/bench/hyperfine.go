package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

// bench is a hyperfine measurement: its commands run one after the other, each warmup+runs
// times, each run after its prepare command (a shell-free command line) when there is one.
type bench struct {
	commands [][]string
	prepare  []string
	warmup   int
	runs     int
	// rounds, when above 1, splits the runs into that many hyperfine invocations, each running
	// every command runs/rounds times (the warm-ups go to the first), so that the commands' runs
	// alternate and load from other work on the machine falls on all of them alike.
	rounds int
	// env is the environment of hyperfine and so of every command; nil is the bench's own.
	env []string
}

// hyperfine runs b and returns each command's times, in the order of b.commands.
func hyperfine(scratch string, b bench) ([]measured, error) {
	rounds := max(b.rounds, 1)
	if b.runs%rounds != 0 {
		return nil, fmt.Errorf("%d runs do not split into %d rounds", b.runs, rounds)
	}
	var all []measured
	for r := range rounds {
		warmup := b.warmup
		if r > 0 {
			warmup = 0
		}
		res, err := hyperfineOnce(scratch, b, warmup, b.runs/rounds)
		if err != nil {
			return nil, err
		}
		if all == nil {
			all = res
			continue
		}
		for i := range all {
			all[i].Times = append(all[i].Times, res[i].Times...)
		}
	}
	if rounds > 1 {
		for i := range all {
			all[i].Median = median(all[i].Times)
		}
	}
	return all, nil
}

func hyperfineOnce(scratch string, b bench, warmup, runs int) ([]measured, error) {
	out, err := os.CreateTemp(scratch, "hyperfine-*.json")
	if err != nil {
		return nil, err
	}
	out.Close()
	args := []string{"-N", "--warmup", strconv.Itoa(warmup), "--runs", strconv.Itoa(runs), "--export-json", out.Name()}
	for _, p := range b.prepare {
		args = append(args, "--prepare", p)
	}
	for _, c := range b.commands {
		args = append(args, shellJoin(c))
	}
	cmd := exec.Command("hyperfine", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.Env = b.env
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("hyperfine: %w", err)
	}
	data, err := os.ReadFile(out.Name())
	if err != nil {
		return nil, err
	}
	var doc struct{ Results []measured }
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("read hyperfine's results: %w", err)
	}
	if len(doc.Results) != len(b.commands) {
		return nil, fmt.Errorf("hyperfine reported %d results for %d commands", len(doc.Results), len(b.commands))
	}
	return doc.Results, nil
}

// median is the middle of v, or the mean of its two middle values.
func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " '\"\\$[]*?;&|<>()") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

func minMax(v []float64) (float64, float64) {
	if len(v) == 0 {
		return 0, 0
	}
	lo, hi := v[0], v[0]
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}
