package main

import (
	"bufio"
	"os"
	"sort"
	"strings"
)

// expectedHeader starts expected-pass.txt; -update writes it back as it is.
const expectedHeader = `# The validation programs of runtime-tools v0.9.0 that kite passes, one a line; make
# oci-conformance fails when one of them does not pass. Written by the runner's -update flag
# (make oci-conformance OCI_FLAGS=-update), or by hand. See README.md.
`

// readExpected reads the list of programs that must pass: one name a line, "#" starts a comment.
// A missing file is an empty list.
func readExpected(path string) (map[string]bool, error) {
	names := map[string]bool{}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return names, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		line, _, _ := strings.Cut(s.Text(), "#")
		if line = strings.TrimSpace(line); line != "" {
			names[line] = true
		}
	}
	return names, s.Err()
}

// writeExpected writes the list anew: the programs that passed in this run, and the listed ones
// that did not run in it (a run of a subset changes only the lines of that subset).
func writeExpected(path string, old map[string]bool, results []result) error {
	keep := map[string]bool{}
	for n := range old {
		keep[n] = true
	}
	for _, r := range results {
		keep[r.name] = r.pass
	}
	var names []string
	for n, ok := range keep {
		if ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	text := expectedHeader
	for _, n := range names {
		text += n + "\n"
	}
	return os.WriteFile(path, []byte(text), 0o644)
}
