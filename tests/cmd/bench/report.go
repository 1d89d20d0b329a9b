package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"
)

// report is everything the benchmark measured.
type report struct {
	// run is hyperfine's figures of kite run, bubblewrap, crun and podman, kite first; runs their
	// count; costs the page faults and CPU time of a run of each, in the same order.
	run   []measured
	runs  int
	costs []startCost
	// memory is the median resident memory of kite's processes by name, with the host's network;
	// memoryNet with the pod's own, its network helper included.
	memory, memoryNet map[string]memory
	notes             []string
	fetch             *fetchResults
	// seccomp and list are kite's own figures: its filter's cost and kite list of 1000 pods;
	// bursts is 50 pods at once, kite's first, then its peers'.
	seccomp *pairResult
	bursts  []*burstResult
	list    *listResult
	// peers is the resident memory other runtimes keep beside a running app, by runtime.
	peers map[string]peerMemoryResult
	// phases is where a start's time goes; empty, what starting any program costs here.
	phases []phase
	empty  []measured
	// idmaps is newuidmap and newgidmap in parallel, seconds.
	idmaps float64
	// network is what a pod's own network costs.
	network *netResults
}

func writeReport(out string, rep report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# kite benchmarks\n\nWritten by `make bench` on %s. Rerun it to refresh this page.\n\n", time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&b, "Machine: %s, %d cores, kernel %s.\n\n", cpuModel(), runtime.NumCPU(), kernel())
	fmt.Fprintf(&b, "Versions: %s.\n", strings.Join(versions(), "; "))
	if rep.run != nil {
		writeRunSection(&b, rep)
		writePodSections(&b, rep)
		writeNetworkSection(&b, rep.network)
	}
	if rep.fetch != nil {
		writeFetchSection(&b, rep.fetch)
	}
	fmt.Print(b.String())
	return os.WriteFile(out, []byte(b.String()), 0o644)
}

// writeMemoryTable writes the processes' memory and returns their total.
func writeMemoryTable(b *strings.Builder, mem map[string]memory) memory {
	var total memory
	fmt.Fprintf(b, "| process | RSS | PSS |\n|---|---|---|\n")
	names := make([]string, 0, len(mem))
	pssKnown := true
	for n, m := range mem {
		names = append(names, n)
		total.rss += m.rss
		total.pss += m.pss
		pssKnown = pssKnown && m.pss >= 0
	}
	sort.Strings(names)
	pss := func(kb int) string {
		if kb < 0 {
			return "unknown (smaps_rollup not readable)"
		}
		return fmt.Sprintf("%d KiB", kb)
	}
	for _, n := range names {
		fmt.Fprintf(b, "| %s | %d KiB | %s |\n", n, mem[n].rss, pss(mem[n].pss))
	}
	totalPSS := "unknown"
	if pssKnown {
		totalPSS = fmt.Sprintf("%d KiB (%.2f MiB)", total.pss, float64(total.pss)/1024)
	}
	fmt.Fprintf(b, "| total | %d KiB (%.2f MiB) | %s |\n", total.rss, float64(total.rss)/1024, totalPSS)
	return total
}

// runner names the runtime a measured command runs.
func runner(command string) string {
	switch name, _, _ := strings.Cut(command, " "); {
	case strings.Contains(command, "-seccomp "):
		return "crun, kite's seccomp profile"
	case strings.HasSuffix(name, "/kite"):
		return "kite"
	default:
		return name
	}
}

