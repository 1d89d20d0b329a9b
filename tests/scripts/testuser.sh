#!/bin/sh
# Sourced by the test and demo scripts run as root: makes sure the unprivileged user $1 exists and
# has a subordinate id range, so rootless pods map more than one uid. Prints nothing when all is set.
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
}
