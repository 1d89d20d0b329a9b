package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Crash torture: kite is SIGKILLed at random moments of a command, and what it leaves behind
// must be truthful (kite list, kite image verify) and collectable (kite gc, kite image gc) down to
// a clean data dir, after which the same command succeeds. The moments are drawn from a seeded
// generator, so a failure is repeated with KITE_TORTURE_SEED; KITE_TORTURE_RUNS sets how many
// kills each command gets.

// envInt reads a positive count from the environment, def when unset.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive number", name, s)
	}
	return n
}

// tortureRand returns the test's random source, seeded from KITE_TORTURE_SEED or the clock, and
// the seed, which it logs so that a failing run can be repeated.
func tortureRand(t *testing.T) (*rand.Rand, int64) {
	t.Helper()
	seed := time.Now().UnixNano()
	if s := os.Getenv("KITE_TORTURE_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("KITE_TORTURE_SEED=%q: want an integer", s)
		}
	}
	t.Logf("torture seed %d (repeat with KITE_TORTURE_SEED=%d)", seed, seed)
	return rand.New(rand.NewSource(seed)), seed
}

// hardeningRow appends one tab-separated row to file in $KITE_HARDENING_DIR, when it is set.
func hardeningRow(t *testing.T, file string, fields ...string) {
	t.Helper()
	dir := os.Getenv("KITE_HARDENING_DIR")
	if dir == "" {
		return
	}
	f, err := os.OpenFile(filepath.Join(dir, file), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Errorf("record the hardening result: %v", err)
		return
	}
	defer f.Close()
	if _, err := f.WriteString(strings.Join(fields, "\t") + "\n"); err != nil {
		t.Errorf("record the hardening result: %v", err)
	}
}

// problems collects what one torture run found wrong, so that runs can be counted as clean or not
// and every problem is still reported.
type problems struct {
	t    *testing.T
	what string
	list []string
}

func (p *problems) add(format string, args ...any) {
	p.t.Helper()
	msg := fmt.Sprintf(format, args...)
	p.list = append(p.list, msg)
	p.t.Errorf("%s: %s", p.what, msg)
}

// kite runs kite to its end and reports a failure to run it as a problem.
func (p *problems) kite(dir string, args ...string) result {
	p.t.Helper()
	r, err := runKite(dir, nil, args...)
	if err != nil {
		p.add("kite %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// want runs kite and reports any exit status but 0.
func (p *problems) want(dir string, args ...string) result {
	p.t.Helper()
	r := p.kite(dir, args...)
	if r.Code != 0 {
		p.add("kite %s: want exit status 0, got %s", strings.Join(args, " "), r)
	}
	return r
}

// leftProcs lists the processes that belong to the data dir: kite's binaries of the bin dir under
// test, any process whose command line names dir, whose working directory or root lies below it,
// and any whose command line contains marker (the app the test ran), when not empty.
func leftProcs(t *testing.T, dir, marker string) []hostProc {
	t.Helper()
	var out []hostProc
	for _, p := range hostProcs(t) {
		if p.PID == os.Getpid() {
			continue
		}
		cmdline := strings.Join(p.Argv, " ")
		ours := strings.Contains(cmdline, dir) || (marker != "" && strings.Contains(cmdline, marker))
		for _, name := range []string{"kite", "kite-stage1", "kite-image"} {
			ours = ours || p.Exe == filepath.Join(binDir, name)
		}
		for _, link := range []string{"cwd", "root"} {
			target, err := os.Readlink(fmt.Sprintf("/proc/%d/%s", p.PID, link))
			ours = ours || (err == nil && (target == dir || strings.HasPrefix(target, dir+"/")))
		}
		if ours {
			out = append(out, p)
		}
	}
	return out
}

// waitNoProcs waits for the data dir's processes to go and reports those that stay.
func (p *problems) waitNoProcs(dir, marker string) {
	p.t.Helper()
	deadline := time.Now().Add(goneWithin)
	for {
		left := leftProcs(p.t, dir, marker)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			p.add("processes still running after %s: %+v", goneWithin, left)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// mountsUnder lists the mount points of this mount namespace at or below dir.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(string(readFile(t, "/proc/self/mountinfo")), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			out = append(out, fields[4])
		}
	}
	return out
}

var layerID = regexp.MustCompile(`^[0-9a-f]{64}$`)

// strayLayers inspects the store below dir as containers/storage records it: the layers that no
// image or container is built on, the layers still marked incomplete, and the driver's layer
// directories that no layer record names. An empty answer means the store holds only what its
// images use.
func strayLayers(t *testing.T, dir string) []string {
	t.Helper()
	storage := filepath.Join(dir, "storage")
	var out []string
	for _, driver := range []string{"overlay", "vfs"} {
		var layers []struct {
			ID     string          `json:"id"`
			Parent string          `json:"parent"`
			Flags  map[string]any  `json:"flags"`
			Extra  json.RawMessage `json:"-"`
		}
		var images []struct {
			ID       string   `json:"id"`
			Layer    string   `json:"layer"`
			Mapped   []string `json:"mapped-layers"`
			Metadata string   `json:"metadata"`
		}
		var containers []struct {
			ID    string `json:"id"`
			Layer string `json:"layer"`
		}
		if !readJSONIfAny(t, filepath.Join(storage, driver+"-layers", "layers.json"), &layers) {
			continue
		}
		readJSONIfAny(t, filepath.Join(storage, driver+"-images", "images.json"), &images)
		readJSONIfAny(t, filepath.Join(storage, driver+"-containers", "containers.json"), &containers)
		parent := map[string]string{}
		for _, l := range layers {
			parent[l.ID] = l.Parent
			if l.Flags["incomplete"] == true {
				out = append(out, fmt.Sprintf("layer %s is marked incomplete", l.ID))
			}
		}
		used := map[string]bool{}
		var tops []string
		for _, img := range images {
			tops = append(append(tops, img.Layer), img.Mapped...)
		}
		for _, c := range containers {
			tops = append(tops, c.Layer)
		}
		for _, top := range tops {
			for id := top; id != "" && !used[id]; id = parent[id] {
				used[id] = true
			}
		}
		for _, l := range layers {
			if !used[l.ID] {
				out = append(out, fmt.Sprintf("layer %s is used by no image or container", l.ID))
			}
		}
		home := filepath.Join(storage, driver)
		if driver == "vfs" {
			home = filepath.Join(home, "dir")
		}
		entries, _ := os.ReadDir(home)
		for _, e := range entries {
			if _, ok := parent[e.Name()]; layerID.MatchString(e.Name()) && !ok {
				out = append(out, fmt.Sprintf("directory %s belongs to no layer", filepath.Join(home, e.Name())))
			}
		}
	}
	return out
}

// readJSONIfAny decodes path into v and reports whether it existed.
func readJSONIfAny(t *testing.T, path string, v any) bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return false
	}
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	return true
}

