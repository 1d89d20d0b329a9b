package spec

// Fuzz targets for the parsers of the user's run flags (--volume, --mount, --ulimit, --memory,
// --cpu, --seccomp) and of an image's /etc/passwd and /etc/group. `make unit` runs their seeds;
// `make fuzz` fuzzes each for $(FUZZTIME).

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kite-runtime/kite/stage0/imageindex"
	"golang.org/x/sys/unix"
)

// FuzzParseVolume checks --volume: what it accepts is a valid volume (a valid name, a known kind,
// an absolute existing host source, a mode of at most 07777, an empty volume's directory inside
// the pod's volumes directory), the rkt form writes back to a value that parses to the same
// volume, and the shorthand mounts the volume it defines.
func FuzzParseVolume(f *testing.F) {
	host := f.TempDir()
	for _, s := range []string{
		"data,kind=host,source=" + host,
		"data,kind=host,source=" + host + ",readOnly=true,recursive=false",
		"tmp-1,kind=empty,mode=1777,uid=1000,gid=2000",
		host + ":/data", host + ":/data:ro", host + ":/data:rx", host + "/missing:/data",
		"./:/data:rw", ".:relative", "/:/:ro:x",
		"Data,kind=empty", "data,kind=host", "data,kind=empty,source=/x", "data,kind=empty,mode=999",
		"data,kind=empty,uid=-1", "data,kind=nfs", "data,kind=empty,size=1G", "data,readOnly",
		"a.b_c-d,kind=empty,mode=0", "a..b,kind=empty", "a-,kind=empty", "..,kind=empty",
		"data,kind=host,source=.", "data,kind=host,source=/tmp/../" + host, "data,kind=empty,mode=07777,uid=4294967295",
		"data,kind=empty,mode=010000", "data,kind=empty,gid=4294967296", "data,kind=host,source=" + host + ",kind=empty",
	} {
		f.Add(s, 3)
	}
	f.Fuzz(func(t *testing.T, s string, n int) {
		v, m, err := ParseVolume(s, n)
		if err != nil {
			if m != nil {
				t.Fatalf("ParseVolume(%q) failed (%v) but returned a mount %+v", s, err, m)
			}
			return
		}
		if v.Kind != "host" && v.Kind != "empty" {
			t.Fatalf("ParseVolume(%q) = kind %q", s, v.Kind)
		}
		if v.Mode > 0o7777 {
			t.Fatalf("ParseVolume(%q) = mode %o, above 07777", s, v.Mode)
		}
		switch v.Kind {
		case "host":
			if !filepath.IsAbs(v.Source) || filepath.Clean(v.Source) != v.Source {
				t.Fatalf("ParseVolume(%q) = host source %q, not a clean absolute path", s, v.Source)
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Fatalf("ParseVolume(%q) accepted a source it cannot stat: %v", s, err)
			}
		case "empty":
			if v.Source != "" {
				t.Fatalf("ParseVolume(%q) = empty volume with source %q", s, v.Source)
			}
		}
		if strings.HasPrefix(s, "/") || strings.HasPrefix(s, ".") {
			// The shorthand: a host volume named after n, mounted at once.
			if m == nil || m.Volume != v.Name || v.Name != "volume-"+strconv.Itoa(n) || v.Kind != "host" || !v.Recursive {
				t.Fatalf("ParseVolume(%q, %d) = %+v, mount %+v: want host volume volume-%d and its mount", s, n, v, m, n)
			}
			return
		}
		if m != nil {
			t.Fatalf("ParseVolume(%q) = a mount %+v for the rkt form", s, m)
		}
		if !validVolumeName(v.Name) {
			t.Fatalf("ParseVolume(%q) accepted the name %q", s, v.Name)
		}
		// An empty volume lives in volumes/NAME of the pod directory, never elsewhere.
		if dir := filepath.Join("volumes", v.Name); filepath.Dir(dir) != "volumes" || filepath.Base(dir) != v.Name {
			t.Fatalf("ParseVolume(%q): the volume %q leaves the volumes directory (%s)", s, v.Name, dir)
		}
		// The rkt form round-trips.
		again := fmt.Sprintf("%s,kind=%s,readOnly=%t,recursive=%t,mode=%o,uid=%d,gid=%d", v.Name, v.Kind, v.ReadOnly, v.Recursive, v.Mode, v.UID, v.GID)
		if v.Kind == "host" {
			again += ",source=" + v.Source
		}
		w, wm, err := ParseVolume(again, n)
		if err != nil || wm != nil || w != v {
			t.Fatalf("ParseVolume(%q) = %+v, written back as %q it parses to %+v, %v", s, v, again, w, err)
		}
	})
}

