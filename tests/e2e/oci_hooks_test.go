package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestOCIHooks gives a container one hook of each kind, each recording its turn, its uid and the
// state it read: they run in runtime-spec's order, at the right step of the lifecycle, as the
// user (createContainer and startContainer as root of the container's user namespace), with the
// container's state.
func TestOCIHooks(t *testing.T) {
	e := newOCIEnv(t)
	s := e.spec(t, "sh", "-c", nsScript("/out/app.ns")+"; echo app >> /out/app; exec sleep 30")
	s.Annotations = map[string]string{"org.kite.test": "hooks"}
	s.Hooks = &specs.Hooks{
		Prestart:        []specs.Hook{recordingHook("/bin/sh", e.out, "prestart", 0)},
		CreateRuntime:   []specs.Hook{recordingHook("/bin/sh", e.out, "createRuntime", 0)},
		CreateContainer: []specs.Hook{recordingHook("/bin/sh", e.out, "createContainer", 0)},
		// It runs in the container's root: its /bin/sh is busybox, the host's e.out its /out.
		StartContainer: []specs.Hook{recordingHook("/bin/sh", "/out", "startContainer", 0)},
		Poststart:      []specs.Hook{recordingHook("/bin/sh", e.out, "poststart", 0)},
		Poststop:       []specs.Hook{recordingHook("/bin/sh", e.out, "poststop", 0)},
	}
	b := e.bundle(t, s)
	user := strconv.Itoa(os.Getuid())
	e.create(t, "c1", b)
	pid := e.state(t, "c1").Pid
	if got, want := hookOrder(t, e.out), []string{"prestart " + user, "createRuntime " + user, "createContainer 0"}; !slices.Equal(got, want) {
		t.Errorf("hooks run by create: %q, want %q", got, want)
	}
	noFile(t, filepath.Join(e.out, "app"), "the program ran at create")

	e.start(t, "c1")
	wantFile(t, filepath.Join(e.out, "app"), "the program")
	got := waitOrder(t, e.out, 5)
	if want := []string{"prestart " + user, "createRuntime " + user, "createContainer 0", "startContainer 0", "poststart " + user}; !slices.Equal(got, want) {
		t.Errorf("hooks run by create and start: %q, want %q", got, want)
	}
	if st := e.state(t, "c1"); st.Status != specs.StateRunning || st.Annotations["org.kite.test"] != "hooks" {
		t.Errorf("state after start: %+v, want running with the annotation", st)
	}

	wantCode(t, e.oci(t, "kill", "c1", "KILL"), 0, "kite oci kill")
	e.waitStatus(t, "c1", specs.StateStopped)
	if got := hookOrder(t, e.out); len(got) != 5 {
		t.Errorf("hooks run before delete: %q, want no poststop yet", got)
	}
	wantCode(t, e.oci(t, "delete", "c1"), 0, "kite oci delete")
	if got := hookOrder(t, e.out); len(got) != 6 || got[5] != "poststop "+user {
		t.Errorf("hooks after delete: %q, want poststop %s last", got, user)
	}

	for name, status := range map[string]specs.ContainerState{
		"prestart": specs.StateCreated, "createRuntime": specs.StateCreated, "createContainer": specs.StateCreated,
		"startContainer": specs.StateCreated, "poststart": specs.StateRunning, "poststop": specs.StateStopped,
	} {
		st := hookState(t, e.out, name)
		if st.ID != "c1" || st.Status != status || st.Pid != pid || st.Bundle != b || st.Version != specs.Version || st.Annotations["org.kite.test"] != "hooks" {
			t.Errorf("the %s hook read %+v; want id c1, status %s, pid %d, bundle %s, ociVersion %s and the annotation", name, st, status, pid, b, specs.Version)
		}
	}
	// The createContainer and startContainer hooks run in the container's user and pid
	// namespaces, the others in the runtime's (the host's).
	host := hostNamespace(t, "user") + "\n" + hostNamespace(t, "pid") + "\n"
	app := string(readFile(t, filepath.Join(e.out, "app.ns")))
	if app == host {
		t.Fatalf("the program runs in the host's user and pid namespaces: %q", app)
	}
	for _, name := range []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"} {
		want, where := host, "the host's"
		if name == "createContainer" || name == "startContainer" {
			want, where = app, "the container's"
		}
		if got := string(readFile(t, filepath.Join(e.out, name+".ns"))); got != want {
			t.Errorf("the %s hook ran in the user and pid namespaces %q, want %s %q", name, got, where, want)
		}
	}
	e.wantNothingLeft(t, "after delete")
}

