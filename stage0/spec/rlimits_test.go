package spec

import (
	"math"
	"strings"
	"testing"
)

func TestParseUlimit(t *testing.T) {
	for _, tc := range []struct {
		in         string
		typ        string
		soft, hard uint64
		wantErr    string
	}{
		{in: "nofile=1024:4096", typ: "RLIMIT_NOFILE", soft: 1024, hard: 4096},
		{in: "NOFILE=10", typ: "RLIMIT_NOFILE", soft: 10, hard: 10},
		{in: "core=unlimited", typ: "RLIMIT_CORE", soft: math.MaxUint64, hard: math.MaxUint64},
		{in: "stack=8192:-1", typ: "RLIMIT_STACK", soft: 8192, hard: math.MaxUint64},
		{in: "files=1", wantErr: "NAME=SOFT"},
		{in: "nofile", wantErr: "NAME=SOFT"},
		{in: "nofile=x", wantErr: "not a number"},
		{in: "nofile=10:5", wantErr: "above the hard"},
	} {
		r, err := ParseUlimit(tc.in)
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseUlimit(%q) = %v, want an error containing %q", tc.in, err, tc.wantErr)
			}
		case err != nil || r.Type != tc.typ || r.Soft != tc.soft || r.Hard != tc.hard:
			t.Errorf("ParseUlimit(%q) = %+v, %v", tc.in, r, err)
		}
	}
}
