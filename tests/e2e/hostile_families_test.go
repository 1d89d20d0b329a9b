package e2e

import (
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"
	"testing"

	"github.com/kite-runtime/kite/tests/imagebuild"
	"github.com/kite-runtime/kite/tests/probe/report"
)

// hostileFamilyWants are the expectations of the cases in tests/imagebuild's hostile_headers.go,
// hostile_special.go and hostile_manifest.go.
var hostileFamilyWants = map[string]hostileWant{
	// Names and targets from PAX records and GNU long-name blocks: the message names the entry as
	// a tar reader sees it, which is the hostile name.
	"pax-path-dotdot":            {mention: `written-by-pax-path`},
	"pax-path-absolute":          {mention: `written-by-pax-absolute`},
	"pax-linkpath-hardlink":      {mention: `pax-hardlink|CANARY/victim`},
	"pax-linkpath-symlink-write": {mention: `pax-link`},
	"gnu-longname-dotdot":        {mention: `written-by-gnu-longname`},
	"gnu-longname-absolute":      {mention: `written-by-gnu-absolute`},
	"gnu-longlink-hardlink":      {mention: `gnu-hardlink|CANARY/victim`},
	"gnu-longlink-symlink-write": {mention: `gnu-link`},

	"across-layers-symlink-write":          {mention: `xl-abs`},
	"across-layers-relative-symlink-write": {mention: `xl-rel`},
	"across-layers-symlink-mkdir":          {mention: `xl-mkdir`},
	"across-layers-hardlink":               {mention: `xl-hl`},
	"across-layers-nested-symlink":         {mention: `xl-nest/inner`},

	"root-dot-symlink":      {mention: `(?i)"\."|root`},
	"root-dotslash-symlink": {mention: `(?i)"\./"|root`},
	"root-slash-symlink":    {mention: `"/"`},

	"whiteout-of-dot":        {mention: `\.wh\.\.`},
	"whiteout-of-dotdot":     {mention: `\.wh\.\.\.`},
	"whiteout-dotdot-inside": {mention: `wh-a/\.\./\.\./\.wh\.victim`},
	"whiteout-climbing":      {mention: `CANARY/\.wh\.victim`},
	"opaque-climbing":        {mention: `CANARY/\.wh\.\.wh\.\.opq`},
	"whiteout-dotdot-lower":  {mention: `wh-dir/\.wh\.\.\.`},

	"dup-file-dir":         {mention: `dup-fd.*twice`},
	"dup-dir-file":         {mention: `dup-df.*twice`},
	"dup-file-symlink":     {mention: `dup-fs.*twice`},
	"dup-symlink-dir":      {mention: `dup-sd`},
	"dup-file-dir-symlink": {mention: `dup-fds`},
	"dup-hardlink-file":    {mention: `dup-hl.*twice`},

	// Device nodes, FIFOs and setuid files are part of images; kite may store them, but inside
	// the pod they must not reach a host device or privilege beyond the pod's user namespace.
	"device-char-mem":        {mention: `hostile-dev`, mayRun: true, inside: devicesUnusable(imagebuild.HostileCharDevice, imagebuild.HostileKmsgDevice)},
	"device-block-disks":     {mention: `hostile-disks`, mayRun: true, inside: devicesUnusable(diskDevices()...)},
	"device-through-symlink": {mention: `dev-link`},
	"fifo-inside":            {mention: `hostile-fifo`, mayRun: true, inside: fifoInside},
	"fifo-dotdot":            {mention: `fifo-by-dotdot`},
	"setuid-root":            {mention: `hostile-set[ug]id`, mayRun: true, inside: setuidConfined},
	"xattr-security-capability": {mention: `hostile-file-caps|security\.capability`, mayRun: true,
		inside: fileCapsConfined},
	"xattr-trusted-overlay-opaque":  {mention: `(?i)etc|overlay`, mayRun: true, inside: etcStillVisible},
	"xattr-user-overlay-opaque":     {mention: `(?i)etc|overlay`, mayRun: true, inside: etcStillVisible},
	"xattr-overlay-redirect":        {mention: `(?i)hostile-redirect|overlay`, mayRun: true, inside: redirectEmpty},
	"xattr-overlay-redirect-canary": {mention: `(?i)hostile-redirect|overlay`, mayRun: true, inside: redirectEmpty},

	"mediatype-index-as-manifest":   {mention: `(?i)media ?type|manifest`},
	"mediatype-manifest-as-index":   {mention: `(?i)media ?type|index`},
	"mediatype-manifest-says-index": {mention: `(?i)media ?type|manifest list`},
	"mediatype-config-on-layer":     {mention: `media type "application/vnd.oci.image.config.v1\+json", which is not a layer's`},
	"mediatype-unknown-layer":       {mention: `media type "application/vnd.kite-runtime.test.unknown", which is not a layer's`},
	"config-is-layer":               {mention: `(?i)config|digest`},
	// A digest cannot name a document that contains it: the cycles are made of blobs stored under
	// digests that are not theirs, which a reader must notice before it follows them.
	"index-self-cycle":   {mention: `(?i)digest`},
	"index-mutual-cycle": {mention: `(?i)digest`},
	"huge-manifest":      {mention: `(?i)kite reads at most|exceeded maximum allowed size`},
	"huge-config":        {mention: `(?i)exceeded maximum allowed size`},
	"huge-index":         {mention: `(?i)kite reads at most|exceeded maximum allowed size`},
	"huge-layout-index": {mention: `(?i)kite reads at most|exceeded maximum allowed size`, mayRun: true,
		layoutOnly: "index.json is the layout's own file; a registry serves the image's manifest, and an oci-archive is unpacked into a layout of the same index"},
	"platform-index-no-match": {mention: `(?i)platform|architecture|no image|s390x|arm64`},
	"platform-index-lies":     {mention: `s390x|arm64`},

	// Image configs: their layers are sound, so kite may store the image and refuse only to run
	// it; or run it, as long as the working directory and volumes stay in the pod (the host
	// checks) and the app's working directory is inside its root.
	"workdir-dotdot":          {mention: `(?i)working dir`, sound: true, mayRun: true, inside: cwdInside},
	"workdir-relative":        {mention: `(?i)working dir`, sound: true, mayRun: true, inside: cwdInside},
	"workdir-proc-fd":         {mention: `(?i)working dir.*/proc`, sound: true},
	"workdir-symlink-proc-fd": {mention: `working directory /wd-fd`, sound: true, mayRun: true, inside: cwdInside},
	"workdir-symlink-canary":  {mention: `working directory /wd-link`, sound: true, mayRun: true, inside: cwdInside},
	"volume-dotdot":           {mention: `(?i)volume`, sound: true, mayRun: true},
	"volume-symlink-canary":   {mention: `(?i)volume|vol-link`, sound: true, mayRun: true},
	"volume-proc-fd":          {mention: `(?i)volume`, sound: true, mayRun: true},
}

