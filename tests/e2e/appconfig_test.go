package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kite-runtime/kite/tests/imagebuild"
)

// runProbe runs `probe info` in the busybox image with kite run flags and decodes what the app
// saw.
func runProbe(t *testing.T, dir string, o *options, flags ...string) result {
	t.Helper()
	args := append([]string{"run"}, flags...)
	args = append(args, layoutRef("busybox"), "--", "probe", "info")
	return kiteWith(t, dir, o, args...)
}

// TestUsersAndGroups runs the app under each form of --user, --group and --supplementary-gids
// and checks the ids it runs with; unknown names fail before the pod starts.
func TestUsersAndGroups(t *testing.T) {
	needSubIDs(t)
	dir := sharedDir(t, "busybox")
	for _, tc := range []struct {
		flags         []string
		uid, gid      int
		groups        []int // must all be among the app's groups
		home          string
		wantErr, hint string // exit 125 with hint on stderr
	}{
		{flags: nil, uid: 0, gid: 0, home: "/root"},
		{flags: []string{"--user", "1000"}, uid: 1000, gid: 1000, groups: []int{2000}, home: "/home/kiteuser"},
		{flags: []string{"--user", "kiteuser"}, uid: 1000, gid: 1000, groups: []int{2000}, home: "/home/kiteuser"},
		{flags: []string{"--user", "kiteuser", "--group", "kitegroup"}, uid: 1000, gid: 2000, home: "/home/kiteuser"},
		{flags: []string{"--group", "2000"}, uid: 0, gid: 2000, home: "/root"},
		{flags: []string{"--user", "1234"}, uid: 1234, gid: 0, home: "/"},
		{flags: []string{"--user", "kiteuser", "--supplementary-gids", "3000,3001"}, uid: 1000, gid: 1000, groups: []int{2000, 3000, 3001}, home: "/home/kiteuser"},
		{flags: []string{"--user", "nosuchuser"}, wantErr: "yes", hint: "nosuchuser"},
		{flags: []string{"--group", "nosuchgroup"}, wantErr: "yes", hint: "nosuchgroup"},
		{flags: []string{"--supplementary-gids", "x"}, wantErr: "yes", hint: "not a group id"},
	} {
		t.Run(strings.Join(tc.flags, " "), func(t *testing.T) {
			r := runProbe(t, dir, nil, tc.flags...)
			if tc.wantErr != "" {
				wantCode(t, r, 125, "kite run "+strings.Join(tc.flags, " "))
				if !strings.Contains(r.Stderr, tc.hint) {
					t.Errorf("stderr does not mention %q: %q", tc.hint, r.Stderr)
				}
				return
			}
			rep := decodeInfo(t, r)
			if rep.UID != tc.uid || rep.EUID != tc.uid || rep.GID != tc.gid || rep.EGID != tc.gid {
				t.Errorf("uid/euid/gid/egid = %d/%d/%d/%d, want %d and %d", rep.UID, rep.EUID, rep.GID, rep.EGID, tc.uid, tc.gid)
			}
			for _, g := range tc.groups {
				if !slices.Contains(rep.Groups, g) {
					t.Errorf("groups = %v, want %d among them", rep.Groups, g)
				}
			}
			if !slices.Contains(rep.Env, "HOME="+tc.home) {
				t.Errorf("env = %q, want HOME=%s", rep.Env, tc.home)
			}
		})
	}
}

// TestEnvPrecedence checks rkt's order: inherited < image < --set-env-file < --set-env, and that
// kite's own environment reaches the app only with --inherit-env.
func TestEnvPrecedence(t *testing.T) {
	dir := sharedDir(t, "busybox")
	envFile := filepath.Join(newScratchDir(t, "env-"), "app.env")
	writeFile(t, envFile, "# settings\nFROM_FILE=file\nOVERRIDDEN=file\n\nPATH=/file/bin:/bin:/usr/bin\n")
	o := &options{env: []string{"HOST_ONLY=host", "OVERRIDDEN=host"}}

	env := func(r result) map[string]string {
		t.Helper()
		out := map[string]string{}
		for _, kv := range decodeInfo(t, r).Env {
			k, v, _ := strings.Cut(kv, "=")
			out[k] = v
		}
		return out
	}
	plain := env(runProbe(t, dir, o))
	if _, leaked := plain["HOST_ONLY"]; leaked {
		t.Errorf("kite's environment reached the app without --inherit-env: %v", plain)
	}
	got := env(runProbe(t, dir, o, "--inherit-env", "--set-env-file", envFile, "--set-env", "OVERRIDDEN=flag", "-e", "FROM_FLAG=flag"))
	for k, want := range map[string]string{
		"HOST_ONLY":  "host",                    // inherited
		"PATH":       "/file/bin:/bin:/usr/bin", // the file over the image and the host
		"FROM_FILE":  "file",
		"OVERRIDDEN": "flag", // --set-env over the file and the host
		"FROM_FLAG":  "flag",
		"container":  "kite",
	} {
		if got[k] != want {
			t.Errorf("%s=%q, want %q (env %v)", k, got[k], want, got)
		}
	}
	bad := filepath.Join(newScratchDir(t, "env-"), "bad.env")
	writeFile(t, bad, "NOT A VARIABLE\n")
	r := runProbe(t, dir, o, "--set-env-file", bad)
	wantCode(t, r, 125, "a malformed env file")
	if !strings.Contains(r.Stderr, "bad.env:1") {
		t.Errorf("stderr does not name the line: %q", r.Stderr)
	}
}

