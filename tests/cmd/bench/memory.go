package main

import (
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

// medianRSS measures n pods and keeps, for each process, its median resident memory.
func medianRSS(kite, data, image string, n int) (map[string]int, error) {
	samples := map[string][]int{}
	for range n {
		rss, err := kiteRSS(kite, data, image)
		if err != nil {
			return nil, err
		}
		for name, kb := range rss {
			samples[name] = append(samples[name], kb)
		}
	}
	res := map[string]int{}
	for name, v := range samples {
		sort.Ints(v)
		res[name] = v[len(v)/2]
	}
	return res, nil
}

// kiteRSS starts a pod running sleep and reads the resident memory of the monitor and the init.
func kiteRSS(kite, data, image string) (map[string]int, error) {
	cmd := exec.Command(kite, "--dir", data, "run", image, "--", "sleep", "1.5")
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
	fields := strings.Fields(string(kids))
	if len(fields) != 1 {
		return nil, fmt.Errorf("the monitor has %d children, expected the pod's init", len(fields))
	}
	init, _ := strconv.Atoi(fields[0])
	res := map[string]int{}
	for name, pid := range map[string]int{"monitor (P)": monitor, "init (C)": init} {
		kb, err := statusField(pid, "VmRSS")
		if err != nil {
			return nil, err
		}
		res[name] = kb
	}
	return res, nil
}

func statusField(pid int, field string) (int, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// peerRSS starts cmd (which runs sleep 1.5 in a container) and, 0.7 s later, sums the resident
// memory of the processes the runtime keeps beside the app: those of this user whose names are
// in names. It returns the sum in KiB and the processes counted.
func peerRSS(cmd []string, names []string) (int, []string, error) {
	c := exec.Command(cmd[0], cmd[1:]...)
	if err := c.Start(); err != nil {
		return 0, nil, err
	}
	defer c.Wait()
	time.Sleep(700 * time.Millisecond)
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, nil, err
	}
	total := 0
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
		kb, err := statusField(pid, "VmRSS")
		if err != nil {
			continue
		}
		total += kb
		counted = append(counted, fmt.Sprintf("%s %d KiB", strings.TrimSpace(string(comm)), kb))
	}
	sort.Strings(counted)
	if total == 0 {
		return 0, nil, fmt.Errorf("%s: no process named %s", shellJoin(cmd), strings.Join(names, ", "))
	}
	return total, counted, nil
}
