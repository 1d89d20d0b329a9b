package idmap

// Fuzz targets for /etc/subuid and /etc/subgid (parseSubordinate) and for uid_map and gid_map
// files (Read). `make unit` runs their seeds; `make fuzz` fuzzes each for $(FUZZTIME).

import (
	"bufio"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// FuzzParseSubordinate checks the subuid(5) parser: it returns exactly the well-formed ranges of
// the user's lines (by name or uid), in the file's order, each non-empty and within the 32-bit id
// space; and follow numbers them inside the namespace one after another without passing 2^32-1.
func FuzzParseSubordinate(f *testing.F) {
	f.Add("# comment\nalice:100000:65536\nbob:200000:1000\n1001:300000:10\nalice:bad:1\nalice:5:0\nalice:400000:5\n", "alice", 1001)
	f.Add("alice:4294967294:1\nalice:4294967295:1\nalice:0:4294967295\nalice:1:4294967295\n", "alice", 1001)
	f.Add(" alice:100000:65536 \r\nalice:+1:1\nalice:-1:2\nalice:1:2:3\nalice::1\n:1:1\n", "alice", 0)
	f.Add("1001:100000:65536\n", "", 1001)
	f.Add("alice:100000:4294901760\nalice:1:65536\n", "alice", -1)
	f.Fuzz(func(t *testing.T, data, name string, uid int) {
		got := parseSubordinate(strings.NewReader(data), name, uid)
		// An independent reading of the same lines.
		var want []specs.LinuxIDMapping
		sc := bufio.NewScanner(strings.NewReader(data))
		for sc.Scan() {
			fields := strings.Split(strings.TrimSpace(sc.Text()), ":")
			if len(fields) != 3 || fields[0] != name && fields[0] != strconv.Itoa(uid) {
				continue
			}
			first, err1 := strconv.ParseUint(fields[1], 10, 64)
			count, err2 := strconv.ParseUint(fields[2], 10, 64)
			if err1 == nil && err2 == nil && count > 0 && first <= 1<<32-1 && count <= 1<<32-1 && first+count <= 1<<32-1 {
				want = append(want, specs.LinuxIDMapping{HostID: uint32(first), Size: uint32(count)})
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("parseSubordinate(%q, %q, %d) = %v, want %v", data, name, uid, got, want)
		}
		for _, r := range got {
			if r.Size == 0 || uint64(r.HostID)+uint64(r.Size) > 1<<32-1 {
				t.Fatalf("parseSubordinate(%q) gave the range %+v", data, r)
			}
		}
		m := Follow([]specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}, got)
		next := uint64(0)
		for i, e := range m {
			if uint64(e.ContainerID) != next || next+uint64(e.Size) > 1<<32-1 || e.Size == 0 {
				t.Fatalf("follow gave %v: entry %d does not follow the one before within 2^32-1", m, i)
			}
			next += uint64(e.Size)
			if i > 0 && (e.HostID != got[i-1].HostID || e.Size != got[i-1].Size) {
				t.Fatalf("follow gave %v for the ranges %v", m, got)
			}
		}
	})
}

// FuzzRead checks the uid_map parser: no panic, at least one mapping when it succeeds, and what
// Format writes of the mappings reads back the same.
func FuzzRead(f *testing.F) {
	for _, s := range []string{
		"         0       1000          1\n         1     100000      65536\n", "0 1000\n", "", "0 0 4294967295\n",
		"0 0 4294967296\n", "-1 0 1\n", "0x10 0 1\n", "1 2 3 4\n", "\n\n0 0 1\n", "0 0 1\r\n1 1 1", " \t\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "uid_map")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := Read(p)
		if err != nil {
			return
		}
		if len(m) == 0 {
			t.Fatalf("Read(%q) = no mappings and no error", data)
		}
		if err := os.WriteFile(p, []byte(Format(m)), 0o644); err != nil {
			t.Fatal(err)
		}
		if again, err := Read(p); err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("Read(%q) = %v; written back it reads %v, %v", data, m, again, err)
		}
	})
}
