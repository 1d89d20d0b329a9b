package spec

import (
	"fmt"
	"slices"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultCapabilities is what a root app keeps: the OCI and Docker default set.
var DefaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// allCapabilities are the capabilities kite knows, by their OCI names.
func allCapabilities() []string {
	var out []string
	for _, c := range capability.ListKnown() {
		out = append(out, "CAP_"+strings.ToUpper(c.String()))
	}
	return out
}

// capabilityName turns a user's capability name (chown, CAP_CHOWN, cap_chown) into its OCI name.
func capabilityName(s string) (string, error) {
	name := strings.ToUpper(strings.TrimSpace(s))
	if !strings.HasPrefix(name, "CAP_") {
		name = "CAP_" + name
	}
	if !slices.Contains(allCapabilities(), name) {
		return "", fmt.Errorf("unknown capability %q; see capabilities(7)", s)
	}
	return name, nil
}

// capabilitySets computes the app's capabilities: the default set with retain added and remove
// taken away ("all" in either means every capability), or every capability the user namespace
// has when keepAll. A root app holds them in its bounding, permitted and effective sets; any other
// app only in its bounding set, with nothing effective. Inheritable and ambient sets stay empty.
func capabilitySets(retain, remove []string, keepAll, root bool) (*specs.LinuxCapabilities, error) {
	set := slices.Clone(DefaultCapabilities)
	if keepAll {
		set = allCapabilities()
	}
	for _, r := range retain {
		if strings.EqualFold(r, "all") {
			set = allCapabilities()
			continue
		}
		name, err := capabilityName(r)
		if err != nil {
			return nil, fmt.Errorf("--caps-retain: %w", err)
		}
		if !slices.Contains(set, name) {
			set = append(set, name)
		}
	}
	for _, r := range remove {
		if strings.EqualFold(r, "all") {
			set = nil
			continue
		}
		name, err := capabilityName(r)
		if err != nil {
			return nil, fmt.Errorf("--caps-remove: %w", err)
		}
		set = slices.DeleteFunc(set, func(c string) bool { return c == name })
	}
	caps := &specs.LinuxCapabilities{Bounding: set, Inheritable: []string{}, Ambient: []string{}, Permitted: []string{}, Effective: []string{}}
	if root {
		caps.Permitted, caps.Effective = slices.Clone(set), slices.Clone(set)
	}
	if caps.Bounding == nil {
		caps.Bounding = []string{}
	}
	return caps, nil
}