// fetchLeftovers lists the temporary directories of fetches below the data dir.
func fetchLeftovers(dir string) []string {
	left, _ := filepath.Glob(filepath.Join(dir, "tmp", "*"))
	return left
}

// checkAfterKill is what must hold once a killed kite's processes are gone: kite list shows no pod
// running or being written, and kite image verify finds nothing wrong. Then kite gc and kite image
// gc must bring the data dir back to a clean state: no pod, no mount, no process, no stray layer
// and no temporary files.
func (p *problems) checkAfterKill(dir, marker string) {
	p.t.Helper()
	p.waitNoProcs(dir, marker)
	r := p.want(dir, "list", "--format", "json")
	var listed []podJSON
	if r.Code == 0 {
		if err := json.Unmarshal([]byte(r.Stdout), &listed); err != nil {
			p.add("kite list --format json: %v\n%s", err, r.Stdout)
		}
	}
	for _, pod := range listed {
		switch pod.State {
		case "running", "embryo":
			// Nothing of the killed kite runs any more (waitNoProcs), so neither does the pod.
			p.add("pod %s is shown %s after its kite was killed and its processes are gone", pod.UUID, pod.State)
		case "aborted", "prepared", "exited", "exited-garbage", "garbage":
		default:
			p.add("pod %s is in an unknown state %q", pod.UUID, pod.State)
		}
	}
	r = p.kite(dir, "image", "verify")
	if r.Code != 0 {
		p.add("kite image verify after the kill: want a clean store, got %s", r)
	}
	p.want(dir, "gc", "--grace-period", "0", "--expire-prepared", "0s")
	p.want(dir, "image", "gc")
	p.checkClean(dir, marker)
}

// checkClean reports whatever is left in the data dir beyond stored images.
func (p *problems) checkClean(dir, marker string) {
	p.t.Helper()
	if left := podEntries(p.t, dir); len(left) > 0 {
		p.add("pod directories left after gc: %v", left)
	}
	if m := mountsUnder(p.t, dir); len(m) > 0 {
		p.add("mounts left: %v", m)
	}
	if left := leftProcs(p.t, dir, marker); len(left) > 0 {
		p.add("processes left: %+v", left)
	}
	if stray := strayLayers(p.t, dir); len(stray) > 0 {
		p.add("the store holds what no image uses:\n%s", strings.Join(stray, "\n"))
	}
	if left := fetchLeftovers(dir); len(left) > 0 {
		p.add("temporary files of a fetch left: %v", left)
	}
}

// tortureCommand is one kite command under torture.
type tortureCommand struct {
	name string
	// setup makes the data dir ready for one run of the command and returns its arguments; it
	// reports what goes wrong through p.
	setup func(p *problems, dir string) []string
	// killed, when set, checks what a killed run left that the shared checks do not see.
	killed func(p *problems, dir string)
}

