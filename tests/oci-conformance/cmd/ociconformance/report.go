package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
)

// printTable prints one line a program, then the totals.
func printTable(w io.Writer, results []result, verbose bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TEST\tRESULT\tOK\tNOT-OK\tSKIP\tFIRST FAILURE")
	passed := 0
	for _, r := range results {
		if r.pass {
			passed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\n", r.name, r.status, r.tap.ok-len(r.tap.skips), r.tap.notOK, len(r.tap.skips), clip(r.why, 110))
	}
	tw.Flush()
	if verbose {
		for _, r := range results {
			for _, s := range r.tap.skips {
				fmt.Fprintf(w, "skip: %s: %s\n", r.name, s)
			}
		}
	}
	fmt.Fprintf(w, "oci-conformance: %d passed, %d failed\n", passed, len(results)-passed)
}

// compare reports the regressions (listed in -expected, ran and did not pass) and the new passes,
// and says whether the run is bad: a regression, or a listed name that no program has (a typo
// would hide a regression).
func compare(c config, results []result) bool {
	if c.expected == "" {
		return false
	}
	expected, err := readExpected(c.expected)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ociconformance:", err)
		return true
	}
	// The file is named by its base name: the script may hand the runner a copy.
	file := filepath.Base(c.expected)
	bad := false
	for _, n := range sortedKeys(expected) {
		if _, err := os.Stat(filepath.Join(c.dir, n+".t")); err != nil {
			fmt.Printf("unknown: %s is listed in %s but there is no such program\n", n, file)
			delete(expected, n) // and -update drops it
			bad = true
		}
	}
	for _, r := range results {
		switch {
		case expected[r.name] && !r.pass:
			fmt.Printf("REGRESSION: %s is listed in %s but did not pass (%s)\n", r.name, file, r.status)
			bad = true
		case !expected[r.name] && r.pass && !c.update:
			fmt.Printf("new pass: %s: add to %s\n", r.name, file)
		}
	}
	if c.update {
		if err := writeExpected(c.expected, expected, results); err != nil {
			fmt.Fprintln(os.Stderr, "ociconformance:", err)
			return true
		}
		fmt.Printf("updated %s\n", file)
		return false
	}
	if !bad {
		fmt.Printf("no regression against %s\n", file)
	}
	return bad
}

func sortedKeys(m map[string]bool) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// clip makes s one line of at most n characters.
func clip(s string, n int) string {
	r := []rune(strings.Join(strings.Fields(s), " "))
	if len(r) <= n {
		return string(r)
	}
	return string(r[:n-1]) + "…"
}
