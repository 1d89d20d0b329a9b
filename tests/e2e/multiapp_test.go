package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kite-runtime/kite/tests/probe/report"
)

// TestMultiAppPod runs two apps in one pod. They share its user, pid, network, ipc and uts
// namespaces and its volumes; each has its own mount namespace and root filesystem, and its own
// user and environment.
func TestMultiAppPod(t *testing.T) {
	needSubIDs(t)
	dir := sharedDir(t, "busybox")
	shared := newScratchDir(t, "shared-")
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	// Each app writes its report, the first a file in its root; after a while each lists what
	// it sees of such files in its own root.
	app := func(name string) string {
		return "probe info > /shared/" + name + ".json; [ $(id -u) = 0 ] && touch /mine-" + name + "; sleep 0.5; " +
			"ls / | grep mine > /shared/" + name + ".roots; true"
	}
	r := kite(t, dir, "run", "-v", shared+":/shared", "-e", "WHO=everyone",
		layoutRef("busybox"), "--name", "first", "--", "sh", "-c", app("first"), "---",
		layoutRef("busybox"), "--name", "second", "--user", "1000", "-e", "WHO=second", "--", "sh", "-c", app("second"))
	wantCode(t, r, 0, "a pod of two apps")
	reports := map[string]report.Report{}
	for _, name := range []string{"first", "second"} {
		var rep report.Report
		if err := json.Unmarshal(readFile(t, filepath.Join(shared, name+".json")), &rep); err != nil {
			t.Fatalf("the report of app %s: %v", name, err)
		}
		reports[name] = rep
		want := map[string]string{"first": "mine-first", "second": ""}[name]
		if roots := strings.TrimSpace(string(readFile(t, filepath.Join(shared, name+".roots")))); roots != want {
			t.Errorf("app %s sees %q in its root, want %q: the first app's file is in the first app's root only", name, roots, want)
		}
	}
	first, second := reports["first"], reports["second"]
	for _, ns := range []string{"user", "pid", "net", "ipc", "uts"} {
		if first.Namespaces[ns] == "" || first.Namespaces[ns] != second.Namespaces[ns] {
			t.Errorf("%s namespace: %q and %q, want one shared", ns, first.Namespaces[ns], second.Namespaces[ns])
		}
	}
	if first.Namespaces["mnt"] == second.Namespaces["mnt"] {
		t.Errorf("both apps are in mount namespace %s, want one each", first.Namespaces["mnt"])
	}
	if first.UID != 0 || second.UID != 1000 || first.Hostname != second.Hostname {
		t.Errorf("uids %d and %d (want 0 and 1000), hostnames %q and %q", first.UID, second.UID, first.Hostname, second.Hostname)
	}
	if !slices.Contains(first.Env, "WHO=everyone") || !slices.Contains(second.Env, "WHO=second") {
		t.Errorf("environments %v and %v", first.Env, second.Env)
	}
}

// TestExitPolicies checks when a pod of two apps ends, with what status, and that each app's
// status is recorded.
func TestExitPolicies(t *testing.T) {
	dir := sharedDir(t, "busybox")
	for _, tc := range []struct {
		name, policy string
		a, b         string // the apps' shell commands
		pod          int
		codes        [2]int
	}{
		{"both succeed", "any-failure", "exit 0", "sleep 0.3; exit 0", 0, [2]int{0, 0}},
		{"a late failure", "any-failure", "exit 0", "sleep 0.3; exit 3", 3, [2]int{0, 3}},
		{"a failure stops the other", "any-failure", "exit 5", "sleep 30", 5, [2]int{5, 143}},
		{"any ends with the first", "any", "exit 0", "sleep 30", 0, [2]int{0, 143}},
		{"all waits for every app", "all", "exit 5", "sleep 0.3; exit 0", 5, [2]int{5, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.ReplaceAll(tc.name, " ", "-")
			began := time.Now()
			r := kite(t, dir, "run", "--name", name, "--exit-policy", tc.policy,
				layoutRef("busybox"), "--name", "a", "--", "sh", "-c", tc.a, "---",
				layoutRef("busybox"), "--name", "b", "--", "sh", "-c", tc.b)
			wantCode(t, r, tc.pod, "the pod")
			if time.Since(began) > 8*time.Second {
				t.Errorf("the pod took %s: the other app was not stopped", time.Since(began))
			}
			p := podStatus(t, dir, name)
			if p.ExitCode == nil || *p.ExitCode != tc.pod || len(p.Apps) != 2 {
				t.Fatalf("status: %+v", p)
			}
			for i, a := range p.Apps {
				if a.ExitCode == nil || *a.ExitCode != tc.codes[i] {
					t.Errorf("app %s: exit code %v, want %d", a.Name, a.ExitCode, tc.codes[i])
				}
			}
			wantCode(t, kite(t, dir, "rm", name), 0, "kite rm")
		})
	}
	r := kite(t, dir, "run", "--exit-policy", "first", layoutRef("busybox"), "--", "true")
	wantCode(t, r, 125, "an unknown exit policy")
	r = kite(t, dir, "run", "-t", layoutRef("busybox"), "---", layoutRef("busybox"))
	wantCode(t, r, 125, "--tty with two apps")
}

// TestEnterApp enters each app of a pod of two: kite enter needs --app, and then runs in that
// app's root filesystem as that app's user.
func TestEnterApp(t *testing.T) {
	needSubIDs(t)
	dir := sharedDir(t, "busybox")
	run := start(t, dir, nil, "run", "--rm", "--name", "two",
		layoutRef("busybox"), "--name", "a", "--", "sh", "-c", "touch /in-a; echo ready; sleep 60", "---",
		layoutRef("busybox"), "--name", "b", "--user", "1000", "--", "sh", "-c", "sleep 60")
	waitOutput(t, run, "ready")
	defer func() {
		kite(t, dir, "stop", "--force", "two")
		finish(t, run)
	}()
	r := kite(t, dir, "enter", "two", "--", "true")
	wantCode(t, r, 125, "kite enter of a pod of two apps without --app")
	if !strings.Contains(r.Stderr, "--app") {
		t.Errorf("stderr %q", r.Stderr)
	}
	r = kite(t, dir, "enter", "--app", "a", "two", "--", "sh", "-c", "id -u; ls /in-a")
	if r.Code != 0 || r.Stdout != "0\n/in-a\n" {
		t.Errorf("kite enter --app a: %s", r)
	}
	r = kite(t, dir, "enter", "--app", "b", "two", "--", "sh", "-c", "id -u; ls /in-a")
	if r.Code == 0 || !strings.HasPrefix(r.Stdout, "1000\n") {
		t.Errorf("kite enter --app b: %s, want uid 1000 and no /in-a", r)
	}
}
