package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// podJSON is a pod as kite list and kite status print it with --format json (docs/pods.md).
type podJSON struct {
	UUID  string `json:"uuid"`
	Name  string `json:"name"`
	State string `json:"state"`
	Apps  []struct {
		Name     string `json:"name"`
		Image    string `json:"image"`
		ImageID  string `json:"imageID"`
		ExitCode *int   `json:"exitCode"`
	} `json:"apps"`
	Created  *time.Time `json:"created"`
	Started  *time.Time `json:"started"`
	Finished *time.Time `json:"finished"`
	Pid      int        `json:"pid"`
	ExitCode *int       `json:"exitCode"`
	Signal   string     `json:"signal"`
}

func listPods(t *testing.T, dir string) []podJSON {
	t.Helper()
	r := kite(t, dir, "list", "--format", "json")
	wantCode(t, r, 0, "kite list --format json")
	var out []podJSON
	if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
		t.Fatalf("kite list --format json: %v\n%s", err, r.Stdout)
	}
	return out
}

func podStatus(t *testing.T, dir string, args ...string) podJSON {
	t.Helper()
	r := kite(t, dir, append([]string{"status", "--format", "json"}, args...)...)
	wantCode(t, r, 0, "kite status "+strings.Join(args, " "))
	var p podJSON
	if err := json.Unmarshal([]byte(r.Stdout), &p); err != nil {
		t.Fatalf("kite status --format json: %v\n%s", err, r.Stdout)
	}
	return p
}

// wantExit checks a pod's recorded exit status, for the pod and its app.
func wantExit(t *testing.T, p podJSON, code int) {
	t.Helper()
	if p.State != "exited" || p.ExitCode == nil || *p.ExitCode != code || len(p.Apps) != 1 || p.Apps[0].ExitCode == nil || *p.Apps[0].ExitCode != code {
		t.Fatalf("pod %s: want exited with %d, got %+v", p.UUID, code, p)
	}
}

// podEntries lists every pod directory of the data dir, in any state.
func podEntries(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, state := range []string{"embryo", "prepared", "run", "exited-garbage", "garbage"} {
		entries, err := os.ReadDir(filepath.Join(dir, "pods", state))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, e := range entries {
			out = append(out, state+"/"+e.Name())
		}
	}
	return out
}

// TestPrepareRunPrepared prepares a pod, finds it prepared, runs it and finds its exit status.
func TestPrepareRunPrepared(t *testing.T) {
	dir := newDataDir(t)
	r := kite(t, dir, "prepare", "--name", "later", layoutRef("busybox"), "--", "sh", "-c", "echo ran; exit 7")
	wantCode(t, r, 0, "kite prepare")
	uuid := strings.TrimSpace(r.Stdout)
	p := podStatus(t, dir, uuid)
	if p.State != "prepared" || p.Name != "later" || p.Started != nil || p.Created == nil || p.ExitCode != nil {
		t.Fatalf("prepared pod: %+v", p)
	}
	// By UUID prefix.
	r = kite(t, dir, "run-prepared", uuid[:6])
	wantCode(t, r, 7, "kite run-prepared")
	if r.Stdout != "ran\n" {
		t.Errorf("stdout %q", r.Stdout)
	}
	wantExit(t, podStatus(t, dir, "later"), 7)
	r = kite(t, dir, "run-prepared", uuid)
	wantCode(t, r, 125, "run-prepared of an exited pod")
	if !strings.Contains(r.Stderr, "not prepared") {
		t.Errorf("stderr %q", r.Stderr)
	}
}

