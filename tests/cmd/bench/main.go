// bench measures `kite run` side by side with bubblewrap and podman in one hyperfine run, and the
// resident memory of kite's processes beside a running app, and writes BENCHMARKS.md. It runs as
// an unprivileged user (tests/scripts/bench.sh arranges that when started as root).
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
	bin := flag.String("bin", "bin", "directory of the built kite binaries")
	images := flag.String("images", "tests/out", "directory of the test images (layout/, images.tar)")
	out := flag.String("out", "BENCHMARKS.md", "report to write")
	runs := flag.Int("runs", 30, "measured runs per command")
	flag.Parse()
	if err := run(*bin, *images, *out, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type measured struct {
	Command string    `json:"command"`
	Median  float64   `json:"median"`
	Times   []float64 `json:"times"`
}

func run(bin, images, out string, runs int) error {
	bin, _ = filepath.Abs(bin)
	images, _ = filepath.Abs(images)
	scratch, err := os.MkdirTemp("", "kite-bench")
	if err != nil {
		return err
	}
	defer removeAll(scratch)
	kite := filepath.Join(bin, "kite")
	data := filepath.Join(scratch, "kite")
	image := "oci:" + filepath.Join(images, "layout") + ":busybox"
	kiteRun := []string{kite, "--dir", data, "run", image, "--", "true"}
	// The first run fetches the image into the store; every measured run finds it there.
	if o, err := exec.Command(kiteRun[0], kiteRun[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("first kite run: %v\n%s", err, o)
	}
	rootfs := filepath.Join(scratch, "rootfs")
	if err := extractImage(filepath.Join(images, "layout"), "busybox", rootfs); err != nil {
		return err
	}
	commands := [][]string{
		kiteRun,
		{"bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", rootfs, "/", "/bin/true"},
	}
	notes := []string{}
	if podman, err := podmanCommand(scratch, images); err != nil {
		notes = append(notes, "podman not measured: "+err.Error())
	} else {
		commands = append(commands, podman)
	}
	results, err := hyperfine(scratch, commands, runs)
	if len(commands) > 2 {
		// Rootless podman leaves a pause process behind to keep its user namespace; stop it.
		exec.Command("podman", "system", "migrate").Run()
	}
	if err != nil {
		return err
	}
	rss, err := medianRSS(kite, data, image, 5)
	if err != nil {
		notes = append(notes, "resident memory not measured: "+err.Error())
	}
	return writeReport(out, results, rss, notes, runs)
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
