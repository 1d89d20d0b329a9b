package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// crunPeer is crun's rootless bundles on the bench's rootfs: one without a seccomp filter, one
// with kite's default profile (the one a kite pod's config.json carries), and one running sleep
// for the memory figure.
type crunPeer struct {
	plain, seccomp, sleep string // bundle directories
	state                 string // crun --root
}

// newCrunPeer makes the bundles (crun spec --rootless, on a read-only root) and runs the plain
// one once. crun refuses some hosts (a cgroup v1/v2 hybrid whose v2 hierarchy has controllers):
// its error says why.
func newCrunPeer(scratch, rootfs string, seccomp json.RawMessage) (*crunPeer, error) {
	if _, err := exec.LookPath("crun"); err != nil {
		return nil, errors.New("not installed (apt-get install crun)")
	}
	p := &crunPeer{
		plain: filepath.Join(scratch, "crun-bundle"), seccomp: filepath.Join(scratch, "crun-bundle-seccomp"),
		sleep: filepath.Join(scratch, "crun-bundle-sleep"), state: filepath.Join(scratch, "crun-state"),
	}
	for _, b := range []struct {
		dir     string
		args    []string
		seccomp json.RawMessage
	}{{p.plain, []string{"/bin/true"}, nil}, {p.seccomp, []string{"/bin/true"}, seccomp}, {p.sleep, []string{"/bin/sleep", "1.5"}, nil}} {
		if err := crunBundle(b.dir, rootfs, b.args, b.seccomp); err != nil {
			return nil, err
		}
	}
	cmd := p.run(p.plain, "kite-bench")
	if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s: %v: %s", shellJoin(cmd), err, strings.TrimSpace(string(out)))
	}
	return p, nil
}

// run is the command that runs bundle as container id, in the foreground.
func (p *crunPeer) run(bundle, id string) []string {
	return []string{"crun", "--root", p.state, "run", "--bundle", bundle, id}
}

// crunBundle writes a rootless bundle in dir running args on rootfs, with seccomp (runtime-spec
// linux.seccomp) when it is not nil.
func crunBundle(dir, rootfs string, args []string, seccomp json.RawMessage) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	spec := exec.Command("crun", "spec", "--rootless")
	spec.Dir = dir
	if out, err := spec.CombinedOutput(); err != nil {
		return fmt.Errorf("crun spec --rootless: %v: %s", err, strings.TrimSpace(string(out)))
	}
	var c map[string]any
	if err := readJSON(filepath.Join(dir, "config.json"), &c); err != nil {
		return err
	}
	process := c["process"].(map[string]any)
	process["args"], process["terminal"] = args, false
	c["root"] = map[string]any{"path": rootfs, "readonly": true}
	if seccomp != nil {
		c["linux"].(map[string]any)["seccomp"] = seccomp
	}
	doc, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), doc, 0o644)
}

// kiteSeccomp returns linux.seccomp of an app's config.json in a pod of data: kite's default
// profile, for crun to run with.
func kiteSeccomp(data string) (json.RawMessage, error) {
	configs, _ := filepath.Glob(filepath.Join(data, "pods", "*", "*", "apps", "*", "config.json"))
	if len(configs) == 0 {
		return nil, fmt.Errorf("no pod's config.json in %s", data)
	}
	var c struct {
		Linux struct {
			Seccomp json.RawMessage `json:"seccomp"`
		} `json:"linux"`
	}
	if err := readJSON(configs[0], &c); err != nil {
		return nil, err
	}
	if c.Linux.Seccomp == nil {
		return nil, fmt.Errorf("%s has no linux.seccomp", configs[0])
	}
	return c.Linux.Seccomp, nil
}

// cgroupControllersHidden tells whether this process runs where the cgroup v2 hierarchy's
// cgroup.controllers has a file mounted over it, as tests/scripts/bench.sh does for crun.
func cgroupControllersHidden() bool {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasSuffix(f[4], "/cgroup.controllers") {
			return true
		}
	}
	return false
}
