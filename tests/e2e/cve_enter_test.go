package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/kite-runtime/kite/tests/probe/report"
)

// This file has the CVE tests of kite enter, which adds a process from outside to a running pod:
// rkt's enter CVEs (2019-10144/10145/10147) and runc's CVE-2016-9962.

// runningPod starts a pod named name that runs script, which prints "ready" once set up and then
// stays, and stops it when the test ends.
func runningPod(t *testing.T, dir string, o *options, name string, flags []string, script string) *proc {
	t.Helper()
	args := append(append([]string{"run", "--rm", "--name", name}, flags...), layoutRef("busybox"), "--", "sh", "-c", script)
	p := start(t, dir, o, args...)
	waitOutput(t, p, "ready")
	t.Cleanup(func() {
		runKite(dir, o, "stop", "--force", name)
		p.wait()
	})
	return p
}

// appAndEntered starts a pod with flags and returns what its app and a command kite enter started
// in it saw (probe info), and stdout of sh -c script run both ways.
func appAndEntered(t *testing.T, dir, name string, flags []string, script string) (app, in report.Report, appOut, inOut string) {
	t.Helper()
	setup := fmt.Sprintf("probe info > /tmp/app.json; (%s) > /tmp/app.out 2>&1; echo ready; sleep 60", script)
	runningPod(t, dir, nil, name, flags, setup)
	app = decodeInfo(t, kite(t, dir, "enter", name, "--", "cat", "/tmp/app.json"))
	appOut = kite(t, dir, "enter", name, "--", "cat", "/tmp/app.out").Stdout
	in = decodeInfo(t, kite(t, dir, "enter", name, "--", "probe", "info"))
	inOut = kite(t, dir, "enter", name, "--", "sh", "-c", script+" 2>&1").Stdout
	return app, in, appOut, inOut
}

// TestCVE_2019_10144_EnterCapabilities: rkt enter started its command with every capability,
// whatever the pod's app was limited to. kite enter's command gets the app's bounding,
// permitted, effective, inheritable and ambient sets (stage1 builds it from the app's own
// config.json). Asserted from inside, for the default set, none and a chosen few, with a chown
// that works exactly when the app may do it.
func TestCVE_2019_10144_EnterCapabilities(t *testing.T) {
	recordCVE(t, "CVE-2019-10144", "kite enter into pods with default, no and two capabilities: entered sets equal the app's, chown only where the app may")
	needSubIDs(t)
	dir := sharedDir(t, "busybox")
	const chown = "touch /tmp/owned && chown 1000 /tmp/owned && echo chowned"
	for i, flags := range [][]string{nil, {"--cap-drop", "all"}, {"--caps-retain", "kill,setuid"}} {
		t.Run(strings.Join(flags, " "), func(t *testing.T) {
			app, in, appOut, inOut := appAndEntered(t, dir, fmt.Sprintf("cve-10144-%d", i), flags, chown)
			got := []string{in.CapBnd, in.CapPrm, in.CapEff, in.CapInh, in.CapAmb}
			want := []string{app.CapBnd, app.CapPrm, app.CapEff, app.CapInh, app.CapAmb}
			if !slices.Equal(got, want) {
				t.Errorf("ESCAPE: kite enter's command has bnd prm eff inh amb %v, the app %v", got, want)
			}
			mayChown := capBits(t, app.CapEff)&1 != 0 // CAP_CHOWN is 0
			if strings.Contains(appOut, "chowned") != mayChown {
				t.Fatalf("the app's chown: %q, with effective set %s", appOut, app.CapEff)
			}
			if strings.Contains(inOut, "chowned") != mayChown {
				t.Errorf("kite enter's chown: %q, the app's %q", inOut, appOut)
			}
		})
	}
}

// TestCVE_2019_10145_EnterSeccomp: rkt enter started its command without the pod's seccomp
// filter. kite enter loads the very filter the pod's app runs under (the compiled program kept in
// the app's directory of the pod). Asserted from inside: filter mode 2 and a system call the
// default profile refuses (keyctl) refused the same way as in the app.
func TestCVE_2019_10145_EnterSeccomp(t *testing.T) {
	recordCVE(t, "CVE-2019-10145", "kite enter's command under the pod's seccomp filter: mode and a refused keyctl, as the app")
	dir := sharedDir(t, "busybox")
	app, in, appOut, inOut := appAndEntered(t, dir, "cve-10145", nil, "probe syscall keyctl")
	if app.Seccomp != 2 || !strings.HasPrefix(appOut, "keyctl: E") {
		t.Fatalf("the app runs with seccomp mode %d and keyctl gives %q: the default profile should refuse it", app.Seccomp, appOut)
	}
	if in.Seccomp != app.Seccomp || inOut != appOut {
		t.Errorf("ESCAPE: kite enter's command has seccomp mode %d and keyctl gives %q; the app %d, %q", in.Seccomp, inOut, app.Seccomp, appOut)
	}
}

