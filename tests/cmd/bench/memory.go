package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// memory is a process's resident memory in KiB: all its pages (RSS), and its proportional share
// (PSS), which counts a page shared with n processes as 1/n.
type memory struct{ rss, pss int }

// medianMemory measures n pods of network mode netMode and keeps, for each process, its median
// resident memory.
func medianMemory(kite, data, image, netMode string, n int) (map[string]memory, error) {
	rss, pss := map[string][]int{}, map[string][]int{}
	for range n {
		mem, err := kiteMemory(kite, data, image, netMode)
		if err != nil {
			return nil, err
		}
		for name, m := range mem {
			rss[name] = append(rss[name], m.rss)
			pss[name] = append(pss[name], m.pss)
		}
	}
	res := map[string]memory{}
	for name := range rss {
		sort.Ints(rss[name])
		sort.Ints(pss[name])
		res[name] = memory{rss[name][n/2], pss[name][n/2]}
	}
	return res, nil
}

// kiteMemory starts a pod running sleep and reads the resident memory of the monitor and its
// children: the init, and the network helper of a pod of its own network.
func kiteMemory(kite, data, image, netMode string) (map[string]memory, error) {
	cmd := exec.Command(kite, "--dir", data, "run", "--net="+netMode, image, "--", "sleep", "1.5")
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer cmd.Wait()
	time.Sleep(700 * time.Millisecond)
	monitor := cmd.Process.Pid
	kids, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", monitor, monitor))
	if err != nil {
		return nil, err
	}
	procs := map[string]int{"monitor (P)": monitor}
	for _, f := range strings.Fields(string(kids)) {
		pid, _ := strconv.Atoi(f)
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil {
			return nil, err
		}
		name := strings.TrimSpace(string(comm))
		switch {
		case name == "kite-stage1":
			name = "init (C)"
		case strings.HasPrefix(name, "passt"):
			name = "pasta" // which runs as passt.avx2
		}
		procs[name] = pid
	}
	if _, ok := procs["init (C)"]; !ok {
		return nil, fmt.Errorf("the monitor has no child kite-stage1 (the pod's init): %q", kids)
	}
	res := map[string]memory{}
	for name, pid := range procs {
		m, err := processMemory(pid)
		if err != nil {
			return nil, err
		}
		res[name] = m
	}
	return res, nil
}

// processMemory reads Rss and Pss from /proc/PID/smaps_rollup, or only VmRSS from
// /proc/PID/status (Pss -1) for a process that does not let others read the former (pasta,
// which sandboxes itself).
func processMemory(pid int) (memory, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if errors.Is(err, os.ErrPermission) {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return memory{}, err
		}
		for _, line := range strings.Split(string(status), "\n") {
			if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
				kb, err := strconv.Atoi(f[1])
				return memory{rss: kb, pss: -1}, err
			}
		}
		return memory{}, fmt.Errorf("/proc/%d/status has no VmRSS", pid)
	}
	if err != nil {
		return memory{}, err
	}
	var m memory
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[2] != "kB" {
			continue
		}
		kb, err := strconv.Atoi(f[1])
		if err != nil {
			return memory{}, fmt.Errorf("/proc/%d/smaps_rollup: %q", pid, line)
		}
		switch f[0] {
		case "Rss:":
			m.rss = kb
		case "Pss:":
			m.pss = kb
		}
	}
	if m.rss == 0 {
		return memory{}, fmt.Errorf("/proc/%d/smaps_rollup has no Rss", pid)
	}
	return m, nil
}

// peerMemory starts cmd (which runs sleep 1.5 in a container) and, 0.7 s later, sums the
// resident memory of the processes the runtime keeps beside the app: those of this user whose
// names are in names. It returns the sums and the processes counted.
func peerMemory(cmd []string, names []string) (memory, []string, error) {
	c := exec.Command(cmd[0], cmd[1:]...)
	if err := c.Start(); err != nil {
		return memory{}, nil, err
	}
	defer c.Wait()
	time.Sleep(700 * time.Millisecond)
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return memory{}, nil, err
	}
	var total memory
	var counted []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil || !slices.Contains(names, strings.TrimSpace(string(comm))) {
			continue
		}
		st, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
		if err != nil || st.Sys().(*syscall.Stat_t).Uid != uint32(os.Getuid()) {
			continue
		}
		m, err := processMemory(pid)
		if err != nil {
			continue
		}
		total.rss += m.rss
		total.pss += m.pss
		counted = append(counted, fmt.Sprintf("%s %d/%d KiB", strings.TrimSpace(string(comm)), m.rss, m.pss))
	}
	sort.Strings(counted)
	if total.rss == 0 {
		return memory{}, nil, fmt.Errorf("%s: no process named %s", shellJoin(cmd), strings.Join(names, ", "))
	}
	return total, counted, nil
}