// FuzzParseMount checks --mount: what it accepts names a volume and a target and writes back to
// a value that parses to the same mount point; mounted, an absolute target becomes a clean
// absolute destination and a relative one is refused.
func FuzzParseMount(f *testing.F) {
	for _, s := range []string{
		"volume=data,target=/data", "target=/a,volume=b", "volume=data", "target=/x", "volume=a,target=/b,size=1",
		"volume=a=b,target=c=d", "volume,target", "", ",", "volume=data,target=/../../etc", "volume=x,target=relative/../..",
		"volume=data,target=/data,volume=other", "volume=data,target=/srv/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMount(s)
		if err != nil {
			return
		}
		if m.Volume == "" || m.Target == "" {
			t.Fatalf("ParseMount(%q) = %+v, without a volume or target", s, m)
		}
		again := "volume=" + m.Volume + ",target=" + m.Target
		if m2, err := ParseMount(again); err != nil || m2 != m {
			t.Fatalf("ParseMount(%q) = %+v; written back as %q it parses to %+v, %v", s, m, again, m2, err)
		}
		vols := []Volume{{Name: m.Volume, Kind: "empty", Mode: 0o700}}
		mounts, empty, err := volumeMounts(vols, []MountPoint{m})
		if !filepath.IsAbs(m.Target) {
			if err == nil {
				t.Fatalf("volumeMounts accepted the relative target %q", m.Target)
			}
			return
		}
		if err != nil {
			t.Fatalf("volumeMounts(%+v): %v", m, err)
		}
		if len(mounts) != 1 || len(empty) != 1 {
			t.Fatalf("volumeMounts(%+v) = %+v, %+v: want one mount and one empty volume", m, mounts, empty)
		}
		d := mounts[0].Destination
		if !filepath.IsAbs(d) || filepath.Clean(d) != d || slices.Contains(strings.Split(d, "/"), "..") {
			t.Fatalf("volumeMounts(%+v): destination %q is not a clean absolute path", m, d)
		}
		if mounts[0].Source != empty[0].Dir || mounts[0].Source != filepath.Join("volumes", m.Volume) {
			t.Fatalf("volumeMounts(%+v): source %q, empty volume %q", m, mounts[0].Source, empty[0].Dir)
		}
	})
}

// FuzzParseUlimit checks --ulimit: what it accepts is a known resource with soft <= hard, and
// writes back (numbers, or unlimited) to a value that parses to the same limit.
func FuzzParseUlimit(f *testing.F) {
	for _, s := range []string{
		"nofile=1024:4096", "NOFILE=10", "core=unlimited", "stack=8192:-1", "files=1", "nofile", "nofile=x",
		"nofile=10:5", "nofile=-1:5", "nofile=unlimited:unlimited", "nproc=18446744073709551615", "cpu=18446744073709551616",
		"rttime=1:2:3", "=1", "nofile=", "nofile=:5", "nofile=+5", "NoFile=0:0",
	} {
		f.Add(s)
	}
	known := map[string]bool{}
	for _, typ := range rlimitNames {
		known[typ] = true
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseUlimit(s)
		if err != nil {
			return
		}
		if !known[r.Type] || r.Soft > r.Hard {
			t.Fatalf("ParseUlimit(%q) = %+v", s, r)
		}
		limit := func(n uint64) string {
			if n == math.MaxUint64 {
				return "unlimited"
			}
			return strconv.FormatUint(n, 10)
		}
		name, _, _ := strings.Cut(s, "=")
		again := name + "=" + limit(r.Soft) + ":" + limit(r.Hard)
		if r2, err := ParseUlimit(again); err != nil || r2 != r {
			t.Fatalf("ParseUlimit(%q) = %+v; written back as %q it parses to %+v, %v", s, r, again, r2, err)
		}
	})
}

// FuzzParseMemory checks --memory: an accepted size is a positive number of bytes (0 would mean
// no limit at all), and written back in bytes it parses to itself.
func FuzzParseMemory(f *testing.F) {
	for _, s := range []string{
		"1048576", "512m", "2g", "1Gi", "64MB", "1.5k", "", "m", "-1m", "64x", "0", " 1 ", "1t", "8388607t",
		"9223372036854775807", "1e3", "0x10", "inf", "nan", "1kib", "1.5GiB", "b", "ib",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseMemory(s)
		if err != nil {
			if n != 0 {
				t.Fatalf("ParseMemory(%q) failed but returned %d", s, n)
			}
			return
		}
		if n < 1 {
			t.Fatalf("ParseMemory(%q) = %d: not a positive size", s, n)
		}
		// Sizes from 2^53 up are not exact in a float64; below, the round trip must be exact.
		if n < 1<<53 {
			if again, err := ParseMemory(strconv.FormatInt(n, 10)); again != n {
				t.Fatalf("ParseMemory(%q) = %d, which written back parses to %d, %v", s, n, again, err)
			}
		}
	})
}

