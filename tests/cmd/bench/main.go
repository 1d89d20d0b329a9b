// bench measures `kite run` side by side with bubblewrap and podman in one hyperfine run, the
// resident memory of kite's processes beside a running app, and `kite fetch` of a ~60 MB image
// from a registry on loopback beside skopeo and podman, and writes BENCHMARKS.md. It runs as an
// unprivileged user (tests/scripts/bench.sh arranges that when started as root).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "bin", "directory of the built kite binaries")
	flag.StringVar(&o.images, "images", "tests/out", "directory of the test images (layout/, images.tar)")
	flag.StringVar(&o.out, "out", "BENCHMARKS.md", "report to write")
	flag.IntVar(&o.runs, "runs", 30, "measured runs per command of kite run")
	flag.IntVar(&o.coldRuns, "fetch-cold-runs", 15, "measured runs per command of a fetch into an empty store")
	flag.IntVar(&o.warmRuns, "fetch-warm-runs", 30, "measured runs per command of a fetch of a stored image")
	flag.StringVar(&o.only, "only", "", "measure only run (kite run and memory) or fetch; the report then has only that section")
	flag.StringVar(&o.debian, "debian", "", "Debian root file system tarball (mmdebstrap --format=tar) to make the fetch benchmark's image of")
	flag.Parse()
	if o.only != "" && o.only != "run" && o.only != "fetch" {
		fmt.Fprintln(os.Stderr, "bench: -only takes run or fetch")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type options struct {
	bin, images, out, debian string
	runs, coldRuns, warmRuns int
	only                     string
}

type measured struct {
	Command string    `json:"command"`
	Median  float64   `json:"median"`
	Times   []float64 `json:"times"`
}

func run(o options) error {
	bin, _ := filepath.Abs(o.bin)
	images, _ := filepath.Abs(o.images)
	scratch, err := os.MkdirTemp("", "kite-bench")
	if err != nil {
		return err
	}
	defer removeAll(scratch)
	kite := filepath.Join(bin, "kite")
	rep := report{runs: o.runs}
	if o.only != "fetch" {
		if err := runBench(kite, images, scratch, &rep); err != nil {
			return err
		}
	}
	if o.only != "run" {
		if rep.fetch, err = fetchBench(kite, scratch, o.debian, o.coldRuns, o.warmRuns); err != nil {
			return err
		}
	}
	return writeReport(o.out, rep)
}

// runBench measures kite run beside bubblewrap and podman, and kite's resident memory.
func runBench(kite, images, scratch string, rep *report) error {
	data := filepath.Join(scratch, "kite")
	image := "oci:" + filepath.Join(images, "layout") + ":busybox"
	// The host's network, as podman's --network=host: a pod network's cost is measured apart.
	kiteRun := []string{kite, "--dir", data, "run", "--net=host", image, "--", "true"}
	// The first run fetches the image into the store and compiles the default seccomp profile;
	// every measured run finds both there.
	if o, err := exec.Command(kiteRun[0], kiteRun[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("first kite run: %v\n%s", err, o)
	}
	rootfs := filepath.Join(scratch, "rootfs")
	if err := extractImage(filepath.Join(images, "layout"), "busybox", rootfs); err != nil {
		return err
	}
	bwrap := []string{"bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", rootfs, "/", "/bin/true"}
	commands := [][]string{kiteRun, bwrap}
	var crun *crunPeer
	seccomp, err := kiteSeccomp(data)
	if err == nil {
		crun, err = newCrunPeer(scratch, rootfs, seccomp)
	}
	if err != nil {
		rep.notes = append(rep.notes, "crun not measured: "+err.Error())
	} else {
		commands = append(commands, crun.run(crun.plain, "kite-bench"), crun.run(crun.seccomp, "kite-bench-seccomp"))
		if cgroupControllersHidden() {
			rep.notes = append(rep.notes, "crun refuses a cgroup v1/v2 hybrid whose v2 hierarchy has controllers (this host's has hugetlb). "+
				"tests/scripts/bench.sh, run as root, mounts an empty file over /sys/fs/cgroup/unified/cgroup.controllers in a mount namespace of the bench's own, "+
				"so every command measured here sees no controllers there. None of them uses cgroups when rootless on such a host.")
		}
	}
	podman, err := podmanCommand(scratch, images)
	if err != nil {
		rep.notes = append(rep.notes, "podman not measured: "+err.Error())
	} else {
		commands = append(commands, podman)
	}
	// Interleaved: rep.runs hyperfine invocations, each running every command once.
	results, err := hyperfine(scratch, bench{commands: commands, warmup: 3, runs: rep.runs, rounds: rep.runs})
	if podman != nil {
		// Rootless podman leaves a pause process behind to keep its user namespace; stop it.
		exec.Command("podman", "system", "migrate").Run()
	}
	if err != nil {
		return err
	}
	rep.run = results
	programs := [][]string{{filepath.Join(filepath.Dir(kite), "empty")}, {"/bin/true"}}
	labels := []string{"a Go program that does nothing (`tests/cmd/empty`)", "`/bin/true`"}
	for i, c := range append(commands, programs...) {
		label := runner(shellJoin(c))
		if i >= len(commands) {
			label = labels[i-len(commands)]
		}
		cost, err := measureCost(label, c, 10)
		if err != nil {
			return err
		}
		rep.costs = append(rep.costs, cost)
	}
	if podman != nil {
		exec.Command("podman", "system", "migrate").Run()
	}
	rep.memory, err = medianMemory(kite, data, image, "host", 5)
	if err != nil {
		rep.notes = append(rep.notes, "resident memory not measured: "+err.Error())
	}
	if rep.memoryNet, err = medianMemory(kite, data, image, "default", 5); err != nil {
		rep.notes = append(rep.notes, "resident memory with the pod's own network not measured: "+err.Error())
	}
	rep.peers = map[string]peerMemoryResult{}
	peer := func(name string, cmd []string, procs ...string) {
		if m, counted, err := peerMemory(cmd, procs); err != nil {
			rep.notes = append(rep.notes, name+"'s memory not measured: "+err.Error())
		} else {
			rep.peers[name] = peerMemoryResult{m, counted}
		}
	}
	peer("bwrap", []string{"bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", rootfs, "/", "/bin/sleep", "1.5"}, "bwrap")
	if crun != nil {
		// crun re-runs itself from a copy in a memfd, which names the process.
		peer("crun", crun.run(crun.sleep, "kite-bench-sleep"), "crun", "memfd:crun_clon")
	}
	if podman != nil {
		peer("podman", append(append([]string{}, podman[:len(podman)-1]...), "sleep", "1.5"), "podman", "conmon", "catatonit", "runc")
		exec.Command("podman", "system", "migrate").Run()
	}
	if rep.phases, err = startPhases(kite, data, image, 20); err != nil {
		return err
	}
	if rep.idmaps, err = idMapHelpers(10); err != nil {
		rep.notes = append(rep.notes, "newuidmap and newgidmap not measured: "+err.Error())
	}
	if rep.empty, err = emptyProgramStart(scratch, filepath.Join(filepath.Dir(kite), "empty"), 30); err != nil {
		rep.notes = append(rep.notes, "program start not measured: "+err.Error())
	}
	if rep.seccomp, err = seccompCost(kite, data, image, rep.runs); err != nil {
		return err
	}
	same := func(cmd []string) func(int) []string { return func(int) []string { return cmd } }
	rep.bursts = append(rep.bursts, burst(50, same(kiteRun)))
	if crun != nil {
		rep.bursts = append(rep.bursts, burst(50, func(i int) []string { return crun.run(crun.plain, fmt.Sprintf("kite-bench-%d", i)) }))
	}
	if podman != nil {
		rep.bursts = append(rep.bursts, burst(50, same(podman)))
		exec.Command("podman", "system", "migrate").Run()
	}
	if rep.list, err = listPods(kite, scratch, image, 1000, 20); err != nil {
		return err
	}
	if rep.network, err = networkBench(scratch, kite, data, image, podman, 20); err != nil {
		rep.notes = append(rep.notes, "the pod networks were not measured: "+err.Error())
	}
	return nil
}

// podmanCommand loads the image into a private podman store and returns the measured command.
// runc stands in for crun, which refuses the hybrid cgroup layout of some hosts.
func podmanCommand(scratch, images string) ([]string, error) {
	if _, err := exec.LookPath("podman"); err != nil {
		return nil, errors.New("not installed (apt-get install podman runc)")
	}
	base := []string{"podman", "--root", filepath.Join(scratch, "podman"), "--runroot", filepath.Join(scratch, "podman-run"),
		"--cgroup-manager", "cgroupfs", "--runtime", "runc"}
	load := append(append([]string{}, base...), "pull", "-q", "oci-archive:"+filepath.Join(images, "images.tar")+":busybox")
	var stderr strings.Builder
	pull := exec.Command(load[0], load[1:]...)
	pull.Stderr = &stderr
	o, err := pull.Output()
	if err != nil {
		return nil, fmt.Errorf("podman pull: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	// pull -q prints the image ID last; podman may warn on stderr.
	lines := strings.Fields(string(o))
	if len(lines) == 0 {
		return nil, errors.New("podman pull printed no image ID")
	}
	id := lines[len(lines)-1]
	cmd := append(append([]string{}, base...), "run", "--rm", "--network=host", id, "/bin/true")
	if o, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("podman run: %v: %s", err, strings.TrimSpace(string(o)))
	}
	return cmd, nil
}