// TestOCIHookFailures makes one hook of each kind fail: a failing prestart, createRuntime or
// createContainer hook fails create, which leaves nothing behind; a failing startContainer hook
// fails start, and the program does not run; a failing poststart or poststop hook is only a
// warning, and the next hook of its kind still runs.
func TestOCIHookFailures(t *testing.T) {
	for _, kind := range []string{"prestart", "createRuntime", "createContainer"} {
		t.Run(kind, func(t *testing.T) {
			e := newOCIEnv(t)
			s := e.spec(t, "sh", "-c", "echo app >> /out/app")
			s.Hooks = &specs.Hooks{
				Prestart:        []specs.Hook{recordingHook("/bin/sh", e.out, "prestart", 0)},
				CreateRuntime:   []specs.Hook{recordingHook("/bin/sh", e.out, "createRuntime", 0)},
				CreateContainer: []specs.Hook{recordingHook("/bin/sh", e.out, "createContainer", 0)},
				Poststop:        []specs.Hook{recordingHook("/bin/sh", e.out, "poststop", 0)},
			}
			broken := recordingHook("/bin/sh", e.out, kind, 7)
			switch kind {
			case "prestart":
				s.Hooks.Prestart[0] = broken
			case "createRuntime":
				s.Hooks.CreateRuntime[0] = broken
			case "createContainer":
				s.Hooks.CreateContainer[0] = broken
			}
			r, _ := e.tryCreate(t, "c1", e.bundle(t, s), nil)
			wantFailure(t, r, "kite oci create with a failing "+kind+" hook", kind, kind+" broke")
			order := hookOrder(t, e.out)
			if len(order) == 0 || !strings.HasPrefix(order[len(order)-1], kind+" ") {
				t.Errorf("hooks run: %q, want none after the failing %s hook", order, kind)
			}
			noFile(t, filepath.Join(e.out, "app"), "the program of a container whose create failed")
			e.wantNothingLeft(t, "after a failed create")
		})
	}

	t.Run("timeout", func(t *testing.T) {
		e := newOCIEnv(t)
		s := e.spec(t, "true")
		one := 1
		s.Hooks = &specs.Hooks{Prestart: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "exec sleep 20"}, Timeout: &one}}}
		r, _ := e.tryCreate(t, "c1", e.bundle(t, s), nil)
		wantFailure(t, r, "kite oci create with a prestart hook that outlives its timeout", "prestart hook 0", "timeout of 1 s")
		e.wantNothingLeft(t, "after a failed create")
		waitProcs(t, goneWithin, "the hook", func() []hostProc { return procsWithArgv(t, "sleep", "20") })
	})

	t.Run("startContainer", func(t *testing.T) {
		e := newOCIEnv(t)
		s := e.spec(t, "sh", "-c", "echo app >> /out/app")
		s.Hooks = &specs.Hooks{StartContainer: []specs.Hook{recordingHook("/bin/sh", "/out", "startContainer", 7)}}
		e.create(t, "c1", e.bundle(t, s))
		wantFailure(t, e.oci(t, "start", "c1"), "kite oci start with a failing startContainer hook", "startContainer", "startContainer broke")
		if got := hookOrder(t, e.out); !slices.Equal(got, []string{"startContainer 0"}) {
			t.Errorf("hooks run: %q", got)
		}
		e.waitStatus(t, "c1", specs.StateStopped)
		noFile(t, filepath.Join(e.out, "app"), "the program after its startContainer hook failed")
		wantCode(t, e.oci(t, "delete", "c1"), 0, "kite oci delete")
		e.wantNothingLeft(t, "after delete")
	})

	t.Run("poststart and poststop", func(t *testing.T) {
		e := newOCIEnv(t)
		s := e.spec(t, "sh", "-c", "echo app >> /out/app; exec sleep 30")
		s.Hooks = &specs.Hooks{
			Poststart: []specs.Hook{recordingHook("/bin/sh", e.out, "poststart", 7), recordingHook("/bin/sh", e.out, "poststart2", 0)},
			Poststop:  []specs.Hook{recordingHook("/bin/sh", e.out, "poststop", 9), recordingHook("/bin/sh", e.out, "poststop2", 0)},
		}
		c := e.create(t, "c1", e.bundle(t, s))
		e.start(t, "c1")
		wantFile(t, filepath.Join(e.out, "app"), "the program")
		user := strconv.Itoa(os.Getuid())
		if got, want := waitOrder(t, e.out, 2), []string{"poststart " + user, "poststart2 " + user}; !slices.Equal(got, want) {
			t.Errorf("poststart hooks run: %q, want %q", got, want)
		}
		// The monitor, which runs the poststart hooks, writes to the container's stderr.
		deadline := time.Now().Add(waitTimeout)
		for stderr := c.stderrText(t); !strings.Contains(stderr, "poststart broke"); stderr = c.stderrText(t) {
			if time.Now().After(deadline) {
				t.Fatalf("no warning about the failing poststart hook on the container's stderr: %q", stderr)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if stderr := c.stderrText(t); !strings.Contains(stderr, "warning") || !strings.Contains(stderr, "poststart hook 0") {
			t.Errorf("the container's stderr: %q, want a warning naming poststart hook 0", stderr)
		}
		if st := e.state(t, "c1"); st.Status != specs.StateRunning || !alive(st.Pid) {
			t.Errorf("state after a failing poststart hook: %+v, want running", st)
		}

		wantCode(t, e.oci(t, "kill", "c1"), 0, "kite oci kill")
		e.waitStatus(t, "c1", specs.StateStopped)
		r := e.oci(t, "delete", "c1")
		wantCode(t, r, 0, "kite oci delete with a failing poststop hook")
		for _, h := range []string{"warning", "poststop hook 0", "poststop broke"} {
			if !strings.Contains(r.Stderr, h) {
				t.Errorf("delete's stderr does not say %q: %q", h, r.Stderr)
			}
		}
		if got := hookOrder(t, e.out); len(got) != 4 || got[2] != "poststop "+user || got[3] != "poststop2 "+user {
			t.Errorf("hooks run: %q, want both poststop hooks last", got)
		}
		e.wantNothingLeft(t, "after delete")
	})
}
