// bench measures `kite run` side by side with bubblewrap and podman in one hyperfine run, and the
// resident memory of kite's processes beside a running app, and writes BENCHMARKS.md. It runs as
// an unprivileged user (tests/scripts/bench.sh arranges that when started as root).
package main

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
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

func hyperfine(scratch string, commands [][]string, runs int) ([]measured, error) {
	jsonOut := filepath.Join(scratch, "hyperfine.json")
	args := []string{"-N", "--warmup", "3", "--runs", strconv.Itoa(runs), "--export-json", jsonOut}
	for _, c := range commands {
		args = append(args, shellJoin(c))
	}
	cmd := exec.Command("hyperfine", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("hyperfine: %w", err)
	}
	data, err := os.ReadFile(jsonOut)
	if err != nil {
		return nil, err
	}
	var doc struct{ Results []measured }
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("read hyperfine's results: %w", err)
	}
	return doc.Results, nil
}

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

func writeReport(out string, results []measured, rss map[string]int, notes []string, runs int) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# kite benchmarks\n\nWritten by `make bench` on %s. Rerun it to refresh this page.\n\n", time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&b, "Machine: %s, %d cores, kernel %s.\n\n", cpuModel(), runtime.NumCPU(), kernel())
	fmt.Fprintf(&b, "Versions: %s.\n\n", strings.Join(versions(), "; "))
	fmt.Fprintf(&b, "## Start to exit of `true` in a pod, image stored\n\n")
	fmt.Fprintf(&b, "hyperfine, %d runs each after 3 warm-ups, no shell (`-N`), all commands in one hyperfine invocation (one command after the other).\n\n", runs)
	fmt.Fprintf(&b, "| command | median | min – max | kite ÷ this |\n|---|---|---|---|\n")
	kiteMedian := results[0].Median
	for _, r := range results {
		lo, hi := minMax(r.Times)
		fmt.Fprintf(&b, "| `%s` | %.1f ms | %.1f – %.1f ms | %.2f |\n", r.Command, r.Median*1000, lo*1000, hi*1000, kiteMedian/r.Median)
	}
	if rss != nil {
		fmt.Fprintf(&b, "\n## Resident memory of kite beside a running app (`sleep`)\n\nVmRSS 0.7 s after the start, median of 5 pods.\n\n| process | VmRSS |\n|---|---|\n")
		names := make([]string, 0, len(rss))
		total := 0
		for n, kb := range rss {
			names = append(names, n)
			total += kb
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(&b, "| %s | %d KiB |\n", n, rss[n])
		}
		fmt.Fprintf(&b, "| total | %d KiB (%.2f MiB) |\n", total, float64(total)/1024)
	}
	fmt.Fprintf(&b, "\n## Against the targets\n\n| target | measured | met |\n|---|---|---|\n")
	for _, r := range results[1:] {
		switch {
		case strings.HasPrefix(r.Command, "bwrap "):
			ratio := kiteMedian / r.Median
			fmt.Fprintf(&b, "| `kite run` median ≤ 3× bubblewrap's | %.2f× | %s |\n", ratio, yesNo(ratio <= 3))
		case strings.HasPrefix(r.Command, "podman "):
			ratio := r.Median / kiteMedian
			fmt.Fprintf(&b, "| `kite run` ≥ 10× faster than podman | %.1f× | %s |\n", ratio, yesNo(ratio >= 10))
		}
	}
	if rss != nil {
		total := 0
		for _, kb := range rss {
			total += kb
		}
		fmt.Fprintf(&b, "| monitor + init resident memory < 6 MiB | %.2f MiB | %s |\n", float64(total)/1024, yesNo(total < 6*1024))
	}
	for _, n := range notes {
		fmt.Fprintf(&b, "\nNote: %s\n", n)
	}
	fmt.Print(b.String())
	return os.WriteFile(out, []byte(b.String()), 0o644)
}

func minMax(v []float64) (float64, float64) {
	if len(v) == 0 {
		return 0, 0
	}
	lo, hi := v[0], v[0]
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
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
	for _, c := range [][]string{{"hyperfine", "--version"}, {"bwrap", "--version"}, {"podman", "--version"}, {"runc", "--version"}} {
		o, err := exec.Command(c[0], c[1:]...).Output()
		if err == nil {
			v = append(v, strings.TrimSpace(strings.Split(string(o), "\n")[0]))
		}
	}
	return append(v, runtime.Version())
}

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " '\"\\$") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

// extractImage unpacks the layers of the tagged image in an OCI layout into dir, for bubblewrap.
func extractImage(layout, tag, dir string) error {
	var index ocispec.Index
	if err := readJSON(filepath.Join(layout, "index.json"), &index); err != nil {
		return err
	}
	for _, m := range index.Manifests {
		if m.Annotations[ocispec.AnnotationRefName] != tag {
			continue
		}
		var man ocispec.Manifest
		if err := readJSON(blobPath(layout, m.Digest.String()), &man); err != nil {
			return err
		}
		for _, l := range man.Layers {
			if err := untar(blobPath(layout, l.Digest.String()), dir); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("no image tagged %s in %s", tag, layout)
}

func blobPath(layout, dg string) string {
	alg, hex, _ := strings.Cut(dg, ":")
	return filepath.Join(layout, "blobs", alg, hex)
}

func readJSON(p string, v any) error {
	data, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

// untar unpacks a gzip layer of the locally built test image; it trusts its input.
func untar(blob, dir string) error {
	f, err := os.Open(blob)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		p := filepath.Join(dir, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeSymlink:
			os.MkdirAll(filepath.Dir(p), 0o755)
			err = os.Symlink(h.Linkname, p)
		case tar.TypeReg:
			os.MkdirAll(filepath.Dir(p), 0o755)
			var w *os.File
			if w, err = os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o755|0o600); err == nil {
				_, err = io.Copy(w, tr)
				w.Close()
			}
		}
		if err != nil {
			return err
		}
	}
}

// removeAll removes a tree that may hold directories a pod made unwritable.
func removeAll(dir string) {
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	os.RemoveAll(dir)
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}