// TestPodStates follows one pod through list and status, as JSON, while it runs and once it
// has ended; status --wait-ready returns once it runs, status --wait once it has ended.
func TestPodStates(t *testing.T) {
	dir := newDataDir(t)
	save := filepath.Join(newScratchDir(t, "uuid-"), "pod.uuid")
	fifo := filepath.Join(newScratchDir(t, "fifo-"), "go")
	// The pod runs until the test writes to the volume.
	os.Chmod(filepath.Dir(fifo), 0o777)
	run := start(t, dir, nil, "run", "--uuid-file-save", save, "--name", "stateful", "-v", filepath.Dir(fifo)+":/x",
		layoutRef("busybox"), "--", "sh", "-c", "while [ ! -e /x/go ]; do sleep 0.05; done; exit 5")
	for deadline := time.Now().Add(waitTimeout); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(save); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kite run wrote no --uuid-file-save within %s", waitTimeout)
		}
	}
	ready := podStatus(t, dir, "--wait-ready=20s", "--uuid-file", save)
	if ready.State != "running" || ready.Pid <= 0 || ready.Started == nil || ready.ExitCode != nil {
		t.Fatalf("status --wait-ready: %+v", ready)
	}
	listed := listPods(t, dir)
	if len(listed) != 1 || listed[0].UUID != ready.UUID || listed[0].State != "running" || listed[0].Name != "stateful" ||
		len(listed[0].Apps) != 1 || !strings.HasPrefix(listed[0].Apps[0].Image, "oci:") || listed[0].Apps[0].ImageID == "" {
		t.Fatalf("kite list: %+v", listed)
	}
	// A bounded wait that ends first exits 1.
	r := kite(t, dir, "status", "--wait=200ms", "stateful")
	wantCode(t, r, 1, "status --wait=200ms of a running pod")

	waiter := start(t, dir, nil, "status", "--format", "json", "--wait", ready.UUID)
	time.Sleep(200 * time.Millisecond)
	select {
	case <-waiter.done:
		t.Fatalf("status --wait returned while the pod ran: %s", waiter.res)
	default:
	}
	writeFile(t, fifo, "")
	wantCode(t, finish(t, run), 5, "the pod")
	r = finish(t, waiter)
	wantCode(t, r, 0, "status --wait")
	var done podJSON
	if err := json.Unmarshal([]byte(r.Stdout), &done); err != nil {
		t.Fatal(err)
	}
	wantExit(t, done, 5)
	if done.Finished == nil || done.Pid != 0 {
		t.Errorf("exited pod: %+v", done)
	}
	text := kite(t, dir, "status", "stateful")
	for _, line := range []string{"state=exited", "exited=true", "app-"} {
		if !strings.Contains(text.Stdout, line) {
			t.Errorf("kite status prints no %q: %q", line, text.Stdout)
		}
	}
}

// TestStop stops pods that end on SIGTERM, that ignore it (SIGKILL after --timeout), and at once
// with --force; a pod that is not running is left alone.
func TestStop(t *testing.T) {
	dir := newDataDir(t)
	for _, tc := range []struct {
		name  string
		app   []string
		flags []string
		code  int
	}{
		{"trapped", []string{"probe", "trap", "TERM"}, nil, 0},
		{"ignored", []string{"sh", "-c", "trap '' TERM; echo ready; sleep 60"}, []string{"--timeout", "500ms"}, 137},
		{"forced", []string{"sh", "-c", "echo ready; sleep 60"}, []string{"--force"}, 137},
		{"default", []string{"sh", "-c", "echo ready; sleep 60"}, nil, 143},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := start(t, dir, nil, append([]string{"run", "--name", tc.name, layoutRef("busybox"), "--"}, tc.app...)...)
			waitOutput(t, run, "ready")
			began := time.Now()
			r := kite(t, dir, append(append([]string{"stop"}, tc.flags...), tc.name)...)
			wantCode(t, r, 0, "kite stop")
			res := finish(t, run)
			wantCode(t, res, tc.code, "the stopped pod's kite run")
			if tc.name == "trapped" && !strings.Contains(res.Stdout, "got SIGTERM") {
				t.Errorf("the app did not get SIGTERM: %s", res)
			}
			if tc.name == "forced" && time.Since(began) > 5*time.Second {
				t.Errorf("stop --force took %s", time.Since(began))
			}
			wantExit(t, podStatus(t, dir, tc.name), tc.code)
		})
	}
	r := kite(t, dir, "stop", "forced")
	wantCode(t, r, 0, "stop of an exited pod")
	if !strings.Contains(r.Stderr, "not running") {
		t.Errorf("stderr %q", r.Stderr)
	}
}

