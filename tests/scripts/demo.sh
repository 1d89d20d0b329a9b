#!/bin/sh
# Runs the demo image with kite as an unprivileged user: the calling user, or (when run as root)
# the test user, created if needed. Usage: demo.sh TEST_USER
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
image="oci:$here/tests/out/layout:busybox"
cmd='echo "hello from a kite pod: $(id)"; echo "hostname: $(hostname)"; echo "uid map:"; cat /proc/self/uid_map'
if [ "$(id -u)" -eq 0 ]; then
	. "$here/tests/scripts/testuser.sh"
	ensure_test_user "$1"
	echo "+ runuser -u $1 -- bin/kite run $image -- sh -c '...'"
	exec runuser -u "$1" -- "$here/bin/kite" run "$image" -- sh -c "$cmd"
fi
echo "+ bin/kite run $image -- sh -c '...'"
exec "$here/bin/kite" run "$image" -- sh -c "$cmd"
