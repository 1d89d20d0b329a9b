// Package podcgroup owns the cgroup that limits a pod's memory, CPU and process count. kite has
// no daemon and no root, so it can only use a cgroup v2 subtree delegated to the user (systemd
// gives one to a unit with Delegate=yes, or to `systemd-run --user --scope -p Delegate=yes`), and
// only when kite is alone in its cgroup: cgroup v2 lets a cgroup either hold processes or
// distribute controllers to its children, not both. kite then moves itself into a child cgroup,
// kite-monitor, enables the controllers in its own, and starts the pod in another child,
// kite-pod-<uuid>, which holds the limits.
package podcgroup

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Group is the caller's cgroup, where kite can place a pod with limits.
type Group struct {
	// Dir is the caller's cgroup directory; Controllers those the limits need.
	Dir         string
	Controllers []string
}

// RunFlags and OCIFields name each controller for the user, in the errors of Find: the flag of
// kite run that needs it, or the field of an OCI bundle's config.json.
var (
	RunFlags  = map[string]string{"memory": "--memory", "cpu": "--cpu", "pids": "--pids-limit"}
	OCIFields = map[string]string{"memory": "linux.resources.memory.limit", "cpu": "linux.resources.cpu.quota", "pids": "linux.resources.pids.limit"}
)

// Needed lists the controllers res needs, in a fixed order; none for nil.
func Needed(res *specs.LinuxResources) []string {
	var out []string
	if res == nil {
		return nil
	}
	if res.Memory != nil && res.Memory.Limit != nil {
		out = append(out, "memory")
	}
	if res.CPU != nil && res.CPU.Quota != nil {
		out = append(out, "cpu")
	}
	if res.Pids != nil && res.Pids.Limit != nil {
		out = append(out, "pids")
	}
	return out
}

// Find checks that the limits res asks for can be applied here, and says what the host lacks
// when they cannot, naming each limit as names does. It returns nil for no limits.
func Find(res *specs.LinuxResources, names map[string]string) (*Group, error) {
	need := Needed(res)
	if len(need) == 0 {
		return nil, nil
	}
	var asked []string
	for _, c := range need {
		asked = append(asked, names[c])
	}
	fail := func(format string, a ...any) error {
		return fmt.Errorf("%s cannot be applied on this host: %s", strings.Join(asked, ", "), fmt.Sprintf(format, a...))
	}
	mount, err := cgroup2Mount()
	if err != nil {
		return nil, err
	}
	if mount == "" {
		return nil, fail("it has no cgroup v2 hierarchy, and kite limits resources only with cgroup v2")
	}
	path, err := ownCgroup()
	if err != nil {
		return nil, err
	}
	return find(filepath.Join(mount, path), need, os.Getpid(), fail)
}

