package main

import (
	"reflect"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kite-runtime/kite/tests/probe/report"
)

func TestParseMountinfo(t *testing.T) {
	data := "" +
		"22 1 0:21 / / rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w,userxattr\n" +
		"36 22 98:0 /mnt1 /mnt\\040two rw,noatime shared:1 master:2 - ext3 /dev/root rw,errors=continue\n" +
		"37 22 0:5 / /dev ro,nosuid - tmpfs tmp\\134fs rw,mode=755\n"
	got, err := parseMountinfo(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []report.Mount{
		{MountPoint: "/", Root: "/", FSType: "overlay", Source: "overlay", Options: "rw,relatime", SuperOptions: "rw,lowerdir=/l,upperdir=/u,workdir=/w,userxattr"},
		{MountPoint: "/mnt two", Root: "/mnt1", FSType: "ext3", Source: "/dev/root", Options: "rw,noatime", SuperOptions: "rw,errors=continue"},
		{MountPoint: "/dev", Root: "/", FSType: "tmpfs", Source: `tmp\fs`, Options: "ro,nosuid", SuperOptions: "rw,mode=755"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}

	for _, bad := range []string{
		"22 1 0:21 / / rw,relatime overlay overlay rw\n",
		"22 1 0:21 / / rw - overlay\n",
	} {
		if _, err := parseMountinfo(bad); err == nil {
			t.Errorf("parseMountinfo(%q) succeeded", bad)
		}
	}
}

func TestUnescapeOctal(t *testing.T) {
	for in, want := range map[string]string{
		`/a\040b`:   "/a b",
		`/tab\011x`: "/tab\tx",
		`/nl\012`:   "/nl\n",
		`/bs\134`:   `/bs\`,
		`/short\04`: `/short\04`,
		`/big\777`:  `/big\777`,
		`/plain`:    "/plain",
	} {
		if got := unescapeOctal(in); got != want {
			t.Errorf("unescapeOctal(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestProcState(t *testing.T) {
	for in, want := range map[string]byte{
		"1 (init) S 0 1 1":         'S',
		"42 (evil) Z (x)) R 1 2 3": 'R',
		"7 (sh) Z 1 7 7 0":         'Z',
	} {
		if got, err := procState(in); err != nil || got != want {
			t.Errorf("procState(%q) = %c, %v; want %c", in, got, err, want)
		}
	}
	if _, err := procState("garbage"); err == nil {
		t.Error("procState(garbage) succeeded")
	}
}

func TestParseStatus(t *testing.T) {
	st := parseStatus("Name:\tprobe\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n")
	if st["CapEff"] != "0000000000000000" || st["NoNewPrivs"] != "1" || st["Seccomp"] != "2" {
		t.Errorf("parseStatus = %v", st)
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]syscall.Signal{"TERM": unix.SIGTERM, "SIGTERM": unix.SIGTERM, "term": unix.SIGTERM, "usr2": unix.SIGUSR2, "1": unix.SIGHUP} {
		if got, err := parseSignal(in); err != nil || got != want {
			t.Errorf("parseSignal(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"KILL", "SIGSTOP", "NOPE", "0", "-3", "999"} {
		if _, err := parseSignal(in); err == nil {
			t.Errorf("parseSignal(%q) succeeded", in)
		}
	}
}
