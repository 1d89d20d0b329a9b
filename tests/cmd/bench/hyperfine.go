package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

func hyperfine(scratch string, commands [][]string, runs int) ([]measured, error) {
	jsonOut := filepath.Join(scratch, "hyperfine.json")
	args := []string{"-N", "--warmup", "3", "--runs", strconv.Itoa(runs), "--export-json", jsonOut}
	for _, c := range commands {
		args = append(args, shellJoin(c))
	}
	cmd := exec.Command("hyperfine", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("hyperfine: %w", err)
	}
	data, err := os.ReadFile(jsonOut)
	if err != nil {
		return nil, err
	}
	var doc struct{ Results []measured }
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("read hyperfine's results: %w", err)
	}
	return doc.Results, nil
}

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " '\"\\$") {
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
