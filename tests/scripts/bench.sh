#!/bin/sh
# Runs the benchmarks (tests/cmd/bench) as an unprivileged user and writes BENCHMARKS.md. As root it
# installs the peers (bubblewrap, podman, skopeo) from Debian and runs as the test user.
# Usage: bench.sh TEST_USER
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
go build -o bin/bench ./tests/cmd/bench
CGO_ENABLED=0 go build -o bin/empty ./tests/cmd/empty
if [ "$(id -u)" -ne 0 ]; then
	exec bin/bench -bin bin -images tests/out -out BENCHMARKS.md
fi
sh tests/scripts/deps.sh hyperfine bubblewrap podman runc crun skopeo
. tests/scripts/testuser.sh
ensure_test_user "$1"
cd /tmp
runuser -u "$1" -- "$here/bin/bench" -bin "$here/bin" -images "$here/tests/out" -out /tmp/kite-BENCHMARKS.md
cp /tmp/kite-BENCHMARKS.md "$here/BENCHMARKS.md"