// TestRm removes exited and prepared pods, with every file their apps wrote (also under
// subordinate ids), refuses a running one, and frees the name.
func TestRm(t *testing.T) {
	needSubIDs(t)
	dir := newDataDir(t)
	r := kite(t, dir, "run", "--name", "done", layoutRef("busybox"), "--", "sh", "-c", "echo x > /owned; chown 1000:1000 /owned; mkdir -p /d/e; chown -R 1000 /d")
	wantCode(t, r, 0, "kite run")
	r = kite(t, dir, "prepare", layoutRef("busybox"))
	wantCode(t, r, 0, "kite prepare")
	prepared := strings.TrimSpace(r.Stdout)
	run := start(t, dir, nil, "run", "--name", "busy", layoutRef("busybox"), "--", "sh", "-c", "echo ready; sleep 60")
	waitOutput(t, run, "ready")

	r = kite(t, dir, "rm", "busy")
	wantCode(t, r, 1, "rm of a running pod")
	if !strings.Contains(r.Stderr, "running") || !strings.Contains(r.Stderr, "kite stop") {
		t.Errorf("stderr %q", r.Stderr)
	}
	r = kite(t, dir, "rm", "done", prepared)
	wantCode(t, r, 0, "kite rm")
	if got := strings.Fields(r.Stdout); len(got) != 2 || got[1] != prepared {
		t.Errorf("kite rm printed %q", r.Stdout)
	}
	wantCode(t, kite(t, dir, "stop", "--force", "busy"), 0, "kite stop")
	finish(t, run)
	left := podEntries(t, dir)
	if len(left) != 1 || !strings.HasPrefix(left[0], "run/") {
		t.Errorf("pods left: %v, want only the stopped one", left)
	}
	// The name is free again.
	wantCode(t, kite(t, dir, "run", "--name", "done", layoutRef("busybox"), "--", "true"), 0, "a new pod named done")
	r = kite(t, dir, "run", "--name", "done", layoutRef("busybox"), "--", "true")
	wantCode(t, r, 125, "a second pod named done")
	if !strings.Contains(r.Stderr, "taken") {
		t.Errorf("stderr %q", r.Stderr)
	}
}

// TestRunRm checks --rm: the pod is gone when kite run returns, with the app's status.
func TestRunRm(t *testing.T) {
	needSubIDs(t)
	dir := newDataDir(t)
	r := kite(t, dir, "run", "--rm", "--name", "brief", layoutRef("busybox"), "--", "sh", "-c", "echo x > /f; chown 1000 /f; exit 3")
	wantCode(t, r, 3, "kite run --rm")
	if left := podEntries(t, dir); len(left) != 0 {
		t.Errorf("pods left after --rm: %v", left)
	}
	wantCode(t, kite(t, dir, "run", "--rm", "--name", "brief", layoutRef("busybox"), "--", "true"), 0, "the name again")
}