// FuzzParseCPU checks --cpu: an accepted share is a quota of at least 1 ms per period (the
// kernel's minimum), and is the share asked for: no overflow, on any architecture.
func FuzzParseCPU(f *testing.F) {
	for _, s := range []string{"1", "1.5", "500m", "10m", "", "5m", "0", "x", "-1", "inf", "nan", "1e300", "9.999m", " 2 ", "0x1p3", "1mm"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ParseCPU(s)
		if err != nil {
			return
		}
		if q < 1000 {
			t.Fatalf("ParseCPU(%q) = %d: below the kernel's minimum quota", s, q)
		}
		text, scale := strings.TrimSpace(s), float64(cpuPeriod)
		if m, ok := strings.CutSuffix(text, "m"); ok {
			text, scale = m, cpuPeriod/1000
		}
		x, _ := strconv.ParseFloat(text, 64)
		if want := x * scale; math.IsNaN(want) || math.Abs(float64(q)-want) > 1+want*1e-9 {
			t.Fatalf("ParseCPU(%q) = %d, want about %g", s, q, want)
		}
	})
}

// FuzzParseSeccomp checks --seccomp: what it accepts has a mode, at least one system call or
// group, call names of [a-z0-9_] only, known groups only and a real errno, and writes back to a
// value that parses to the same request.
func FuzzParseSeccomp(f *testing.F) {
	for _, s := range []string{
		"mode=remove,errno=ENOSYS,getppid,@kite/default-deny", "mode=retain,@kite/default-allow", "retain,read",
		"mode=keep,read", "mode=remove", "mode=remove,errno=EWHAT,read", "mode=remove,@nosuch", "mode=remove,Read;",
		"mode=remove,errno=enotsup,getpid", " mode=retain , read , , write ", "mode=retain,@all,errno=EPERM,errno=EACCES",
		"mode=retain,@docker/default-allow,execve", "mode=remove,errno=,read", "mode=remove,errno=E,x", "mode=retain,ß",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseSeccomp(s)
		if err != nil {
			if r != nil {
				t.Fatalf("parseSeccomp(%q) failed (%v) but returned %+v", s, err, r)
			}
			return
		}
		if len(r.names)+len(r.groups) == 0 {
			t.Fatalf("parseSeccomp(%q) = %+v: nothing named", s, r)
		}
		for _, n := range r.names {
			if n == "" || strings.ContainsFunc(n, func(c rune) bool { return !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') }) {
				t.Fatalf("parseSeccomp(%q): %q is not a system call name", s, n)
			}
		}
		for _, g := range r.groups {
			if !slices.Contains(SeccompGroups, g) {
				t.Fatalf("parseSeccomp(%q): unknown group %q", s, g)
			}
		}
		if r.errno < 1 || r.errno >= 4096 || unix.ErrnoName(unix.Errno(r.errno)) == "" {
			t.Fatalf("parseSeccomp(%q): errno %d", s, r.errno)
		}
		mode := "mode=remove"
		if r.retain {
			mode = "mode=retain"
		}
		again := strings.Join(append(append([]string{mode, "errno=" + unix.ErrnoName(unix.Errno(r.errno))}, r.names...), r.groups...), ",")
		r2, err := parseSeccomp(again)
		if err != nil || r2.retain != r.retain || r2.errno != r.errno || !slices.Equal(r2.names, r.names) || !slices.Equal(r2.groups, r.groups) {
			t.Fatalf("parseSeccomp(%q) = %+v; written back as %q it parses to %+v, %v", s, r, again, r2, err)
		}
	})
}

