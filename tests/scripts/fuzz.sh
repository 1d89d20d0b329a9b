#!/bin/sh
# Runs every fuzz target (each func FuzzX(f *testing.F) of a *fuzz_test.go file) with go test
# -fuzz for FUZZTIME, one target after another, then prints a summary: target, time (wall clock,
# with go test's build of the instrumented package), result and the executions go test reported. A failing target's input is written by go test to
# PKG/testdata/fuzz/FuzzX/ (named in the summary, with the command that re-runs it); keep it
# there as a seed once the bug is fixed. Exits 1 when a target failed. A target go test fails only
# with its own fuzztime deadline, writing no input, is "ok-deadline-race" (see below).
# Environment: GO (go), TAGS (build tags), FUZZTIME (60s), FUZZ (a regular expression: only the
# targets it matches), FUZZPARALLEL (go test -parallel: fuzzing processes per target; go's
# default, GOMAXPROCS, when empty), FUZZMINIMIZETIME (10s: how long go test may shrink a new
# input; its own default, 60s, can take a whole FUZZTIME from fuzzing). Each target's output goes to tests/out/fuzz/FuzzX.log, and the
# summary also to tests/out/fuzz/summary.tsv (target, package, fuzz time asked, seconds, result,
# executions), which make hardening reads.
# Usage: fuzz.sh
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-60s}
FUZZ=${FUZZ:-}
logs=tests/out/fuzz
mkdir -p "$logs"

# targets lists "PACKAGE_DIR TARGET" for each fuzz target, sorted.
targets() {
	find . -name '*fuzz_test.go' -not -path './.git/*' -not -path './tests/out/*' | sort | while read -r file; do
		sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(f \*testing\.F).*/\1/p' "$file" | while read -r t; do
			echo "$(dirname "$file") $t"
		done
	done
}

list=$(targets)
if [ -n "$FUZZ" ]; then
	list=$(echo "$list" | awk -v re="$FUZZ" '$2 ~ re')
fi
if [ -z "$list" ]; then
	echo "fuzz: no fuzz target matches ${FUZZ:-anything}" >&2
	exit 1
fi
n=$(echo "$list" | wc -l)
echo "fuzz: $n targets, $FUZZTIME each${FUZZPARALLEL:+, $FUZZPARALLEL processes}; logs in $logs/"

summary=$(mktemp)
trap 'rm -f "$summary"' EXIT
tsv=$logs/summary.tsv
: >"$tsv"
failed=0
set -f # package directories and targets are words, never patterns
echo "$list" | {
	while read -r pkg t; do
		log=$logs/$t.log
		start=$(date +%s)
		echo "fuzz: $t ($pkg)"
		# -run '^$': only the fuzz target, not the package's tests; its seeds run first anyway.
		if $GO test ${TAGS:+-tags "$TAGS"} -run '^$' -fuzz "^$t\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "${FUZZMINIMIZETIME:-10s}" ${FUZZPARALLEL:+-parallel "$FUZZPARALLEL"} "$pkg" >"$log" 2>&1; then
			result=ok
		elif ! grep -q 'Failing input written to' "$log" && [ "$(grep -A1 -- '^--- FAIL:' "$log" | tail -n 1 | tr -d ' \t')" = contextdeadlineexceeded ]; then
			# Go's fuzzing coordinator can fail a target with its own -fuzztime deadline, having
			# found nothing (go.dev/issue/75804, fixed in Go 1.27): not a crash of kite's code.
			result=ok-deadline-race
		else
			result=FAIL
		fi
		secs=$(($(date +%s) - start))
		# go test -fuzz prints "fuzz: elapsed: 1m0s, execs: 123456 (2057/sec), ..." as it goes.
		execs=$(sed -n 's/^fuzz: elapsed: .*, execs: \([0-9]*\) .*/\1/p' "$log" | tail -n 1)
		printf '%-32s %6ss  %-4s  %s\n' "$t" "$secs" "$result" "${execs:--} execs" >>"$summary"
		printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$pkg" "$FUZZTIME" "$secs" "$result" "${execs:-0}" >>"$tsv"
		if [ "$result" = FAIL ]; then
			input=$(sed -n 's/^.*Failing input written to \(testdata\/fuzz\/[^ ]*\).*/\1/p' "$log" | tail -n 1)
			echo "fuzz: $t FAILED; its output (tests/out/fuzz/$t.log) ends:"
			tail -n 30 "$log" | sed 's/^/    /'
			if [ -n "$input" ]; then
				printf '    failing input: %s/%s\n    re-run: %s test%s -run %s %s\n' "$pkg" "$input" "$GO" "${TAGS:+ -tags $TAGS}" "'^$t/$(basename "$input")\$'" "$pkg"
				printf '%-32s          input %s/%s\n' "" "$pkg" "$input" >>"$summary"
			fi
			failed=1
		fi
	done
	echo
	printf '%-32s %7s  %-4s  %s\n' TARGET TIME RESULT EXECS
	cat "$summary"
	exit $failed
}
