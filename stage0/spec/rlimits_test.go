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

func TestParseMemory(t *testing.T) {
	for in, want := range map[string]int64{"1048576": 1 << 20, "512m": 512 << 20, "2g": 2 << 30, "1Gi": 1 << 30, "64MB": 64 << 20, "1.5k": 1536} {
		if got, err := ParseMemory(in); err != nil || got != want {
			t.Errorf("ParseMemory(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "m", "-1m", "64x", "0"} {
		if _, err := ParseMemory(in); err == nil {
			t.Errorf("ParseMemory(%q) was accepted", in)
		}
	}
}

func TestParseCPU(t *testing.T) {
	for in, want := range map[string]int64{"1": 100000, "1.5": 150000, "500m": 50000, "10m": 1000} {
		if got, err := ParseCPU(in); err != nil || got != want {
			t.Errorf("ParseCPU(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "5m", "0", "x", "-1"} {
		if _, err := ParseCPU(in); err == nil {
			t.Errorf("ParseCPU(%q) was accepted", in)
		}
	}
}