// FuzzResolveUser checks the lookup of the app's user in an image's /etc/passwd and /etc/group
// (hostile input: the image's author wrote them): no panic, a home directory, the primary group
// not repeated among the supplementary ones, and ids in the range the kernel takes (0 to
// 2^31-1: a uid that wrapped to 2^32-1 is (uid_t)-1, which setresuid(2) reads as "unchanged").
func FuzzResolveUser(f *testing.F) {
	passwd := "root:x:0:0:root:/root:/bin/sh\nkiteuser:x:1000:2000::/home/kiteuser:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"
	group := "root:x:0:\nkitegroup:x:2000:\nstaff:x:3000:kiteuser\nwheel:x:10:kiteuser,root\n"
	for _, spec := range []string{"", "root", "0", "kiteuser", "kiteuser:staff", "1000", "1000:3000", ":2000", "kiteuser:nosuch", "nosuch", "4294967295", "-1", "nobody:"} {
		f.Add([]byte(passwd), []byte(group), spec)
	}
	f.Add([]byte("a:x:-5:-6::/:\n"), []byte("g:x:-7:a\n"), "a")
	f.Add([]byte("a:x:99999999999:1::/:\n::::::\n:\n"), []byte("g:x:2147483648:a\n"), "a")
	f.Add([]byte("1000:x:5:5:::\n"), []byte(""), "1000")
	f.Add([]byte("a:x:1:1:::\n"), []byte("b:x:1:a,a,a\nc:x:2:a\n"), "a")
	f.Fuzz(func(t *testing.T, passwd, group []byte, spec string) {
		layer := t.TempDir()
		if err := os.Mkdir(filepath.Join(layer, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(layer, "etc", "passwd"), passwd, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(layer, "etc", "group"), group, 0o644); err != nil {
			t.Fatal(err)
		}
		u, err := ResolveUser(spec, []imageindex.Layer{{Dir: layer}})
		if err != nil {
			return
		}
		if u.Home == "" {
			t.Fatalf("ResolveUser(%q) = %+v: no home", spec, u)
		}
		if slices.Contains(u.Groups, u.GID) {
			t.Fatalf("ResolveUser(%q) = %+v: the primary group among the supplementary ones", spec, u)
		}
		const maxID = 1<<31 - 1
		if u.UID > maxID || u.GID > maxID || slices.ContainsFunc(u.Groups, func(g uint32) bool { return g > maxID }) {
			t.Fatalf("ResolveUser(%q) = %+v: an id out of range", spec, u)
		}
	})
}

// FuzzValidHostname checks --hostname: an accepted name is 1 to 64 bytes of letters, digits, '-'
// and '.', in labels that neither are empty nor start or end with '-': safe to write as a word of
// /etc/hosts and as /etc/hostname.
func FuzzValidHostname(f *testing.F) {
	for _, s := range []string{"kite-0123abcd", "", "a.b", "a..b", "-a", "a-", "a b", strings.Repeat("a", 64), strings.Repeat("a", 65), "é", "a\n", "a.", "1.2.3.4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		if ValidHostname(h) != nil {
			return
		}
		if len(h) == 0 || len(h) > 64 || strings.Trim(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") != "" {
			t.Fatalf("ValidHostname accepted %q", h)
		}
		for _, label := range strings.Split(h, ".") {
			if label == "" || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
				t.Fatalf("ValidHostname accepted %q (label %q)", h, label)
			}
		}
	})
}

// FuzzMergeEnv checks the merging of environment lists (the image's Env, --set-env-file,
// --set-env; lines separated by newlines, lists by NUL bytes here): each key once, non-empty,
// with the value of its last setting, in the order keys first appear.
func FuzzMergeEnv(f *testing.F) {
	f.Add("A=inherited\nB=inherited\x00B=image\nC=image\x00C=file\x00A=flag\nD=flag")
	f.Add("=x")
	f.Add("A\x00B=1")
	f.Add("A==\nA=\x00")
	f.Fuzz(func(t *testing.T, joined string) {
		var lists [][]string
		for _, l := range strings.Split(joined, "\x00") {
			if l != "" {
				lists = append(lists, strings.Split(l, "\n"))
			}
		}
		got, err := mergeEnv(lists...)
		if err != nil {
			return
		}
		last := map[string]string{}
		var order []string
		for _, l := range lists {
			for _, kv := range l {
				k, _, _ := strings.Cut(kv, "=")
				if _, ok := last[k]; !ok {
					order = append(order, k)
				}
				last[k] = kv
			}
		}
		if len(got) != len(order) {
			t.Fatalf("mergeEnv(%q) = %q: %d keys, want %d", lists, got, len(got), len(order))
		}
		for i, kv := range got {
			if k, _, ok := strings.Cut(kv, "="); !ok || k == "" || k != order[i] || kv != last[k] {
				t.Fatalf("mergeEnv(%q) = %q: entry %d", lists, got, i)
			}
		}
	})
}