// tortureCommands are the commands the issue names. marker is on the command line of every
// app the run command starts, so that the checks can find it in /proc.
func tortureCommands(marker string) []tortureCommand {
	busybox := layoutRef("busybox")
	return []tortureCommand{
		{"fetch", func(p *problems, dir string) []string {
			// Fetch copies every layer again only once the image is gone.
			r := p.want(dir, "image", "list", "--quiet")
			if strings.TrimSpace(r.Stdout) != "" {
				p.want(dir, "image", "rm", "localhost/layout:multilayer")
			}
			return []string{"fetch", "-q", layoutRef("multilayer")}
		}, func(p *problems, dir string) {
			// A killed fetch stored the image whole or not at all: if it is listed, it runs.
			if strings.TrimSpace(p.want(dir, "image", "list", "--quiet").Stdout) == "" {
				return
			}
			// /opaque/new is the top layer's file: cat fails without it.
			p.want(dir, "run", "--pull-policy=never", "localhost/layout:multilayer", "--", "cat", "/opaque/new")
		}},
		{"run", func(p *problems, dir string) []string {
			return []string{"run", busybox, "--", "sh", "-c", "echo written > /written; exec sleep " + marker}
		}, nil},
		{"prepare", func(p *problems, dir string) []string {
			return []string{"prepare", busybox}
		}, nil},
		{"gc", func(p *problems, dir string) []string {
			// Something of each kind gc removes: an exited pod and a prepared one.
			p.want(dir, "run", busybox, "--", "sh", "-c", "echo written > /written")
			p.want(dir, "prepare", busybox)
			return []string{"gc", "--grace-period", "0", "--expire-prepared", "0s"}
		}, nil},
		{"rm", func(p *problems, dir string) []string {
			r := p.want(dir, "prepare", busybox)
			uuid := strings.TrimSpace(r.Stdout)
			p.want(dir, "run-prepared", uuid)
			return []string{"rm", uuid}
		}, nil},
	}
}

// TestTortureKill SIGKILLs kite fetch, run, prepare, gc and rm at random moments of their run
// (KITE_TORTURE_RUNS each, 5 by default), drawn from the duration of an unkilled run. Most kills
// go to kite's whole process group, so that its helpers die at the same instant; every fourth or
// so only to the kite process, whose helpers must then clean up after themselves. After each
// kill, the checks of checkAfterKill must pass and the same command must then succeed.
func TestTortureKill(t *testing.T) {
	runs := envInt(t, "KITE_TORTURE_RUNS", 5)
	rng, seed := tortureRand(t)
	marker := uniqueSleep(0)
	for _, c := range tortureCommands(marker) {
		t.Run(c.name, func(t *testing.T) {
			dir := newDataDir(t)
			if c.name != "fetch" {
				wantCode(t, kite(t, dir, "fetch", "-q", layoutRef("busybox")), 0, "store the image")
			}
			// An unkilled run, to learn how long the command takes.
			p := &problems{t: t, what: "the unkilled run"}
			args := c.setup(p, dir)
			began := time.Now()
			p.want(dir, args...)
			took := time.Since(began)
			p.checkAfterKill(dir, marker)
			if len(p.list) > 0 {
				t.FailNow()
			}
			t.Logf("an unkilled kite %s takes about %s", c.name, took)
			clean := 0
			for i := range runs {
				after := time.Duration(rng.Int63n(int64(took)))
				onlyKite := rng.Intn(4) == 0
				whom := "its process group"
				if onlyKite {
					whom = "the kite process alone"
				}
				p := &problems{t: t, what: fmt.Sprintf("run %d (kill %s after %s)", i, whom, after)}
				args := c.setup(p, dir)
				k, err := startKite(dir, nil, args...)
				if err != nil {
					t.Fatal(err)
				}
				time.Sleep(after)
				if onlyKite {
					_ = k.cmd.Process.Signal(syscall.SIGKILL)
				} else {
					_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL)
				}
				if r, err := k.wait(); err != nil {
					p.add("%v\n%s", err, r)
				}
				// Whatever kite's helpers outlive it by is theirs to clean up; the checks wait
				// for them to be gone.
				if c.killed != nil {
					p.waitNoProcs(dir, marker)
					c.killed(p, dir)
				}
				p.checkAfterKill(dir, marker)
				// The same command then succeeds, and leaves nothing behind but the image.
				again := c.setup(p, dir)
				p.want(dir, again...)
				p.want(dir, "gc", "--grace-period", "0", "--expire-prepared", "0s")
				p.checkClean(dir, marker)
				if len(p.list) == 0 {
					clean++
				}
			}
			t.Logf("kite %s: %d runs killed, %d clean", c.name, runs, clean)
			hardeningRow(t, "torture.tsv", c.name, strconv.Itoa(runs), strconv.Itoa(clean), strconv.Itoa(runs-clean), strconv.FormatInt(seed, 10))
		})
	}
}