func writeRunSection(b *strings.Builder, rep report) {
	results := rep.run
	fmt.Fprintf(b, "\n## Start to exit of `true` in a pod, image stored\n\n")
	fmt.Fprintf(b, "hyperfine, %d runs each after 3 warm-ups, no shell (`-N`), interleaved: %d hyperfine invocations, each running every command once, one after the other (the warm-ups in the first), so that load from other work on the machine falls on all commands alike.\n\n", rep.runs, rep.runs)
	fmt.Fprintf(b, "| runtime | command | median | min – max | kite ÷ this |\n|---|---|---|---|---|\n")
	kiteMedian := results[0].Median
	for _, r := range results {
		lo, hi := minMax(r.Times)
		fmt.Fprintf(b, "| %s | `%s` | %.1f ms | %.1f – %.1f ms | %.2f |\n", runner(r.Command), r.Command, r.Median*1000, lo*1000, hi*1000, kiteMedian/r.Median)
	}
	if len(rep.costs) > 0 {
		fmt.Fprintf(b, "\n### What a run costs the machine\n\nThe same commands, and two programs for reference, 10 runs each, one after the other: the page faults and CPU time (user and system) of the command and of every process it waited for (wait4's resource usage adds those up; podman's conmon is not among them, as podman does not wait for it). Medians.\n\n")
		fmt.Fprintf(b, "| what ran | page faults | CPU time | kite ÷ this (faults) |\n|---|---|---|---|\n")
		for _, c := range rep.costs {
			fmt.Fprintf(b, "| %s | %d | %.1f ms | %.2f |\n", c.label, c.faults, c.cpu*1000, float64(rep.costs[0].faults)/float64(c.faults))
		}
		if n := len(rep.costs); n >= 3 {
			goProgram, true_ := rep.costs[n-2], rep.costs[n-1]
			perFault := (goProgram.cpu - true_.cpu) / float64(goProgram.faults-true_.faults)
			fmt.Fprintf(b, "\nCPU time follows page faults: a Go program that does nothing costs %d more faults than `/bin/true` and %.1f ms more CPU time, about %.0f µs a fault on this machine (a virtual machine). kite's path runs three Go programs (kite, then the monitor and the init), each paying that start, "+
				"and newuidmap and newgidmap, set-user-ID programs that map the pod's ids from /etc/subuid and /etc/subgid.\n",
				goProgram.faults-true_.faults, (goProgram.cpu-true_.cpu)*1000, perFault*1e6)
		}
	}
	total := memory{}
	if rep.memory != nil {
		fmt.Fprintf(b, "\n## Resident memory of kite beside a running app (`sleep`)\n\nRss and Pss of /proc/PID/smaps_rollup 0.7 s after the start, median of 5 pods. Pss counts a page shared by n processes as 1/n of a page (the two kite-stage1 processes share their program's pages).\n\n")
		fmt.Fprintf(b, "With the host's network (`--net=host`):\n\n")
		total = writeMemoryTable(b, rep.memory)
	}
	if rep.memoryNet != nil {
		fmt.Fprintf(b, "\nWith the pod's own network (`--net=default`), its helper included:\n\n")
		writeMemoryTable(b, rep.memoryNet)
	}
	fmt.Fprintf(b, "\n## Against the targets\n\n| target | measured | met |\n|---|---|---|\n")
	for _, r := range results[1:] {
		ratio := kiteMedian / r.Median
		switch runner(r.Command) {
		case "bwrap":
			fmt.Fprintf(b, "| `kite run` median ≤ 3× bubblewrap's | %.2f× | %s |\n", ratio, yesNo(ratio <= 3))
		case "crun":
			fmt.Fprintf(b, "| `kite run` median ≤ crun's (without seccomp) | %.2f× | %s |\n", ratio, yesNo(ratio <= 1))
		case "podman":
			fmt.Fprintf(b, "| `kite run` ≥ 10× faster than podman | %.1f× | %s |\n", 1/ratio, yesNo(1/ratio >= 10))
		}
	}
	if rep.memory != nil {
		fmt.Fprintf(b, "| monitor + init resident memory ≤ 6 MiB (RSS, --net=host) | %.2f MiB | %s |\n", float64(total.rss)/1024, yesNo(total.rss <= 6*1024))
	}
	for _, n := range rep.notes {
		fmt.Fprintf(b, "\nNote: %s\n", n)
	}
}

// peerMemoryResult is a runtime's processes beside a running app and their total resident
// memory.
type peerMemoryResult struct {
	total     memory
	processes []string
}