func diskDevices() []string {
	var out []string
	for name := range imagebuild.HostileDiskNumbers {
		out = append(out, path.Join(imagebuild.HostileDiskDevices, name))
	}
	return out
}

// devicesUnusable checks that no read of the devices succeeds inside the pod (as the pod's root,
// with its default capabilities): a device node an image brings must not reach the host's device.
func devicesUnusable(devices ...string) func(*testing.T, podRunner) (string, error) {
	return func(t *testing.T, pod podRunner) (string, error) {
		script := `for d in "$@"; do
  if [ ! -e "$d" ] && [ ! -L "$d" ]; then echo "$d absent"; continue; fi
  t=$(stat -c '%F %t:%T' "$d")
  if timeout 5 dd if="$d" of=/dev/null bs=512 count=1 2>/dev/null; then echo "$d READ ($t)"; else echo "$d unreadable ($t)"; fi
done`
		r := pod(nil, append([]string{"sh", "-c", script, "sh"}, devices...)...)
		out := strings.Join(strings.Fields(strings.ReplaceAll(r.Stdout, "\n", "; ")), " ")
		if r.Code != 0 {
			return out, fmt.Errorf("the check could not run: %s", r)
		}
		if strings.Contains(r.Stdout, " READ ") {
			return out, fmt.Errorf("a device node of the image reads from a host device: %s", out)
		}
		return out, nil
	}
}

// fifoInside checks that the FIFO is a FIFO in the pod's root (or absent), nothing else.
func fifoInside(t *testing.T, pod podRunner) (string, error) {
	r := pod(nil, "probe", "stat", imagebuild.HostileFIFO)
	var s report.Stat
	if err := json.Unmarshal([]byte(r.Stdout), &s); err != nil {
		return "", fmt.Errorf("decode probe stat: %v: %s", err, r)
	}
	if s.Error == "" && s.Type != "fifo" {
		return "", fmt.Errorf("%s is a %s inside the pod, not a FIFO", imagebuild.HostileFIFO, s.Type)
	}
	return fmt.Sprintf("%s: %s%s", s.Path, s.Type, s.Error), nil
}

// hostIDs maps id through a /proc/PID/uid_map (or gid_map) text to the host's id.
func hostID(idMap string, id int) (int, bool) {
	for line := range strings.Lines(idMap) {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		in, _ := strconv.Atoi(f[0])
		out, _ := strconv.Atoi(f[1])
		n, _ := strconv.Atoi(f[2])
		if id >= in && id < in+n {
			return out + id - in, true
		}
	}
	return 0, false
}

// hostileForbiddenCaps are capabilities outside the pod's default set that the hostile files
// try to grant: cap_sys_module (16) and cap_sys_admin (21).
var hostileForbiddenCaps = []uint{16, 21}

func capsHave(hex string, caps []uint) []uint {
	v, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
	if err != nil {
		return caps
	}
	var have []uint
	for _, c := range caps {
		if v&(1<<c) != 0 {
			have = append(have, c)
		}
	}
	return have
}

