#!/bin/sh
# Runs the benchmarks (tests/cmd/bench) as an unprivileged user and writes BENCHMARKS.md. As root it
# installs the peers (bubblewrap, podman, skopeo) from Debian and runs as the test user.
# Usage: bench.sh TEST_USER
set -eu

# debian_rootfs prints the Debian root file system tarball that the fetch benchmark's image is
# made of. mmdebstrap makes it once, from this machine's apt sources, into the cache directory $1
# (delete the file for a fresh one). It prints nothing when mmdebstrap is missing or fails: the
# bench then generates its image.
debian_rootfs() {
	tarball=$1/debian-minbase.tar
	if [ ! -s "$tarball" ] && command -v mmdebstrap >/dev/null; then
		mkdir -p "$1"
		sources=/etc/apt/sources.list.d/debian.sources
		[ -e "$sources" ] || sources=/etc/apt/sources.list
		codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
		echo "bench: making a Debian $codename minbase root file system with mmdebstrap" >&2
		if mmdebstrap --quiet --variant=minbase --format=tar "$codename" "$tarball.tmp" "$sources" >&2; then
			chmod 644 "$tarball.tmp"
			mv "$tarball.tmp" "$tarball"
		else
			rm -f "$tarball.tmp"
		fi
	fi
	if [ -s "$tarball" ]; then echo "$tarball"; fi
}
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
go build -o bin/bench ./tests/cmd/bench
CGO_ENABLED=0 go build -o bin/empty ./tests/cmd/empty
if [ "$(id -u)" -ne 0 ]; then
	exec bin/bench -bin bin -images tests/out -out BENCHMARKS.md -debian "$(debian_rootfs "${XDG_CACHE_HOME:-$HOME/.cache}/kite-bench")"
fi
sh tests/scripts/deps.sh hyperfine bubblewrap podman runc crun skopeo mmdebstrap
debian=$(debian_rootfs /var/cache/kite-bench)
. tests/scripts/testuser.sh
ensure_test_user "$1"
cd /tmp
set -- runuser -u "$1" -- "$here/bin/bench" -bin "$here/bin" -images "$here/tests/out" -out /tmp/kite-BENCHMARKS.md -debian "$debian"
# crun refuses a cgroup v1/v2 hybrid whose v2 hierarchy has controllers. The bench runs in a mount
# namespace of its own where an empty file covers that hierarchy's cgroup.controllers, so that
# crun runs and every command measured sees the same (none uses cgroups rootless on such a host).
controllers=/sys/fs/cgroup/unified/cgroup.controllers
# (cgroupfs files have no size: read it.)
if [ -n "$(cat "$controllers" 2>/dev/null)" ]; then
	empty=$(mktemp /tmp/kite-bench-controllers.XXXXXX)
	chmod 644 "$empty" # crun, run by the test user, reads it
	rc=0
	unshare --mount --propagation private sh -c 'mount --bind "$1" "$2" && shift 2 && exec "$@"' sh "$empty" "$controllers" "$@" || rc=$?
	rm -f "$empty"
	[ "$rc" -eq 0 ] || exit "$rc"
else
	"$@"
fi
cp /tmp/kite-BENCHMARKS.md "$here/BENCHMARKS.md"