// writePodSections reports the peers' memory, the phases of a start, the filter's cost, 50 pods
// at once and kite list of 1000 pods, with their targets.

func writePodSections(b *strings.Builder, rep report) {
	if len(rep.peers) > 0 {
		fmt.Fprintf(b, "\n### Beside the same app, other runtimes\n\nRss and Pss 0.7 s after the start of `sleep 1.5`, once, of the runtime's processes (by name) of the bench's user.\n\n| runtime | RSS | PSS | processes (RSS/PSS) |\n|---|---|---|---|\n")
		for _, name := range []string{"bwrap", "crun", "podman"} {
			if m, ok := rep.peers[name]; ok {
				fmt.Fprintf(b, "| %s | %d KiB (%.2f MiB) | %d KiB | %s |\n", name, m.total.rss, float64(m.total.rss)/1024, m.total.pss, strings.Join(m.processes, ", "))
			}
		}
	}
	if len(rep.phases) > 0 {
		fmt.Fprintf(b, "\n## Where a start's time goes\n\n`kite --debug run --net=host IMAGE -- true`, 20 runs: the median time of each step (`pkg/phase`) since kite parsed its flags, and since the step before.\n\n| process | step | at | since the step before |\n|---|---|---|---|\n")
		prev := 0.0
		for _, p := range rep.phases {
			fmt.Fprintf(b, "| %s | %s | %.1f ms | %.1f ms |\n", p.process, p.step, p.at, p.at-prev)
			prev = p.at
		}
	}
	if len(rep.empty) == 2 {
		fmt.Fprintf(b, "\nWhat starting a program costs on this machine (hyperfine, %d runs): a Go program that does nothing, %.1f ms; `/bin/true`, %.1f ms. kite's path runs three Go programs (kite, then the monitor and the init side by side).\n",
			len(rep.empty[0].Times), rep.empty[0].Median*1000, rep.empty[1].Median*1000)
	}
	if rep.idmaps > 0 {
		fmt.Fprintf(b, "\nnewuidmap and newgidmap (Debian's uidmap), run in parallel as kite runs them on a fresh user namespace, median of 10: %.1f ms. Every pod whose user has subordinate ids pays it.\n", rep.idmaps*1000)
	}
	if s := rep.seccomp; s != nil {
		cost := (s.with - s.without) * 1000
		fmt.Fprintf(b, "\n## The seccomp filter's cost\n\n%d pairs, interleaved (each pair runs one command, then the other), after 2 warm-up pairs; wall time of each process.\n\n", s.pairs)
		fmt.Fprintf(b, "| command | median |\n|---|---|\n| `%s` | %.1f ms |\n| `%s` | %.1f ms |\n\n", s.commandA, s.with*1000, s.commandB, s.without*1000)
		fmt.Fprintf(b, "| target | measured | met |\n|---|---|---|\n| the filter adds < 1 ms | %.1f ms | %s |\n", cost, yesNo(cost < 1))
	}
	if len(rep.bursts) > 0 && len(rep.run) > 0 {
		u, single := rep.bursts[0], rep.run[0].Median
		fmt.Fprintf(b, "\n## %d pods started at once\n\n`%s`, %d times at once.\n\n", u.n, u.command, u.n)
		fmt.Fprintf(b, "| target | measured | met |\n|---|---|---|\n| no failure | %d failed | %s |\n| all done within %d× one pod's median (%.0f ms) | %.0f ms, %.1f× | %s |\n",
			u.failures, yesNo(u.failures == 0), u.n, float64(u.n)*single*1000, u.wall*1000, u.wall/single, yesNo(u.wall <= float64(u.n)*single))
		if len(rep.bursts) > 1 {
			fmt.Fprintf(b, "\nBeside it, each %d times at once (crun's containers each with an ID of its own):\n\n| runtime | command | failed | all done in | kite ÷ this |\n|---|---|---|---|---|\n", u.n)
			for _, p := range rep.bursts[1:] {
				fmt.Fprintf(b, "| %s | `%s` | %d | %.0f ms | %.2f |\n", runner(p.command), p.command, p.failures, p.wall*1000, u.wall/p.wall)
			}
		}
	}
	if l := rep.list; l != nil {
		lo, hi := minMax(l.list.Times)
		fmt.Fprintf(b, "\n## kite list with %d exited pods\n\nOne pod run, its documents (pod.json, config.json, pid, exit-status, its app's config.json and rootfs.json) copied under %d new UUIDs; hyperfine, %d runs.\n\n", l.pods, l.pods-1, len(l.list.Times))
		fmt.Fprintf(b, "| command | median | min – max |\n|---|---|---|\n| `%s` | %.1f ms | %.1f – %.1f ms |\n\n", l.command, l.list.Median*1000, lo*1000, hi*1000)
		fmt.Fprintf(b, "| target | measured | met |\n|---|---|---|\n| ≤ 100 ms | %.1f ms | %s |\n", l.list.Median*1000, yesNo(l.list.Median <= 0.1))
	}
}

func cpuModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return runtime.GOARCH
}

func kernel() string {
	data, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(data))
}

func versions() []string {
	var v []string
	for _, c := range [][]string{{"hyperfine", "--version"}, {"bwrap", "--version"}, {"podman", "--version"}, {"runc", "--version"}, {"crun", "--version"}, {"skopeo", "--version"}} {
		o, err := exec.Command(c[0], c[1:]...).Output()
		if err == nil {
			v = append(v, strings.TrimSpace(strings.Split(string(o), "\n")[0]))
		}
	}
	return append(v, runtime.Version())
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

func writeNetworkSection(b *strings.Builder, n *netResults) {
	if n == nil {
		return
	}
	fmt.Fprintf(b, "\n## A pod's own network\n\nStart to exit of `true` in each network: hyperfine, %d runs each after 2 warm-ups, interleaved as above.\n\n", len(n.latency[0].Times))
	fmt.Fprintf(b, "| network | command | median | min – max | ÷ kite --net=host |\n|---|---|---|---|---|\n")
	host := n.latency[slices.Index(n.labels, "kite --net=host")].Median
	for i, r := range n.latency {
		lo, hi := minMax(r.Times)
		fmt.Fprintf(b, "| %s | `%s` | %.1f ms | %.1f – %.1f ms | %.2f |\n", n.labels[i], r.Command, r.Median*1000, lo*1000, hi*1000, r.Median/host)
	}
	if i := slices.Index(n.labels, "podman, its default network"); i >= 0 {
		podman := n.latency[i].Median
		fmt.Fprintf(b, "\nAgainst podman in its default rootless network (slirp4netns, for podman 4.3): kite --net=default (pasta) %.2f×, kite --net=slirp4netns %.2f× its time.\n",
			n.latency[0].Median/podman, n.latency[1].Median/podman)
	}
	fmt.Fprintf(b, "\nHTTP requests per second through a port published on 127.0.0.1: `busybox httpd` in the pod serves /etc/hostname; 4 clients of the bench, each request on a new connection (httpd closes each), for 5 s after the first answer.\n\n")
	fmt.Fprintf(b, "| server | command | requests/s | failed |\n|---|---|---|---|\n")
	rate := func(r rpsResult) float64 { return float64(r.requests) / r.seconds }
	for _, r := range n.rps {
		fmt.Fprintf(b, "| %s | `%s` | %.0f | %d |\n", r.label, r.command, rate(r), r.failures)
	}
	if last := n.rps[len(n.rps)-1]; strings.HasPrefix(last.label, "podman") && len(n.rps) > 1 {
		fmt.Fprintf(b, "\nAgainst podman's published port: kite with pasta %.2f×, with slirp4netns %.2f× its requests per second.\n", rate(n.rps[0])/rate(last), rate(n.rps[1])/rate(last))
	}
}
