#!/bin/sh
# make hardening: runs the hardening tests of the e2e suite (hostile images, CVE regressions,
# crash and concurrency torture, full disk) at full size, then every fuzz target, then writes the
# counts into SECURITY.md (tests/cmd/hardening). Each step records its exit status in
# tests/out/hardening/step-NAME, next to the rows the tests wrote there; a step can be run alone
# (HARDENING_STEPS="fuzz report"), and report then uses the other steps' latest results.
# Environment: HARDENING_STEPS ("e2e fuzz report"), HARDENING_TESTS (the e2e tests' pattern),
# HARDENING_ROOTFUL_TESTS (the rootful ones), TORTURE_RUNS (100 kills per command),
# TORTURE_PODS (50 pods at once), TORTURE_SEED, FUZZTIME (60s a target), GO, TAGS.
# Usage: hardening.sh TEST_USER
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
out=tests/out/hardening
mkdir -p "$out"
failed=0
# record writes a step's exit status, with the commit and time it started at.
record() {
	printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$commit" "$started" >"$out/step-$1"
	[ "$2" -eq 0 ] || failed=1
}
for step in ${HARDENING_STEPS:-e2e fuzz report}; do
	echo "== hardening: $step"
	commit=$(git log -1 --format=%h 2>/dev/null || echo unknown)
	[ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] || commit="$commit+changes"
	started=$(date -u '+%Y-%m-%d %H:%M UTC')
	case $step in
	e2e)
		rm -f "$out"/*.tsv "$out/step-e2e"
		# The test user writes rows in the rootless part, root in the rootful part.
		chmod 1777 "$out"
		KITE_HARDENING_DIR="$here/$out" KITE_TORTURE_RUNS="${TORTURE_RUNS:-100}" KITE_TORTURE_PODS="${TORTURE_PODS:-50}" \
			KITE_TORTURE_SEED="${TORTURE_SEED:-}" E2E_RUN="$HARDENING_TESTS" E2E_ROOTFUL_RUN="$HARDENING_ROOTFUL_TESTS" \
			E2E_TIMEOUT=120m sh tests/scripts/e2e.sh "$1"
		record e2e $?
		;;
	fuzz)
		sh tests/scripts/fuzz.sh
		record fuzz $?
		;;
	report)
		${GO:-go} run ./tests/cmd/hardening -results "$out" -fuzz tests/out/fuzz/summary.tsv -security SECURITY.md || failed=1
		;;
	*)
		echo "hardening: unknown step $step (steps: e2e fuzz report)" >&2
		exit 2
		;;
	esac
done
exit $failed
