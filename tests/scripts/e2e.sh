#!/bin/sh
# Runs the end-to-end suite (bin/e2e.test) against the built binaries. As root: as the unprivileged
# test user first (created if needed), then the rootful cases as root. As any other user: as that
# user, with the rootful cases reported as not run. Usage: e2e.sh TEST_USER
# Environment: E2E_RUN, a -test.run pattern for the whole suite (default: every test),
# E2E_ROOTFUL_RUN, the pattern of the rootful cases (default: Rootful), E2E_TIMEOUT (30m, a safety net for a hung test); the KITE_* knobs of the
# hardening tests (KITE_HARDENING_DIR, KITE_TORTURE_RUNS, KITE_TORTURE_PODS, KITE_TORTURE_SEED)
# reach the suite as the test user too; the rootful part, as root, sees the whole environment
# (KITE_BOMB_GIB, KITE_BOMB_INODES size the bombs of TestRootfulBombs).
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
export KITE_BIN_DIR="$here/bin" KITE_TEST_IMAGES="$here/tests/out"
args="-test.v -test.timeout=${E2E_TIMEOUT:-30m}"
run=${E2E_RUN:-.}
if [ "$(id -u)" -ne 0 ]; then
	exec "$here/bin/e2e.test" $args -test.run "$run"
fi
. "$here/tests/scripts/testuser.sh"
ensure_test_user "$1"
# The suite's scratch space must belong to the test user.
scratch=$(runuser -u "$1" -- mktemp -d /tmp/kite-e2e.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
echo "== rootless, as $1"
runuser -u "$1" -- env TMPDIR="$scratch" KITE_BIN_DIR="$KITE_BIN_DIR" KITE_TEST_IMAGES="$KITE_TEST_IMAGES" \
	KITE_CI="${KITE_CI:-}" KITE_HARDENING_DIR="${KITE_HARDENING_DIR:-}" KITE_TORTURE_RUNS="${KITE_TORTURE_RUNS:-}" \
	KITE_TORTURE_PODS="${KITE_TORTURE_PODS:-}" KITE_TORTURE_SEED="${KITE_TORTURE_SEED:-}" \
	"$here/bin/e2e.test" $args -test.run "$run" -test.skip Rootful
echo "== rootful, as root"
# The small-disk tests mount a tmpfs as root and run kite on it as the test user.
KITE_TEST_USER="$1" "$here/bin/e2e.test" $args -test.run "${E2E_ROOTFUL_RUN:-Rootful}"
