package spec

import (
	"slices"
	"strings"
	"testing"
)

func TestCapabilitySets(t *testing.T) {
	c, err := capabilitySets([]string{"sys_admin", "CAP_NET_ADMIN"}, []string{"cap_chown", "kill"}, false, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_SETUID"} {
		if !slices.Contains(c.Bounding, want) || !slices.Contains(c.Effective, want) || !slices.Contains(c.Permitted, want) {
			t.Errorf("%s missing from %+v", want, c)
		}
	}
	for _, gone := range []string{"CAP_CHOWN", "CAP_KILL"} {
		if slices.Contains(c.Bounding, gone) {
			t.Errorf("%s still in the bounding set", gone)
		}
	}
	if len(c.Inheritable) != 0 || len(c.Ambient) != 0 {
		t.Errorf("inheritable or ambient set: %+v", c)
	}
	user, _ := capabilitySets(nil, nil, false, false)
	if len(user.Bounding) != len(DefaultCapabilities) || len(user.Effective) != 0 || len(user.Permitted) != 0 {
		t.Errorf("non-root app: %+v, want the default bounding set and nothing effective", user)
	}
	none, _ := capabilitySets([]string{"all"}, []string{"all"}, false, true)
	if len(none.Bounding) != 0 {
		t.Errorf("remove all left %v", none.Bounding)
	}
	every, _ := capabilitySets(nil, nil, true, true)
	if len(every.Bounding) != len(allCapabilities()) {
		t.Errorf("keep all: %d capabilities, want %d", len(every.Bounding), len(allCapabilities()))
	}
	if _, err := capabilitySets([]string{"fly"}, nil, false, true); err == nil || !strings.Contains(err.Error(), `"fly"`) {
		t.Errorf("unknown capability: %v", err)
	}
}