// find checks that the cgroup dir, where process self is, can give a pod the controllers need.
func find(dir string, need []string, self int, fail func(string, ...any) error) (*Group, error) {
	have, err := readWords(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return nil, err
	}
	for _, c := range need {
		if !slices.Contains(have, c) {
			return nil, fail("the %s controller is not delegated to kite's cgroup %s (it has: %s); run kite in a cgroup delegated to you, "+
				"e.g. from a systemd unit with Delegate=yes or under systemd-run --user --scope -p Delegate=yes", c, dir, wordsOrNone(have))
		}
	}
	for _, f := range []string{".", "cgroup.procs", "cgroup.subtree_control"} {
		if err := writable(filepath.Join(dir, f)); err != nil {
			return nil, fail("kite's cgroup %s is not delegated to you (%v); run kite under systemd with Delegate=yes", dir, err)
		}
	}
	procs, err := readWords(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	if others := slices.DeleteFunc(procs, func(p string) bool { return p == strconv.Itoa(self) }); len(others) > 0 {
		return nil, fail("kite shares its cgroup %s with %d other processes, so cgroup v2 cannot give the pod limits of its own; "+
			"start kite in a cgroup of its own, e.g. systemd-run --user --scope -p Delegate=yes kite run ...", dir, len(others))
	}
	return &Group{Dir: dir, Controllers: need}, nil
}

// Create moves the calling process into Dir/kite-monitor, enables the controllers in Dir, and
// creates the pod's cgroup with the limits of res. It returns the pod's cgroup directory.
func (g *Group) Create(uuid string, res *specs.LinuxResources) (string, error) {
	monitor := filepath.Join(g.Dir, "kite-monitor")
	if err := os.Mkdir(monitor, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("create cgroup %s: %w", monitor, err)
	}
	// Writing 0 moves the writer (all its threads).
	if err := write(monitor, "cgroup.procs", "0"); err != nil {
		return "", err
	}
	var enable []string
	for _, c := range g.Controllers {
		enable = append(enable, "+"+c)
	}
	if err := write(g.Dir, "cgroup.subtree_control", strings.Join(enable, " ")); err != nil {
		return "", err
	}
	pod := filepath.Join(g.Dir, "kite-pod-"+uuid)
	if err := os.Mkdir(pod, 0o755); err != nil {
		return "", fmt.Errorf("create cgroup %s: %w", pod, err)
	}
	if err := setLimits(pod, res); err != nil {
		os.Remove(pod)
		return "", err
	}
	return pod, nil
}

func setLimits(dir string, res *specs.LinuxResources) error {
	if res.Memory != nil && res.Memory.Limit != nil {
		if err := write(dir, "memory.max", strconv.FormatInt(*res.Memory.Limit, 10)); err != nil {
			return err
		}
	}
	if res.CPU != nil && res.CPU.Quota != nil {
		period := uint64(100000)
		if res.CPU.Period != nil {
			period = *res.CPU.Period
		}
		if err := write(dir, "cpu.max", fmt.Sprintf("%d %d", *res.CPU.Quota, period)); err != nil {
			return err
		}
	}
	if res.Pids != nil && res.Pids.Limit != nil {
		if err := write(dir, "pids.max", strconv.FormatInt(*res.Pids.Limit, 10)); err != nil {
			return err
		}
	}
	return nil
}

// Add moves process pid into the cgroup dir.
func Add(dir string, pid int) error {
	return write(dir, "cgroup.procs", strconv.Itoa(pid))
}

// Remove removes the pod's cgroup dir once its processes have ended.
func Remove(dir string) error {
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove the pod's cgroup: %w", err)
	}
	return nil
}

func write(dir, file, value string) error {
	p := filepath.Join(dir, file)
	// cgroupfs has every file already; the test's fake tree does not, and a non-root test must
	// read back what it created.
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("write %q to %s: %w", value, p, err)
	}
	return nil
}

func writable(p string) error {
	if err := unix.Access(p, unix.W_OK); err != nil {
		return fmt.Errorf("%s is not writable: %w", p, err)
	}
	return nil
}

func readWords(p string) ([]string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return strings.Fields(string(b)), nil
}

func wordsOrNone(w []string) string {
	if len(w) == 0 {
		return "no controllers"
	}
	return strings.Join(w, " ")
}

// cgroup2Mount finds where the cgroup v2 hierarchy is mounted ("" for none): /sys/fs/cgroup on a
// unified host, /sys/fs/cgroup/unified on a hybrid one.
func cgroup2Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
		fields := strings.Fields(sc.Text())
		i := slices.Index(fields, "-")
		if i > 4 && i+1 < len(fields) && fields[i+1] == "cgroup2" {
			return fields[4], nil
		}
	}
	return "", sc.Err()
}

// ownCgroup is the calling process's cgroup v2 path, from /proc/self/cgroup's "0::" line.
func ownCgroup() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p, nil
		}
	}
	return "", errors.New("find kite's cgroup: /proc/self/cgroup has no cgroup v2 entry")
}
