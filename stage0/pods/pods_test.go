package pods

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kite-runtime/kite/pkg/poddir"
	"github.com/kite-runtime/kite/stage0/datadir"
	"golang.org/x/sys/unix"
)

// fakePod makes a pod directory in state dir with a pod.json, and, when held, holds its lock
// (as a monitor or a kite at work would) until the test ends.
func fakePod(t *testing.T, d datadir.Dir, stateDir, uuid, name string, held bool, created time.Time) string {
	t.Helper()
	dir := filepath.Join(d.PodsIn(stateDir), uuid)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := poddir.WriteJSON(dir, poddir.PodFile, poddir.Pod{SchemaVersion: 1, UUID: uuid, Name: name, Created: created}); err != nil {
		t.Fatal(err)
	}
	if held {
		f, err := os.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const (
	uuidA = "aaaaaaaa-0000-4000-8000-000000000001"
	uuidB = "aaaaaaaa-0000-4000-8000-000000000002"
	uuidC = "cccccccc-0000-4000-8000-000000000003"
	uuidD = "dddddddd-0000-4000-8000-000000000004"
	uuidE = "eeeeeeee-0000-4000-8000-000000000005"
	uuidF = "ffffffff-0000-4000-8000-000000000006"
)

func TestStates(t *testing.T) {
	d := datadir.Dir{Root: t.TempDir()}
	now := time.Now()
	fakePod(t, d, poddir.EmbryoDir, uuidA, "", true, now)
	fakePod(t, d, poddir.EmbryoDir, uuidB, "", false, now)
	fakePod(t, d, poddir.PreparedDir, uuidC, "", false, now)
	fakePod(t, d, poddir.RunDir, uuidD, "", true, now)
	fakePod(t, d, poddir.RunDir, uuidE, "", false, now)
	fakePod(t, d, poddir.ExitedGarbageDir, uuidF, "", false, now)
	want := map[string]State{uuidA: Embryo, uuidB: Aborted, uuidC: Prepared, uuidD: Running, uuidE: Exited, uuidF: ExitedGarbage}
	all, err := List(d)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(want) {
		t.Fatalf("List found %d pods, want %d", len(all), len(want))
	}
	for _, p := range all {
		if p.State != want[p.UUID] {
			t.Errorf("pod %s is %s, want %s", p.UUID, p.State, want[p.UUID])
		}
	}
	// Locking a pod this process holds reports the state others would see.
	p, _ := Load(d, uuidE)
	l, err := Lock(d, p)
	if err != nil || l.State != Exited {
		t.Fatalf("Lock of an exited pod: %v, %v", l, err)
	}
	defer l.Close()
	if _, err := Lock(d, p); !errors.Is(err, ErrBusy) {
		t.Errorf("a second Lock: %v, want ErrBusy", err)
	}
	running, _ := Load(d, uuidD)
	if _, err := Lock(d, running); !errors.Is(err, ErrBusy) {
		t.Errorf("Lock of a running pod: %v, want ErrBusy", err)
	}
}

func TestFind(t *testing.T) {
	d := datadir.Dir{Root: t.TempDir()}
	now := time.Now()
	fakePod(t, d, poddir.RunDir, uuidA, "", false, now)
	fakePod(t, d, poddir.RunDir, uuidB, "", false, now)
	fakePod(t, d, poddir.RunDir, uuidC, "web", false, now)
	if err := reserveName(d, "web", uuidC); err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]string{uuidA: uuidA, "aaaaaaaa-0000-4000-8000-000000000002": uuidB, "ccc": uuidC, "web": uuidC} {
		p, err := Find(d, ref)
		if err != nil || p.UUID != want {
			t.Errorf("Find(%q) = %v, %v; want %s", ref, p, err, want)
		}
	}
	for ref, hint := range map[string]string{"aaaa": "2 pods start with it", "bbbb": "no such pod", "nosuch": "no such pod", uuidF: "no such pod"} {
		if _, err := Find(d, ref); err == nil || !strings.Contains(err.Error(), hint) {
			t.Errorf("Find(%q): %v, want an error saying %q", ref, err, hint)
		}
	}
}

func TestNames(t *testing.T) {
	d := datadir.Dir{Root: t.TempDir()}
	fakePod(t, d, poddir.RunDir, uuidA, "web", false, time.Now())
	if err := reserveName(d, "web", uuidA); err != nil {
		t.Fatal(err)
	}
	if err := reserveName(d, "web", uuidB); err == nil || !strings.Contains(err.Error(), "taken by pod "+uuidA) {
		t.Errorf("a taken name: %v", err)
	}
	// Its pod gone, the name is free.
	os.RemoveAll(filepath.Join(d.PodsIn(poddir.RunDir), uuidA))
	if err := reserveName(d, "web", uuidB); err != nil {
		t.Errorf("the name of a removed pod: %v", err)
	}
	if err := ReleaseName(d, "web", uuidA); err != nil || byName(d, "web") != uuidB {
		t.Errorf("another pod's release took the name: %v, %q", err, byName(d, "web"))
	}
	if err := ReleaseName(d, "web", uuidB); err != nil || byName(d, "web") != "" {
		t.Errorf("release: %v, %q", err, byName(d, "web"))
	}
	for _, bad := range []string{"", "-x", "a/b", "a b", uuidA, strings.Repeat("x", 129)} {
		if ValidName(bad) == nil {
			t.Errorf("ValidName(%q) accepted it", bad)
		}
	}
}

func TestGC(t *testing.T) {
	d := datadir.Dir{Root: t.TempDir()}
	now := time.Now()
	fakePod(t, d, poddir.RunDir, uuidA, "", false, now)      // exited: marked
	fakePod(t, d, poddir.RunDir, uuidB, "", true, now)       // running: untouched
	fakePod(t, d, poddir.PreparedDir, uuidC, "", false, now) // prepared now: kept
	old := fakePod(t, d, poddir.ExitedGarbageDir, uuidD, "", false, now)
	os.Chtimes(old, now.Add(-time.Hour), now.Add(-time.Hour))                   // marked an hour ago: due
	fakePod(t, d, poddir.EmbryoDir, uuidE, "", false, now)                      // aborted: due
	fakePod(t, d, poddir.PreparedDir, uuidF, "", false, now.Add(-48*time.Hour)) // expired: due

	marked, due, err := GC(d, GCOptions{GracePeriod: 30 * time.Minute, ExpirePrepared: 24 * time.Hour}, now)
	if err != nil {
		t.Fatal(err)
	}
	var dueIDs []string
	for _, l := range due {
		dueIDs = append(dueIDs, l.UUID)
		if filepath.Base(filepath.Dir(l.Dir)) != poddir.GarbageDir {
			t.Errorf("due pod %s is in %s", l.UUID, l.Dir)
		}
		l.Close()
	}
	if strings.Join(marked, " ") != uuidA {
		t.Errorf("marked %v, want %s", marked, uuidA)
	}
	if got, want := strings.Join(slices.Sorted(slices.Values(dueIDs)), " "), strings.Join([]string{uuidD, uuidE, uuidF}, " "); got != want {
		t.Errorf("due %s, want %s", got, want)
	}
	for uuid, state := range map[string]State{uuidA: ExitedGarbage, uuidB: Running, uuidC: Prepared} {
		if p, err := Load(d, uuid); err != nil || p.State != state {
			t.Errorf("pod %s after gc: %v, %v; want %s", uuid, p, err, state)
		}
	}
}

// TestGCRemovesStaleStaging checks that gc removes an embryo's staging directory that a killed
// kite left, and waits for a kite making one.
func TestGCRemovesStaleStaging(t *testing.T) {
	d := datadir.Dir{Root: t.TempDir()}
	embryos := d.PodsIn(poddir.EmbryoDir)
	left := filepath.Join(embryos, stagingPrefix+uuidA)
	if err := os.MkdirAll(left, 0o700); err != nil {
		t.Fatal(err)
	}
	// A kite making a pod holds the staging lock shared; gc waits for it.
	guard, err := os.OpenFile(filepath.Join(filepath.Dir(embryos), stagingLock), os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(guard.Fd()), unix.LOCK_SH); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := GC(d, GCOptions{}, time.Now())
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if _, err := os.Stat(left); err != nil {
		t.Fatal("gc removed a staging directory while a kite held the staging lock")
	}
	guard.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(left); err == nil {
		t.Error("gc left a staging directory nobody makes")
	}
}