// TestGC checks kite gc: marking, the grace period, --mark-only, prepared pods' expiry and pods
// whose kite died while writing them.
func TestGC(t *testing.T) {
	dir := newDataDir(t)
	wantCode(t, kite(t, dir, "run", "--name", "old", layoutRef("busybox"), "--", "true"), 0, "kite run")
	r := kite(t, dir, "prepare", layoutRef("busybox"))
	wantCode(t, r, 0, "kite prepare")
	prepared := strings.TrimSpace(r.Stdout)
	// A pod whose kite died while writing it: an embryo nobody holds.
	aborted := "00000000-0000-4000-8000-000000000000"
	if err := os.MkdirAll(filepath.Join(dir, "pods", "embryo", aborted), 0o700); err != nil {
		t.Fatal(err)
	}
	states := func() map[string]string {
		out := map[string]string{}
		for _, p := range listPods(t, dir) {
			out[p.UUID] = p.State
		}
		return out
	}
	if s := states(); s[aborted] != "aborted" || s[prepared] != "prepared" {
		t.Fatalf("states before gc: %v", s)
	}
	r = kite(t, dir, "gc", "--mark-only")
	wantCode(t, r, 0, "gc --mark-only")
	s := states()
	if len(s) != 3 || s[aborted] != "aborted" || s[prepared] != "prepared" || !strings.Contains(r.Stdout, "marked ") {
		t.Fatalf("after gc --mark-only: %v\n%s", s, r)
	}
	for uuid, state := range s {
		if uuid != aborted && uuid != prepared && state != "exited-garbage" {
			t.Errorf("pod %s is %s after marking", uuid, state)
		}
	}
	// The default grace period keeps the marked pod; the aborted one goes at once.
	wantCode(t, kite(t, dir, "gc"), 0, "gc")
	if s := states(); len(s) != 2 || s[prepared] != "prepared" {
		t.Fatalf("after gc: %v", s)
	}
	wantCode(t, kite(t, dir, "gc", "--grace-period", "0"), 0, "gc --grace-period 0")
	if s := states(); len(s) != 1 || s[prepared] != "prepared" {
		t.Fatalf("after gc --grace-period 0: %v", s)
	}
	wantCode(t, kite(t, dir, "gc", "--expire-prepared", "0s"), 0, "gc --expire-prepared 0s")
	if left := podEntries(t, dir); len(left) != 0 {
		t.Fatalf("pods left: %v", left)
	}
	// The name of the removed pod is free again.
	wantCode(t, kite(t, dir, "run", "--name", "old", layoutRef("busybox"), "--", "true"), 0, "the name again")
}

// TestGCRaces runs gc again and again while pods start and run: none of them is disturbed. Two gc
// at once remove each ended pod once.
func TestGCRaces(t *testing.T) {
	dir := newDataDir(t)
	wantCode(t, kite(t, dir, "run", layoutRef("busybox"), "--", "true"), 0, "first run")
	stop := make(chan struct{})
	var gcs sync.WaitGroup
	gcs.Add(1)
	go func() {
		defer gcs.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if r, err := runKite(dir, nil, "gc", "--grace-period", "0", "--expire-prepared", "0s"); err != nil || r.Code != 0 {
				t.Errorf("gc during starts: %v %s", err, r)
				return
			}
		}
	}()
	var runs sync.WaitGroup
	for i := range 8 {
		runs.Add(1)
		go func() {
			defer runs.Done()
			r, err := runKite(dir, nil, "run", layoutRef("busybox"), "--", "sh", "-c", fmt.Sprintf("sleep 0.2; exit %d", 10+i))
			if err != nil || r.Code != 10+i {
				t.Errorf("pod %d beside gc: %v %s", i, err, r)
			}
		}()
	}
	runs.Wait()
	close(stop)
	gcs.Wait()

	for range 6 {
		wantCode(t, kite(t, dir, "run", layoutRef("busybox"), "--", "true"), 0, "kite run")
	}
	before := listPods(t, dir)
	var out [2]result
	var both sync.WaitGroup
	for i := range out {
		both.Add(1)
		go func() {
			defer both.Done()
			r, err := runKite(dir, nil, "gc", "--grace-period", "0")
			if err != nil {
				t.Error(err)
			}
			out[i] = r
		}()
	}
	both.Wait()
	var removed []string
	for _, r := range out {
		wantCode(t, r, 0, "one of two gc at once")
		for _, line := range strings.Split(r.Stdout, "\n") {
			if uuid, ok := strings.CutPrefix(line, "removed "); ok {
				removed = append(removed, uuid)
			}
		}
	}
	var want []string
	for _, p := range before {
		want = append(want, p.UUID)
	}
	sort.Strings(want)
	sort.Strings(removed)
	if !slices.Equal(removed, want) {
		t.Errorf("two gc removed %v, want each of %v once", removed, want)
	}
	if left := podEntries(t, dir); len(left) != 0 {
		t.Errorf("pods left: %v", left)
	}
}

