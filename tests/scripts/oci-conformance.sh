#!/bin/sh
# Runs the OCI runtime conformance suite, the validation programs of runtime-tools v0.9.0, against
# bin/kite-oci (or the runtime named by $RUNTIME, e.g. /usr/bin/crun for a comparison) as an
# unprivileged user, prints a table and compares it with tests/oci-conformance/expected-pass.txt.
# As root: as TEST_USER (created if needed). As any other user: as that user.
# Usage: oci-conformance.sh TEST_USER [runner flags: -run REGEX, -update, -v, -timeout 120s]
# See tests/oci-conformance/README.md.
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
user=$1
shift
runtime=${RUNTIME:-$here/bin/kite-oci}
out=$here/bin/oci-conformance
expected=$here/tests/oci-conformance/expected-pass.txt

# Build, from the nested module that pins runtime-tools and the libraries it was made with: the
# runner, runtimetest (static: it runs inside the container, on the test root file system) and
# each program as NAME.t, with the root file system tarball the programs unpack into each bundle.
echo "building the runner and runtime-tools' programs into $out"
mkdir -p "$out"
rm -rf "$out/.build" "$out"/*.t
(
	cd tests/oci-conformance
	export CGO_ENABLED=0
	# go list -m below names module directories only once the modules are in the cache.
	go mod download
	# The runner's own tests: how it reads TAP and judges a program.
	go vet ./... && go test -count=1 ./...
	go build -o "$out/ociconformance" ./cmd/ociconformance
	# runtimetest is runtime-tools' package plus testdata/runtimetest_nofile.go (which says why),
	# put together by an overlay in a package directory that exists only for this build.
	src=$(go list -m -f '{{.Dir}}' github.com/opencontainers/runtime-tools)/cmd/runtimetest
	pkg=$PWD/runtimetest
	overlay="\"$pkg/zz_restore_nofile.go\":\"$PWD/testdata/runtimetest_nofile.go\""
	for f in "$src"/*.go; do overlay="$overlay,\"$pkg/${f##*/}\":\"$f\""; done
	echo "{\"Replace\":{$overlay}}" > "$out/overlay.json"
	go build -overlay "$out/overlay.json" -ldflags=-checklinkname=0 -o "$out/runtimetest" ./runtimetest
	progs=$(go list github.com/opencontainers/runtime-tools/validation/... | grep -v '/validation/util$')
	# One build for all (the links run in parallel), then NAME -> NAME.t.
	go build -o "$out/.build/" $progs
	for p in $progs; do mv "$out/.build/${p##*/}" "$out/${p##*/}.t"; done
	rmdir "$out/.build"
	install -m 0644 "$(go list -m -f '{{.Dir}}' github.com/opencontainers/runtime-tools)/rootfs-amd64.tar.gz" "$out/"
)
rm -rf "$out/logs"
mkdir "$out/logs"
if [ "$(id -u)" -ne 0 ]; then
	exec "$out/ociconformance" -dir "$out" -runtime "$runtime" -logs "$out/logs" -expected "$expected" "$@"
fi

. "$here/tests/scripts/testuser.sh"
ensure_test_user "$user"
# The test user writes the logs, and the expected list (with -update) in a copy that goes back.
cp "$expected" "$out/logs/expected-pass.txt"
chown -R "$user" "$out/logs"
# The runner's scratch space (XDG_RUNTIME_DIR, bundles) belongs to the test user; root removes it
# at the end in case a container left files of a subordinate uid that the user cannot remove.
scratch=$(runuser -u "$user" -- mktemp -d /tmp/kite-occ.XXXXXX)
empty=
trap 'rm -rf "$scratch" $empty' EXIT
set -- runuser -u "$user" -- env TMPDIR="$scratch" "$out/ociconformance" -dir "$out" -runtime "$runtime" \
	-logs "$out/logs" -expected "$out/logs/expected-pass.txt" "$@"

# crun refuses a cgroup v1/v2 hybrid whose v2 hierarchy has controllers. For crun only
# (OCI_HIDE_CGROUP2_CONTROLLERS=1 forces it, =0 prevents it), the run happens in a mount namespace
# of its own where an empty file covers that hierarchy's cgroup.controllers, as in bench.sh; the
# host is not changed.
controllers=/sys/fs/cgroup/unified/cgroup.controllers
hide=${OCI_HIDE_CGROUP2_CONTROLLERS:-0}
if [ "$(basename "$runtime")" = crun ]; then hide=${OCI_HIDE_CGROUP2_CONTROLLERS:-1}; fi
rc=0
# (cgroupfs files have no size: read it.)
if [ "$hide" = 1 ] && [ -n "$(cat "$controllers" 2>/dev/null)" ]; then
	echo "running in a mount namespace where $controllers is empty (for crun)"
	empty=$(mktemp /tmp/kite-oci-conformance-controllers.XXXXXX)
	chmod 644 "$empty" # crun, run by the test user, reads it
	unshare --mount --propagation private sh -c 'mount --bind "$1" "$2" && shift 2 && exec "$@"' \
		sh "$empty" "$controllers" "$@" || rc=$?
else
	"$@" || rc=$?
fi
if ! cmp -s "$out/logs/expected-pass.txt" "$expected"; then
	cp "$out/logs/expected-pass.txt" "$expected"
fi
echo "logs: $out/logs"
exit "$rc"
