package main

import (
	"fmt"
	"os/exec"
	"sort"
	"syscall"
)

// startCost is what one run of a command costs the machine: the page faults and the CPU time of
// the command and of every process it waited for (wait4's rusage adds those up), medians.
type startCost struct {
	label  string // what ran: a runtime's name, or a program's
	faults int
	cpu    float64 // seconds, user and system
}

// measureCost runs cmd n times, one after the other.
func measureCost(label string, cmd []string, n int) (startCost, error) {
	faults := make([]int, 0, n)
	cpu := make([]float64, 0, n)
	for range n {
		c := exec.Command(cmd[0], cmd[1:]...)
		if out, err := c.CombinedOutput(); err != nil {
			return startCost{}, fmt.Errorf("%s: %v\n%s", shellJoin(cmd), err, out)
		}
		u := c.ProcessState.SysUsage().(*syscall.Rusage)
		faults = append(faults, int(u.Minflt+u.Majflt))
		cpu = append(cpu, seconds(u.Utime)+seconds(u.Stime))
	}
	sort.Ints(faults)
	return startCost{label: label, faults: faults[n/2], cpu: median(cpu)}, nil
}

func seconds(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
