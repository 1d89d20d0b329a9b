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

// crunCommand makes a rootless OCI bundle on rootfs (crun spec --rootless, running /bin/true on
// a read-only root) and returns the command that runs it, once crun has run it. crun refuses some
// hosts (a cgroup v1/v2 hybrid whose v2 hierarchy has controllers): its error says why.
func crunCommand(scratch, rootfs string) ([]string, error) {
	if _, err := exec.LookPath("crun"); err != nil {
		return nil, errors.New("not installed (apt-get install crun)")
	}
	bundle := filepath.Join(scratch, "crun-bundle")
	if err := os.MkdirAll(bundle, 0o755); err != nil {
		return nil, err
	}
	spec := exec.Command("crun", "spec", "--rootless")
	spec.Dir = bundle
	if out, err := spec.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("crun spec --rootless: %v: %s", err, strings.TrimSpace(string(out)))
	}
	var c map[string]any
	if err := readJSON(filepath.Join(bundle, "config.json"), &c); err != nil {
		return nil, err
	}
	process := c["process"].(map[string]any)
	process["args"], process["terminal"] = []string{"/bin/true"}, false
	c["root"] = map[string]any{"path": rootfs, "readonly": true}
	doc, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), doc, 0o644); err != nil {
		return nil, err
	}
	cmd := []string{"crun", "--root", filepath.Join(scratch, "crun-state"), "run", "--bundle", bundle, "kite-bench"}
	if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s: %v: %s", shellJoin(cmd), err, strings.TrimSpace(string(out)))
	}
	return cmd, nil
}
