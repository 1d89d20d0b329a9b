package main

import "testing"

// The outputs below are shaped as tap-go and runtime-tools v0.9.0 print them.
func TestJudge(t *testing.T) {
	const yamlErr = "  ---\n  {\n    \"error\": \"exit status 1\",\n    \"reference\": \"r\"\n  }\n  ...\n"
	cases := []struct {
		name, program, stdout string
		exit                  int
		pass                  bool
	}{
		{"runtimetest passes", "default", "TAP version 13\nok 1 - root filesystem\nok 2 # SKIP linux.sysctl not set\n1..2\n", 0, true},
		{"a check fails", "default", "TAP version 13\nok 1 - a\nnot ok 2 - b\n1..2\n", 0, false},
		{"a TODO failure", "default", "TAP version 13\nnot ok 1 # TODO b\n1..1\n", 0, false},
		{"no output", "default", "", 0, false},
		{"stopped early", "default", "TAP version 13\nok 1 - a\n", 0, false},
		{"exit status", "kill", "TAP version 13\nok 1 - a\n1..1\n", 1, false},
		{"bail out", "kill", "TAP version 13\nok 1 - a\nBail out! gone\n1..1\n", 0, false},
		{"expected error on an ok line", "delete", "TAP version 13\nok 1 - delete MUST fail\n" + yamlErr + "1..1\n", 0, true},
		{"empty error on an ok line", "hooks_stdin", "TAP version 13\nok 1 - stdin\n  ---\n  {\n    \"error\": \"\"\n  }\n  ...\n1..1\n", 0, true},
		{"hook rule broken, no test line", "poststart_fail", "TAP version 13\n" + yamlErr + "1..0\n", 0, false},
		{"hook rule kept", "poststart_fail", "TAP version 13\n1..0\n", 0, true},
		{"second block after a line", "state", "TAP version 13\nok 1 - a\n  ---\n  {\n    \"reference\": \"r\"\n  }\n  ...\n" + yamlErr + "1..1\n", 0, false},
		{"refusal, nothing printed", "process_rlimits_fail", "", 0, true},
		{"no test line outside the silent ones", "hostname", "TAP version 13\n1..0\n", 0, false},
		{"runtimetest quoted in YAML", "hostname", "TAP version 13\n  ---\n  {\n    \"stdout\": \"TAP version 13\\nnot ok 1 - x\\n\"\n  }\n  ...\nnot ok 1 - check hostname\n1..1\n", 0, false},
	}
	for _, c := range cases {
		if r := judge(c.program, c.exit, false, c.stdout, ""); r.pass != c.pass {
			t.Errorf("%s: pass %v, want %v (%s)", c.name, r.pass, c.pass, r.why)
		}
	}
	if r := judge("poststart", 0, false, "TAP version 13\n1..0\n", "WARNING: The poststart hook invoke fails\n"); r.pass {
		t.Errorf("a hook that never ran, told on standard error, passed")
	}
	if r := judge("default", 0, true, "", ""); r.pass || r.status != "TIMEOUT" {
		t.Errorf("time-out: %+v", r)
	}
}

func TestGate(t *testing.T) {
	refused := judge("process_capabilities_fail", 0, false, "", "")
	results := []result{judge("default", 1, false, "", "failed to create the container"), refused}
	applyGate(results)
	if results[1].pass {
		t.Errorf("a must-fail program passed while %s failed", gate)
	}
	results = []result{judge("default", 0, false, "TAP version 13\nok 1 - a\n1..1\n", ""), refused}
	applyGate(results)
	if !results[1].pass {
		t.Errorf("a must-fail program failed while %s passed: %s", gate, results[1].why)
	}
}

func TestTelling(t *testing.T) {
	got := telling("failed to create the container\ncrun: cannot set rlimit\nexit status 1\n")
	if got != "crun: cannot set rlimit" {
		t.Errorf("telling: %q", got)
	}
}
