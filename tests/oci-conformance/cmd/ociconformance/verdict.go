package main

import (
	"fmt"
	"regexp"
	"strings"
)

// silent lists the programs that print no test line when the runtime does right, so that "at least
// one ok line" cannot be asked of them:
//   - process_capabilities_fail and process_rlimits_fail print nothing at all: they expect create
//     to refuse the config and only exit 1 (with runtimetest's output) when it does not;
//   - the hook programs print the TAP header, the plan "1..0" and, when the runtime broke a rule,
//     a YAML block with an "error" (hooks prints one in every case, and panics on a nil error
//     when the runtime did right: it cannot pass).
var silent = map[string]bool{
	"process_capabilities_fail": true,
	"process_rlimits_fail":      true,
	"prestart":                  true,
	"prestart_fail":             true,
	"poststart":                 true,
	"poststart_fail":            true,
	"poststop":                  true,
	"poststop_fail":             true,
	"hooks":                     true,
}

// mustFail lists the programs that only check that the runtime refuses something, so that a
// runtime that refuses everything (or is not there at all) passes them. Such a pass counts only
// when "default" (runtimetest in a plain container) passed in the same run:
//   - process_capabilities_fail: create must refuse the capability CAP_TEST;
//   - process_rlimits_fail: create must refuse the rlimit RLIMIT_TEST;
//   - prestart_fail: a failing prestart hook must make start fail and the process not run;
//   - linux_ns_path_type: each of its 7 cases wants create to refuse a namespace path of the
//     wrong type.
//
// The other programs that test refusals (create, delete, kill, start, state, misc_props,
// linux_masked_paths, linux_readonly_paths) also have cases where the runtime must succeed.
var mustFail = map[string]bool{
	"process_capabilities_fail": true,
	"process_rlimits_fail":      true,
	"prestart_fail":             true,
	"linux_ns_path_type":        true,
}

// gate is the program whose pass makes the passes of mustFail programs count.
const gate = "default"

// result is the outcome of one validation program.
type result struct {
	name     string
	pass     bool
	status   string // PASS, FAIL or TIMEOUT
	why      string // the first failure, for the table
	tap      tapReport
	exitCode int
	timedOut bool
	stderr   string
}

// judge decides whether a program passed from its exit, standard output and error, before the
// mustFail rule (which needs the other results; see applyGate).
func judge(name string, exitCode int, timedOut bool, stdout, stderr string) result {
	r := result{name: name, tap: parseTAP(stdout), exitCode: exitCode, timedOut: timedOut, stderr: stderr}
	t := r.tap
	switch {
	case timedOut:
		r.status, r.why = "TIMEOUT", "killed after the time-out"
		return r
	case exitCode != 0:
		r.why = fmt.Sprintf("exit status %d", exitCode)
		if exitCode < 0 {
			r.why = "killed by a signal"
		}
		if l := telling(stderr); l != "" {
			r.why += ": " + l
		} else if t.firstNotOK != "" {
			r.why += ": " + t.firstNotOK
		}
	case t.bailOut != "":
		r.why = t.bailOut
	case t.notOK > 0:
		// A "not ok ... # TODO" is a failure too: runtime-tools marks no test TODO, so one
		// would come from something unexpected (and TAP's TODO means "known to fail").
		r.why = t.firstNotOK
	case t.orphanError != "":
		r.why = "error diagnostic: " + t.orphanError
	case warning(stderr) != "":
		// poststart reports a hook that never ran this way, and nothing else.
		r.why = warning(stderr)
	case !t.header && t.ok == 0:
		if silent[name] {
			r.pass = true
		} else {
			r.why = "no TAP output"
			if l := telling(stderr); l != "" {
				r.why += ": " + l
			}
		}
	case t.plan < 0:
		r.why = "no plan: the program stopped before its end"
	case t.plan != t.ok+t.notOK:
		r.why = fmt.Sprintf("plan 1..%d but %d test lines", t.plan, t.ok+t.notOK)
	case t.ok == 0 && !silent[name]:
		r.why = "no test line"
	default:
		r.pass = true
	}
	r.status = "FAIL"
	if r.pass {
		r.status = "PASS"
	}
	return r
}

// applyGate turns the passes of mustFail programs into failures when the gate did not pass.
func applyGate(results []result) {
	gatePassed := false
	for _, r := range results {
		if r.name == gate && r.pass {
			gatePassed = true
		}
	}
	if gatePassed {
		return
	}
	for i, r := range results {
		if mustFail[r.name] && r.pass {
			results[i].pass = false
			results[i].status = "FAIL"
			results[i].why = "refused as required, but " + gate + " did not pass: the refusal proves nothing"
		}
	}
}

// generic are the lines runtime-tools prints around the runtime's own message when an operation
// fails ("failed to create the container", then the runtime's standard error, then util.Fatal's
// "exit status 1").
var generic = regexp.MustCompile(`^(failed to \w+ the container|exit status \d+)$`)

// telling returns the first line of a program's standard error that says more than generic ones,
// or the first line when all are generic.
func telling(stderr string) string {
	first := ""
	for _, l := range strings.Split(stderr, "\n") {
		if l = strings.TrimSpace(l); l == "" {
			continue
		}
		if !generic.MatchString(l) {
			return l
		}
		if first == "" {
			first = l
		}
	}
	return first
}

// warning returns the first line of a program's standard error that runtime-tools starts with
// "WARNING:", which it prints for a rule broken without a test line.
func warning(stderr string) string {
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "WARNING:") {
			return strings.TrimSpace(l)
		}
	}
	return ""
}
