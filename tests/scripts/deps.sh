#!/bin/sh
# Installs the Debian packages kite's build and tests need when run as root; otherwise prints the
# command that does. Usage: deps.sh PACKAGE...
set -eu
missing=""
for p in "$@"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if ! command -v go >/dev/null 2>&1; then
	echo "kite: Go 1.26 or later is needed: see https://go.dev/doc/install" >&2
	exit 1
fi
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "kite: missing packages:$missing" >&2
	echo "kite: run: sudo apt-get install -y$missing" >&2
	exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq $missing >/dev/null
