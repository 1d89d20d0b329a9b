#!/bin/sh
# Sourced by the test and demo scripts run as root: makes sure the unprivileged user $1 exists and
# has a subordinate id range, so rootless pods map more than one uid, and can open /dev/net/tun.
# Prints nothing when all is set.
ensure_test_user() {
	user=$1
	if ! id "$user" >/dev/null 2>&1; then
		useradd --create-home --shell /bin/sh "$user"
	fi
	if ! grep -q "^$user:" /etc/subuid 2>/dev/null; then
		usermod --add-subuids 300000-365535 "$user"
	fi
	if ! grep -q "^$user:" /etc/subgid 2>/dev/null; then
		usermod --add-subgids 300000-365535 "$user"
	fi
	# A pod of its own network needs /dev/net/tun (for pasta), which Debian makes mode 0666 and
	# some virtual machines 0600.
	if [ -c /dev/net/tun ] && ! runuser -u "$user" -- sh -c 'test -r /dev/net/tun && test -w /dev/net/tun'; then
		echo "making /dev/net/tun usable by every user (chmod 0666), as on Debian"
		chmod 0666 /dev/net/tun
	fi
}