// TestKilledDuringStart SIGKILLs kite run at several points of a pod's start: kite list then shows
// no pod running, and gc removes them all.
func TestKilledDuringStart(t *testing.T) {
	dir := newDataDir(t)
	wantCode(t, kite(t, dir, "run", layoutRef("busybox"), "--", "true"), 0, "first run")
	for _, delay := range []time.Duration{0, 2, 5, 10, 20, 40, 80} {
		p := start(t, dir, nil, "run", layoutRef("busybox"), "--", "sleep", "60")
		time.Sleep(delay * time.Millisecond)
		p.kill()
	}
	for _, p := range listPods(t, dir) {
		if p.State == "running" || p.State == "embryo" {
			// The kernel releases a dead process's locks at once; give it a moment.
			time.Sleep(200 * time.Millisecond)
			if q := podStatus(t, dir, p.UUID); q.State == "running" || q.State == "embryo" {
				t.Errorf("pod %s is %s after its kite was killed", p.UUID, q.State)
			}
		}
	}
	wantCode(t, kite(t, dir, "gc", "--grace-period", "0"), 0, "gc")
	if left := podEntries(t, dir); len(left) != 0 {
		t.Errorf("pods left: %v", left)
	}
	// The pods' mounts lived in their own mount namespaces, and went with them.
	for _, line := range strings.Split(string(readFile(t, "/proc/self/mountinfo")), "\n") {
		if strings.Contains(line, dir) {
			t.Errorf("a mount is left: %s", line)
		}
	}
}

// TestPodRefs checks how commands find a pod: UUID, prefix, name, --uuid-file, and the errors.
func TestPodRefs(t *testing.T) {
	dir := newDataDir(t)
	save := filepath.Join(newScratchDir(t, "uuid-"), "pod.uuid")
	wantCode(t, kite(t, dir, "run", "--uuid-file-save", save, "--name", "named", layoutRef("busybox"), "--", "true"), 0, "kite run")
	uuid := strings.TrimSpace(string(readFile(t, save)))
	for _, ref := range [][]string{{uuid}, {uuid[:4]}, {"named"}, {"--uuid-file", save}} {
		if p := podStatus(t, dir, ref...); p.UUID != uuid {
			t.Errorf("status %v found %s", ref, p.UUID)
		}
	}
	r := kite(t, dir, "cat-manifest", "named")
	wantCode(t, r, 0, "cat-manifest")
	var doc struct {
		Pod    struct{ UUID string } `json:"pod"`
		Config struct {
			Hostname string `json:"hostname"`
		} `json:"config"`
		Apps map[string]struct {
			Process struct{ Args []string } `json:"process"`
		} `json:"apps"`
	}
	err := json.Unmarshal([]byte(r.Stdout), &doc)
	if err != nil || doc.Pod.UUID != uuid || doc.Config.Hostname == "" || len(doc.Apps) != 1 {
		t.Fatalf("cat-manifest: %v %+v", err, doc)
	}
	for _, app := range doc.Apps {
		if !slices.Equal(app.Process.Args, []string{"true"}) {
			t.Errorf("cat-manifest: the app's args are %q", app.Process.Args)
		}
	}
	for _, tc := range []struct {
		args []string
		hint string
	}{
		{[]string{"status", "nosuchpod"}, "no such pod"},
		{[]string{"status", "ffff"}, "no such pod"},
		{[]string{"status"}, "no pod given"},
		{[]string{"status", "--uuid-file", save, uuid}, "not both"},
		{[]string{"run", "--name", "bad/name", layoutRef("busybox")}, "pod name"},
	} {
		r := kite(t, dir, tc.args...)
		if r.Code == 0 || !strings.Contains(r.Stderr, tc.hint) {
			t.Errorf("%v: want a failure saying %q, got %s", tc.args, tc.hint, r)
		}
	}
}

