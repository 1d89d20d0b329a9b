package spec

import (
	"strings"
	"testing"
)

func TestParseVolume(t *testing.T) {
	host := t.TempDir()
	for _, tc := range []struct {
		in      string
		want    Volume
		mounted string // the shorthand's target
		wantErr string
	}{
		{in: "data,kind=host,source=" + host, want: Volume{Name: "data", Kind: "host", Source: host, Recursive: true, Mode: 0o755}},
		{in: "data,kind=host,source=" + host + ",readOnly=true,recursive=false", want: Volume{Name: "data", Kind: "host", Source: host, ReadOnly: true, Mode: 0o755}},
		{in: "tmp-1,kind=empty,mode=1777,uid=1000,gid=2000", want: Volume{Name: "tmp-1", Kind: "empty", Recursive: true, Mode: 0o1777, UID: 1000, GID: 2000}},
		{in: host + ":/data", want: Volume{Name: "volume-3", Kind: "host", Source: host, Recursive: true}, mounted: "/data"},
		{in: host + ":/data:ro", want: Volume{Name: "volume-3", Kind: "host", Source: host, Recursive: true, ReadOnly: true}, mounted: "/data"},
		{in: host + ":/data:rx", wantErr: "ro or rw"},
		{in: host + "/missing:/data", wantErr: "no such file"},
		{in: "Data,kind=empty", wantErr: "lowercase"},
		{in: "data,kind=host", wantErr: "needs source"},
		{in: "data,kind=empty,source=/x", wantErr: "no source"},
		{in: "data,kind=empty,mode=999", wantErr: "mode=999"},
		{in: "data,kind=empty,uid=-1", wantErr: "uid=-1"},
		{in: "data,kind=nfs", wantErr: "kind must be"},
		{in: "data,kind=empty,size=1G", wantErr: "unknown key"},
		{in: "data,readOnly", wantErr: "not KEY=VALUE"},
	} {
		v, m, err := ParseVolume(tc.in, 3)
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseVolume(%q) = %v, want an error containing %q", tc.in, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("ParseVolume(%q): %v", tc.in, err)
		case v != tc.want:
			t.Errorf("ParseVolume(%q) = %+v, want %+v", tc.in, v, tc.want)
		case tc.mounted != "" && (m == nil || m.Target != tc.mounted || m.Volume != v.Name):
			t.Errorf("ParseVolume(%q) mounts %+v, want %s at %s", tc.in, m, v.Name, tc.mounted)
		case tc.mounted == "" && m != nil:
			t.Errorf("ParseVolume(%q) mounts %+v, want no mount", tc.in, m)
		}
	}
}

func TestVolumeMounts(t *testing.T) {
	vols := []Volume{
		{Name: "host", Kind: "host", Source: "/srv", ReadOnly: true},
		{Name: "scratch", Kind: "empty", Mode: 0o700, UID: 1, GID: 2},
	}
	points := []MountPoint{{"host", "/srv/"}, {"scratch", "/a"}, {"scratch", "/b"}}
	mounts, empty, err := volumeMounts(vols, points)
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts) != 3 || mounts[0].Destination != "/srv" || mounts[0].Source != "/srv" ||
		strings.Join(mounts[0].Options, ",") != "bind,ro" || mounts[1].Source != "volumes/scratch" || mounts[2].Source != "volumes/scratch" {
		t.Errorf("mounts = %+v", mounts)
	}
	if len(empty) != 1 || empty[0].Dir != "volumes/scratch" || empty[0].Mode != 0o700 || empty[0].UID != 1 || empty[0].GID != 2 {
		t.Errorf("empty volumes = %+v, want scratch once", empty)
	}
	if _, _, err := volumeMounts(append(vols, vols[0]), points); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("a volume given twice: %v", err)
	}
}

func TestMergeEnvAndUserSpec(t *testing.T) {
	got, err := mergeEnv([]string{"A=inherited", "B=inherited"}, []string{"B=image", "C=image"}, []string{"C=file"}, []string{"A=flag", "D=flag"})
	if err != nil || strings.Join(got, " ") != "A=flag B=image C=file D=flag" {
		t.Errorf("mergeEnv = %q, %v", got, err)
	}
	if _, err := mergeEnv([]string{"=x"}); err == nil {
		t.Error("mergeEnv accepted an empty key")
	}
	for _, tc := range []struct{ image, user, group, want string }{
		{"", "", "", ""},
		{"app:staff", "", "", "app:staff"},
		{"app:staff", "1000", "", "1000"},
		{"app:staff", "", "wheel", "app:wheel"},
		{"app", "bob", "wheel", "bob:wheel"},
		{"", "", "2000", ":2000"},
	} {
		if got := userSpec(tc.image, tc.user, tc.group); got != tc.want {
			t.Errorf("userSpec(%q, %q, %q) = %q, want %q", tc.image, tc.user, tc.group, got, tc.want)
		}
	}
}