// privilegedProbe runs the image's probe at exe as the image's unprivileged user 1000 with
// no_new_privs off, so that setuid bits and file capabilities take effect as far as the pod's
// user namespace lets them, and checks that what it gains stays within what the pod's own root
// has: its effective ids are ids of the pod's user namespace, its capabilities are within the
// pod's bounding set, and it has none of hostileForbiddenCaps. (Rootless, the pod's root is the
// caller; as root, kite maps the pod's ids onto the host's unchanged, as the rootful store does,
// so a setuid-root file gives host uid 0 confined by the pod's capabilities and namespaces.)
func privilegedProbe(pod podRunner, exe string) (report.Report, string, error) {
	r := pod([]string{"--user", "1000", "--no-new-privileges=false"}, exe, "info")
	var rep report.Report
	if r.Code == 126 && strings.Contains(r.Stderr, "operation not permitted") {
		// execve(2) fails with EPERM when a file's capabilities exceed the bounding set
		// (capabilities(7), "Safety checking for capability-dumb binaries"): nothing ran.
		return rep, fmt.Sprintf("%s as uid 1000: the kernel refused to execute it (EPERM)", exe), nil
	}
	if r.Code != 0 {
		return rep, "", fmt.Errorf("%s info did not run: %s", exe, r)
	}
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		return rep, "", fmt.Errorf("decode %s info: %v", exe, err)
	}
	hostUID, okU := hostID(rep.UIDMap, rep.EUID)
	hostGID, okG := hostID(rep.GIDMap, rep.EGID)
	seen := fmt.Sprintf("%s as uid 1000: euid %d (host %d) egid %d (host %d) cap_eff %s cap_bnd %s", exe, rep.EUID, hostUID, rep.EGID, hostGID, rep.CapEff, rep.CapBnd)
	bnd, errB := strconv.ParseUint(rep.CapBnd, 16, 64)
	eff, errE := strconv.ParseUint(rep.CapEff, 16, 64)
	prm, errP := strconv.ParseUint(rep.CapPrm, 16, 64)
	switch {
	case !okU || !okG:
		return rep, seen, fmt.Errorf("%s: effective ids not in the pod's maps: %s", exe, seen)
	case errB != nil || errE != nil || errP != nil:
		return rep, seen, fmt.Errorf("%s: capability sets unreadable: %s", exe, seen)
	case (eff|prm)&^bnd != 0:
		return rep, seen, fmt.Errorf("%s gained capabilities outside the pod's bounding set: %s", exe, seen)
	case len(capsHave(rep.CapEff, hostileForbiddenCaps)) > 0 || len(capsHave(rep.CapPrm, hostileForbiddenCaps)) > 0:
		return rep, seen, fmt.Errorf("%s gained capabilities %v: %s", exe, capsHave(fmt.Sprintf("%x", eff|prm), hostileForbiddenCaps), seen)
	}
	return rep, seen, nil
}

func setuidConfined(t *testing.T, pod podRunner) (string, error) {
	_, a, err := privilegedProbe(pod, imagebuild.HostileSetuid)
	if err != nil {
		return a, err
	}
	_, b, err := privilegedProbe(pod, imagebuild.HostileSetgid)
	return a + "; " + b, err
}

func fileCapsConfined(t *testing.T, pod podRunner) (string, error) {
	_, seen, err := privilegedProbe(pod, imagebuild.HostileFileCaps)
	return seen, err
}

// etcStillVisible checks that the base layer's /etc/passwd still shows through an /etc the top
// layer marks opaque with an overlay xattr.
func etcStillVisible(t *testing.T, pod podRunner) (string, error) {
	r := pod(nil, "sh", "-c", "ls /etc; grep -c . /etc/passwd")
	seen := "/etc: " + strings.Join(strings.Fields(r.Stdout), " ")
	if r.Code != 0 {
		return seen, fmt.Errorf("the overlay mark on /etc hid the lower layers' /etc/passwd: %s", r)
	}
	return seen, nil
}

// redirectEmpty checks that a new, empty directory with an overlay redirect mark shows nothing.
func redirectEmpty(t *testing.T, pod podRunner) (string, error) {
	r := pod(nil, "ls", "-A", imagebuild.HostileRedirectDir)
	seen := fmt.Sprintf("ls -A %s: %q (exit status %d)", imagebuild.HostileRedirectDir, strings.TrimSpace(r.Stdout), r.Code)
	if strings.TrimSpace(r.Stdout) != "" {
		return seen, fmt.Errorf("the redirect mark made the overlay show another directory's content: %s", seen)
	}
	return seen, nil
}

// cwdInside checks that the app starts in a working directory inside its root: getcwd names it
// from the pod's root (not "(unreachable)"), and it is not in /proc.
func cwdInside(t *testing.T, pod podRunner) (string, error) {
	r := pod(nil, "probe", "info")
	if r.Code != 0 {
		// The working directory could not be entered: nothing ran there.
		return fmt.Sprintf("the app did not start: %s", lastLine(r.Stderr)), nil
	}
	var rep report.Report
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		return "", fmt.Errorf("decode probe info: %v", err)
	}
	seen := "cwd " + rep.Cwd
	if !strings.HasPrefix(rep.Cwd, "/") || rep.Cwd == "/proc" || strings.HasPrefix(rep.Cwd, "/proc/") {
		return seen, fmt.Errorf("the app's working directory is outside its root: %s", seen)
	}
	return seen, nil
}