// TestCVE_2019_10147_EnterConfinement: rkt enter left its command outside the pod's cgroup, so
// it escaped the pod's resource limits. kite enter's command joins all of the pod's namespaces
// (cgroup namespace included; a mount namespace of its own that has the app's mounts, as each
// app has), gets its no_new_privs and resource limits (rlimits), and is moved into the pod's own
// cgroup before it starts, where the pod has one (kite makes one for --memory, --cpu and
// --pids-limit, only where the user's cgroup is delegated: cmd/kite's TestJoinPodCgroup covers
// that step, since this host's tests never run in a delegated cgroup). Asserted from inside: the
// namespaces, mounts, no_new_privs, limits and /proc/self/cgroup equal the app's.
func TestCVE_2019_10147_EnterConfinement(t *testing.T) {
	recordCVE(t, "CVE-2019-10147", "kite enter's command: the pod's namespaces, mounts, cgroup, no_new_privs and rlimits, as the app (cgroup joining: unit test only, no delegated cgroup here)")
	dir := sharedDir(t, "busybox")
	app, in, appOut, inOut := appAndEntered(t, dir, "cve-10147", []string{"--ulimit", "nofile=100:200", "--ulimit", "nproc=500:600"},
		"ulimit -Sn; ulimit -Hn; ulimit -Su; ulimit -Hu; cat /proc/self/cgroup")
	for ns, id := range app.Namespaces {
		// Each app of a pod, and each command kite enter starts, has a mount namespace of its
		// own with the app's root filesystem: the mounts are compared instead.
		if ns != "mnt" && in.Namespaces[ns] != id {
			t.Errorf("ESCAPE: kite enter's command is in %s namespace %s, the app in %s", ns, in.Namespaces[ns], id)
		}
	}
	mounts := func(r report.Report) []string {
		var out []string
		for _, m := range r.Mounts {
			out = append(out, m.MountPoint+" "+m.FSType+" "+m.Options)
		}
		return out
	}
	if got, want := mounts(in), mounts(app); !slices.Equal(got, want) {
		t.Errorf("ESCAPE: kite enter's command sees the mounts\n%s\nthe app\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(app.Namespaces) != 7 {
		t.Errorf("the app's namespaces: %v, want 7", app.Namespaces)
	}
	if in.NoNewPrivs != 1 || app.NoNewPrivs != 1 {
		t.Errorf("no_new_privs: kite enter's command %d, the app %d; want 1", in.NoNewPrivs, app.NoNewPrivs)
	}
	if !strings.HasPrefix(appOut, "100\n200\n500\n600\n") || inOut != appOut {
		t.Errorf("limits and cgroup: kite enter's command %q, the app %q", inOut, appOut)
	}
}

// TestCVE_2016_9962_EnterFDs: runc exec's process joined the container while it still held
// runc's descriptors (a host directory among them) and was still ptrace-able, so a process of the
// container could attach to it and use them. kite enter closes every descriptor but stdio and the
// plan before it joins; the process it joins with gains every capability of the pod's user
// namespace, so the kernel lets no process of the pod with fewer read or attach to it, and it
// makes itself non-dumpable before it reads the plan. Asserted from inside: the command holds
// only 0, 1 and 2 though kite enter's caller left host directories open; and an app that watches
// /proc all the while kite enters the pod again and again never opens another process's memory,
// environment, executable or descriptors, except those of the commands kite enter started (which
// run as the app does), and never sees kite enter's caller's environment.
func TestCVE_2016_9962_EnterFDs(t *testing.T) {
	recordCVE(t, "CVE-2016-9962", fmt.Sprintf("kite enter with the caller's host directory fds; the pod's app watching /proc for the entering process during %d enters", rounds(15, 80)))
	dir := sharedDir(t, "busybox")
	runningPod(t, dir, nil, "cve-9962", nil, "echo ready; sleep 60")
	in := decodeInfo(t, kiteWith(t, dir, &options{extraFiles: hostDirFDs(t, dir)}, "enter", "cve-9962", "--", "probe", "info"))
	checkFDs(t, in)

	peeks := watchEnters(t, dir, nil, "cve-9962-watch")
	for _, p := range peeks {
		if strings.Contains(p.Env, enterSecret) {
			t.Errorf("ESCAPE: the pod read kite enter's caller's environment in process %d (%q, %s)", p.PID, p.Comm, p.Exe)
		}
		if slices.Contains(p.Access, "exe-write") || kiteAccess(p) && slices.ContainsFunc(p.Access, func(a string) bool { return a != "fd" }) {
			t.Errorf("ESCAPE: the pod's app got %v of process %d (%q before, %q after, exe %q), not one of its own", p.Access, p.PID, p.Comm, p.CommAfter, p.Exe)
		}
	}
}

// enterSecret is set in kite enter's environment by watchEnters; the pod must never see it.
const enterSecret = "KITE_CVE_CALLER_SECRET=do-not-leak"

// peek is one line of `probe watch`.
type peek struct {
	PID       int      `json:"pid"`
	Comm      string   `json:"comm"`
	CommAfter string   `json:"comm_after"`
	Exe       string   `json:"exe"`
	Access    []string `json:"access"`
	Env       string   `json:"env"`
}

// isCommand tells the names of the commands watchEnters has kite enter run, which run as the
// app does, from kite's own processes (kite-stage1 enter, and its fork before the exec).
func isCommand(comm string) bool { return comm == "true\n" || comm == "touch\n" }

// enteredCommand tells an access to a command kite enter started: the process ran it already
// before the access was tried.
func enteredCommand(p peek) bool { return isCommand(p.Comm) }

// kiteAccess tells an access that reached kite's process: it did not run the command before the
// access was tried and still did not after (a process that exec'd in between, or ended, cannot be
// told apart and is counted as neither).
func kiteAccess(p peek) bool {
	return !isCommand(p.Comm) && p.CommAfter != "" && !isCommand(p.CommAfter)
}

// watchEnters starts a pod (kite binaries from o.bin) whose app is `probe watch`, runs kite
// enter in it again and again while it watches, and returns what the app got. It fails the test
// if the app saw none of the entered commands, so that a blind watch never passes.
func watchEnters(t *testing.T, dir string, o *options, name string) []peek {
	t.Helper()
	// The watch ends when the enters are done (a stop file made through kite enter), or at the
	// latest before runTimeout would kill kite, which the enters must fit in.
	enters := rounds(15, 80)
	secs := int(runTimeout.Seconds()) - 10
	const stop = "/tmp/kite-watch-stop"
	args := []string{"run", "--rm", "--net=none", "--name", name, layoutRef("busybox"), "--", "probe", "watch", fmt.Sprint(secs), stop}
	p := start(t, dir, o, args...)
	waitOutput(t, p, "ready")
	eo := &options{env: []string{enterSecret}}
	if o != nil {
		eo.bin = o.bin
	}
	for i := 0; i < enters; i++ {
		r := kiteWith(t, dir, eo, "enter", name, "--", "true")
		wantCode(t, r, 0, fmt.Sprintf("kite enter %d of %d", i+1, enters))
	}
	// Its status does not matter: the pod may end, and take it along, as soon as the file is
	// there; if it was not made, the watch ends at its deadline.
	runKite(dir, eo, "enter", name, "--", "touch", stop)
	r := finish(t, p)
	wantCode(t, r, 0, "probe watch")
	var peeks []peek
	dec := json.NewDecoder(strings.NewReader(strings.TrimPrefix(r.Stdout, "ready\n")))
	seen := 0
	for dec.More() {
		var pk peek
		if err := dec.Decode(&pk); err != nil {
			t.Fatalf("decode probe watch: %v\n%s", err, r)
		}
		if enteredCommand(pk) && slices.Contains(pk.Access, "mem") && !slices.Contains(pk.Access, "exe-write") {
			seen++
		}
		peeks = append(peeks, pk)
	}
	if seen == 0 {
		t.Fatalf("the watching app never reached one of the %d commands kite enter started: the watch proves nothing\n%s", enters, r)
	}
	t.Logf("%d enters; the app reached %d of the commands they started, as it may", enters, seen)
	return peeks
}