// TestWorkingDir runs the app in a directory the image lacks: kite creates it, even with a
// read-only root.
func TestWorkingDir(t *testing.T) {
	dir := sharedDir(t, "busybox")
	for _, flags := range [][]string{{"-w", "/new/work dir"}, {"--working-dir", "/new/work dir", "--readonly-rootfs"}} {
		rep := decodeInfo(t, runProbe(t, dir, nil, flags...))
		if rep.Cwd != "/new/work dir" {
			t.Errorf("%v: cwd = %q", flags, rep.Cwd)
		}
	}
	wantCode(t, runProbe(t, dir, nil, "-w", "relative"), 125, "a relative working dir")
}

// TestVolumes mounts host and empty volumes, read-write and read-only, and checks what the app
// and the host see.
func TestVolumes(t *testing.T) {
	needSubIDs(t)
	dir := sharedDir(t, "busybox")
	host := newScratchDir(t, "volume-")
	writeFile(t, filepath.Join(host, "from-host"), "host data\n")
	readonly := newScratchDir(t, "volume-ro-")

	script := `set -e
cat /data/from-host
echo written by the app > /data/from-app
if touch /ro/x 2>/dev/null; then echo "ro writable"; exit 1; fi
stat -c '%a %u %g' /scratch
touch /scratch/file
stat -c '%a %u %g' /scratch2`
	r := kite(t, dir, "run",
		"-v", host+":/data",
		"--volume", "ro,kind=host,source="+readonly+",readOnly=true", "--mount", "volume=ro,target=/ro",
		"--volume", "scratch,kind=empty,mode=0750,uid=1000,gid=2000", "--mount", "volume=scratch,target=/scratch",
		"--volume", "plain,kind=empty", "--mount", "volume=plain,target=/scratch2",
		layoutRef("busybox"), "--", "sh", "-c", script)
	wantCode(t, r, 0, "the volumes script")
	if want := "host data\n750 1000 2000\n755 0 0\n"; r.Stdout != want {
		t.Errorf("the app printed %q, want %q", r.Stdout, want)
	}
	if got := string(readFile(t, filepath.Join(host, "from-app"))); got != "written by the app\n" {
		t.Errorf("the host sees %q in the volume", got)
	}

	for _, tc := range []struct {
		flags []string
		hint  string
	}{
		{[]string{"-v", filepath.Join(host, "missing") + ":/data"}, "no such file or directory; create it first"},
		{[]string{"--volume", "x,kind=host,source=" + host}, "not mounted"},
		{[]string{"--mount", "volume=nosuch,target=/x"}, "no --volume nosuch"},
		{[]string{"--volume", "x,kind=tmpfs"}, "kind must be host or empty"},
		{[]string{"--volume", "x,kind=empty", "--mount", "volume=x,target=relative"}, "absolute"},
	} {
		before := listing(t, dir)
		r := kite(t, dir, append(append([]string{"run"}, tc.flags...), layoutRef("busybox"), "--", "true")...)
		wantCode(t, r, 125, strings.Join(tc.flags, " "))
		if !strings.Contains(r.Stderr, tc.hint) {
			t.Errorf("%v: stderr does not mention %q: %q", tc.flags, tc.hint, r.Stderr)
		}
		compareListings(t, before, listing(t, dir))
	}
}

// TestVolumeTargetThroughSymlink mounts a volume at a path that goes through a symlink in the
// image pointing at a host directory: the mount lands inside the pod's root, and the host
// directory is untouched.
func TestVolumeTargetThroughSymlink(t *testing.T) {
	hostDir := newScratchDir(t, "symlink-target-")
	layout := filepath.Join(newScratchDir(t, "symlink-image-"), "layout")
	err := imagebuild.WriteLayout(layout, imagebuild.Image{
		Tag:    "escape",
		Layers: [][]imagebuild.Entry{busyboxEntries(t), {imagebuild.Symlink("escape", hostDir)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	src := newScratchDir(t, "symlink-volume-")
	writeFile(t, filepath.Join(src, "marker"), "volume\n")
	r := kite(t, newDataDir(t), "run", "-v", src+":/escape/mnt", "oci:"+layout+":escape", "--",
		"sh", "-c", fmt.Sprintf("cat %s/mnt/marker", hostDir))
	wantCode(t, r, 0, "mount through the image's symlink")
	if r.Stdout != "volume\n" {
		t.Errorf("the app found %q where the symlink points inside its root", r.Stdout)
	}
	if entries, _ := os.ReadDir(hostDir); len(entries) != 0 {
		t.Errorf("the mount reached the host directory the symlink names: %v", entries)
	}
}

// TestReadonlyRootfs makes the root read-only: writes to it fail, /tmp and /run stay writable.
func TestReadonlyRootfs(t *testing.T) {
	dir := sharedDir(t, "busybox")
	r := kite(t, dir, "run", "--readonly-rootfs", layoutRef("busybox"), "--", "sh", "-c",
		`if touch /etc/x 2>/dev/null; then echo root writable; fi; touch /tmp/x /run/x && echo tmp and run writable`)
	if r.Code != 0 || r.Stdout != "tmp and run writable\n" {
		t.Errorf("read-only root: %s", r)
	}
}
