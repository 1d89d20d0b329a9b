package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// tapReport is what a validation program printed on its standard output, read as TAP 13 the way
// github.com/mndrix/tap-go (which runtime-tools uses) writes it.
type tapReport struct {
	header      bool     // "TAP version 13"
	plan        int      // N of a "1..N" line; -1 when there is none
	ok          int      // "ok" lines, skips included
	notOK       int      // "not ok" lines, "# TODO" ones included
	skips       []string // the reasons of "ok N # SKIP reason" lines
	firstNotOK  string   // the first "not ok" line
	bailOut     string   // a "Bail out!" line
	orphanError string   // the first non-empty "error" of a YAML block that follows no test line
}

var (
	testLine = regexp.MustCompile(`^(not )?ok\b`)
	planLine = regexp.MustCompile(`^1\.\.(\d+)`)
	skipMark = regexp.MustCompile(`(?i)^ok\b[^#]*#\s*skip\b\s*(.*)$`)
)

// parseTAP reads a program's standard output. Only lines at column 0 are TAP: the output of
// runtimetest that a program quotes in a YAML block (a JSON string, as tap-go writes YAML) is
// indented, so a "not ok" in it is not counted twice (the program reports it on its own line).
//
// A YAML block's "error" is judged by where it stands. tap-go's programs print a block right after
// the test line it explains, and an "error" there on an "ok" line is the error the test wanted
// (delete must refuse a running container: "ok" with the runtime's error quoted). A block that
// follows no test line (after the header, or a second block after one line) is how
// prestart_fail, poststart_fail, poststop_fail and state report a broken rule without any
// "not ok" line: such an error is a failure.
func parseTAP(out string) tapReport {
	r := tapReport{plan: -1}
	attached := false // the next YAML block explains the test line just read
	lines := strings.Split(out, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		switch {
		case strings.HasPrefix(line, "TAP version"):
			r.header = true
			attached = false
		case testLine.MatchString(line):
			if strings.HasPrefix(line, "not ") {
				r.notOK++
				if r.firstNotOK == "" {
					r.firstNotOK = line
				}
			} else {
				r.ok++
				if m := skipMark.FindStringSubmatch(line); m != nil {
					r.skips = append(r.skips, m[1])
				}
			}
			attached = true
		case planLine.MatchString(line):
			r.plan, _ = strconv.Atoi(planLine.FindStringSubmatch(line)[1])
			attached = false
		case strings.HasPrefix(line, "Bail out!"):
			if r.bailOut == "" {
				r.bailOut = line
			}
		case strings.TrimSpace(line) == "---":
			var block []string
			for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "..."; i++ {
				block = append(block, lines[i])
			}
			if msg := yamlError(block); msg != "" && !attached && r.orphanError == "" {
				r.orphanError = msg
			}
			attached = false
		}
	}
	return r
}

// yamlError returns the "error" of a YAML block, "" when it has none or an empty one (hooks_stdin
// writes "error": "" on its passing lines). tap-go writes YAML as JSON; a block that is not JSON is
// read as "key: value" lines.
func yamlError(block []string) string {
	text := strings.Join(block, "\n")
	var m map[string]any
	if json.Unmarshal([]byte(text), &m) == nil {
		if v, ok := m["error"]; ok && v != nil {
			return strings.TrimSpace(fmt.Sprint(v))
		}
		return ""
	}
	for _, l := range block {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), ":"); ok && k == "error" {
			return strings.Trim(strings.TrimSpace(v), `"'`)
		}
	}
	return ""
}