// TestRmVFS checks that removing a pod of a vfs store removes its copy of the image too.
func TestRmVFS(t *testing.T) {
	dir := newDataDir(t)
	r := kite(t, dir, "--storage-driver", "vfs", "run", "--name", "copy", layoutRef("busybox"), "--", "sh", "-c", "echo x > /written")
	wantCode(t, r, 0, "kite run in a vfs store")
	containers := func() string {
		return string(readFile(t, filepath.Join(dir, "storage", "vfs-containers", "containers.json")))
	}
	if !strings.Contains(containers(), "kite-pod-") {
		t.Fatalf("the vfs store has no copy of the image for the pod: %s", containers())
	}
	wantCode(t, kite(t, dir, "rm", "copy"), 0, "kite rm")
	if c := containers(); strings.Contains(c, "kite-pod-") {
		t.Errorf("the pod's copy of the image is left: %s", c)
	}
}

// TestEnter runs commands in a running pod with kite enter: they see the pod's filesystem, pid
// namespace, hostname and id maps, run as its app does (user, groups, environment, working
// directory, capability masks, no_new_privs, seccomp), hold only stdio, and kite enter exits with
// their status.
func TestEnter(t *testing.T) {
	needSubIDs(t)
	dir := sharedDir(t, "busybox")
	for _, flags := range [][]string{nil, {"--user", "1000", "-e", "FOO=bar", "-w", "/tmp", "--cap-add", "sys_ptrace"}} {
		t.Run(strings.Join(flags, " "), func(t *testing.T) {
			name := fmt.Sprintf("enter-%d", len(flags))
			args := append([]string{"run", "--rm", "--name", name}, flags...)
			run := start(t, dir, nil, append(args, layoutRef("busybox"), "--", "sh", "-c", "probe info > /tmp/app.json; echo ready; sleep 60")...)
			waitOutput(t, run, "ready")
			defer func() {
				kite(t, dir, "stop", "--force", name)
				finish(t, run)
			}()
			r := kite(t, dir, "enter", name, "--", "cat", "/tmp/app.json")
			app := decodeInfo(t, r)
			in := decodeInfo(t, kite(t, dir, "enter", name, "--", "probe", "info"))
			got := fmt.Sprint(in.UID, in.GID, in.Groups, in.CapInh, in.CapPrm, in.CapEff, in.CapBnd, in.CapAmb, in.NoNewPrivs, in.Seccomp, in.Hostname, in.Cwd, in.UIDMap, in.GIDMap, len(in.Mounts))
			want := fmt.Sprint(app.UID, app.GID, app.Groups, app.CapInh, app.CapPrm, app.CapEff, app.CapBnd, app.CapAmb, app.NoNewPrivs, app.Seccomp, app.Hostname, app.Cwd, app.UIDMap, app.GIDMap, len(app.Mounts))
			if got != want {
				t.Errorf("kite enter's command runs as\n%s\nthe app runs as\n%s", got, want)
			}
			if app.Seccomp != 2 || app.NoNewPrivs != 1 {
				t.Errorf("the app runs with seccomp %d, no_new_privs %d", app.Seccomp, app.NoNewPrivs)
			}
			// The app's probe ran under sh, which adds SHLVL and PWD.
			shell := func(kv string) bool { return strings.HasPrefix(kv, "SHLVL=") || strings.HasPrefix(kv, "PWD=") }
			appEnv := slices.Sorted(slices.Values(slices.DeleteFunc(app.Env, shell)))
			if inEnv := slices.Sorted(slices.Values(in.Env)); !slices.Equal(inEnv, appEnv) {
				t.Errorf("environment %v, the app's %v", inEnv, appEnv)
			}
			// The pod's pid namespace: its init is 1, the app and the command small numbers.
			if in.PID > 100 || len(in.FDs) != 3 {
				t.Errorf("pid %d (want one of the pod's), fds %v (want 0, 1, 2)", in.PID, in.FDs)
			}
			wantCode(t, kite(t, dir, "enter", name, "--", "sh", "-c", "exit 42"), 42, "kite enter -- sh -c 'exit 42'")
			wantCode(t, kite(t, dir, "enter", name, "--", "nosuchcommand"), 127, "kite enter of a missing command")
		})
	}
	r := kite(t, dir, "enter", "nosuchpod")
	wantCode(t, r, 125, "kite enter of no pod")
}
