package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/kite-runtime/kite/tests/imagebuild"
	"github.com/kite-runtime/kite/tests/registry"
)

// bigRepo is where the benchmark pushes its image, and the name the peers store it under.
const bigRepo = "bench/big:1"

// fetchResults are the figures of the fetch benchmark.
type fetchResults struct {
	image imageSizes
	// debian is the Debian tarball the image was made of, with its files; "" for the image of
	// generated files (bigImage).
	debian      string
	debianFiles int
	// names are the tools measured, in the order of the commands.
	names      []string
	cold, warm []measured
	coldBench  bench
	warmBench  bench
	// coldLoad and warmLoad are the load averages when each hyperfine run started.
	coldLoad, warmLoad string
	notes              []string
}

// fetcher is one tool that copies the image from the registry into a store of its own.
type fetcher struct {
	name string
	// command fetches the image into the store in dir.
	command func(dir string) []string
	// state lists what a run of command in stores/NAME leaves behind: the store, and for kite the
	// store's run root in XDG_RUNTIME_DIR.
	state func(stores string) []string
	// needs is the program that must be installed, and how to get it.
	needs, install string
}

// acceptAnything is a containers-policy.json that accepts every image: no tool verifies signatures.
const acceptAnything = `{"default":[{"type":"insecureAcceptAnything"}]}`

func fetchers(kite, ref, policy string) []fetcher {
	store := func(name string) func(string) []string {
		return func(stores string) []string { return []string{filepath.Join(stores, name)} }
	}
	return []fetcher{
		{name: "kite", command: func(dir string) []string {
			return []string{kite, "--dir", dir, "--insecure-options=image,http", "fetch", "-q", ref}
		}, state: func(stores string) []string {
			return []string{filepath.Join(stores, "kite"), filepath.Join(runtimeDir(stores), "kite")}
		}},
		{name: "skopeo", needs: "skopeo", install: "apt-get install skopeo", state: store("skopeo"), command: func(dir string) []string {
			store := fmt.Sprintf("containers-storage:[overlay@%s+%s]%s", filepath.Join(dir, "root"), filepath.Join(dir, "run"), bigRepo)
			return []string{"skopeo", "--insecure-policy", "copy", "-q", "--src-tls-verify=false", ref, store}
		}},
		// podman refuses a run root path longer than 50 characters: "run" keeps it short.
		{name: "podman", needs: "podman", install: "apt-get install podman", state: store("podman"), command: func(dir string) []string {
			return []string{"podman", "--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"),
				"--storage-driver", "overlay", "--cgroup-manager", "cgroupfs", "pull", "-q", "--tls-verify=false", "--signature-policy", policy, ref}
		}},
	}
}

// fetchBench serves a ~60 MB image from a registry in this process and measures fetching it into
// an empty store (cold) and into a store that has it (warm), with kite, skopeo and podman. The
// image is Debian's minbase made of debian (a root file system tarball), or when debian is "",
// one of generated files.
func fetchBench(kite, scratch, debian string, coldRuns, warmRuns int) (*fetchResults, error) {
	dir := filepath.Join(scratch, "fetch")
	layout := filepath.Join(dir, "layout")
	fmt.Fprintln(os.Stderr, "bench: writing the fetch benchmark's image")
	res := &fetchResults{debian: debian}
	img := bigImage()
	if debian != "" {
		var err error
		if img, res.debianFiles, err = debianImage(debian); err != nil {
			return nil, err
		}
	}
	if err := imagebuild.WriteLayout(layout, img); err != nil {
		return nil, err
	}
	var err error
	if res.image, err = layoutSizes(layout, bigTag); err != nil {
		return nil, err
	}
	reg, err := registry.Start(registry.Options{})
	if err != nil {
		return nil, err
	}
	defer reg.Close()
	if _, err := reg.PushLayout(layout, bigTag, bigRepo); err != nil {
		return nil, err
	}
	ref := "docker://" + reg.Addr() + "/" + bigRepo

	trash := filepath.Join(dir, "trash")
	cold, warm := filepath.Join(dir, "cold"), filepath.Join(dir, "warm")
	for _, d := range []string{trash, runtimeDir(cold), runtimeDir(warm)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	defer stopPodmanPause(runtimeDir(cold))
	defer stopPodmanPause(runtimeDir(warm))
	// Other work on the machine (tests of other users, say) comes and goes over the minutes the
	// runs take: one run of every command per hyperfine invocation spreads it over all of them.
	res.coldBench = bench{warmup: 2, runs: coldRuns, rounds: coldRuns, env: fetchEnv(cold)}
	res.warmBench = bench{warmup: 3, runs: warmRuns, rounds: warmRuns, env: fetchEnv(warm)}
	policy := filepath.Join(dir, "policy.json")
	if err := os.WriteFile(policy, []byte(acceptAnything), 0o644); err != nil {
		return nil, err
	}
	for _, f := range fetchers(kite, ref, policy) {
		if f.needs != "" {
			if _, err := exec.LookPath(f.needs); err != nil {
				res.notes = append(res.notes, fmt.Sprintf("%s not measured: not installed (%s).", f.name, f.install))
				continue
			}
		}
		// The fetch that fills the warm store also shows whether the tool works here at all.
		if err := firstFetch(f, filepath.Join(warm, f.name), res.warmBench.env); err != nil {
			if f.name == "kite" {
				return nil, err
			}
			res.notes = append(res.notes, fmt.Sprintf("%s not measured: %v", f.name, err))
			continue
		}
		res.names = append(res.names, f.name)
		res.coldBench.commands = append(res.coldBench.commands, f.command(filepath.Join(cold, f.name)))
		res.coldBench.prepare = append(res.coldBench.prepare, emptyStore(trash, f.state(cold)...))
		res.warmBench.commands = append(res.warmBench.commands, f.command(filepath.Join(warm, f.name)))
	}
	fmt.Fprintln(os.Stderr, "bench: fetch into an empty store")
	res.coldLoad = loadAverage()
	if res.cold, err = hyperfine(scratch, res.coldBench); err != nil {
		return nil, err
	}
	fmt.Fprintln(os.Stderr, "bench: fetch of a stored image")
	res.warmLoad = loadAverage()
	if res.warm, err = hyperfine(scratch, res.warmBench); err != nil {
		return nil, err
	}
	return res, nil
}

// runtimeDir is the XDG_RUNTIME_DIR of the commands that use the stores in dir: one of the
// benchmark's own, so that rootless podman starts a pause process of its own (which the benchmark
// stops at its end) and kite keeps the run root of its stores there, as in a login session.
func runtimeDir(stores string) string { return filepath.Join(stores, "xdg-runtime") }

// fetchEnv is the environment of the commands that use the stores in dir. XDG_DATA_HOME is where
// skopeo keeps its blob-info cache, outside the store it writes; kite and podman keep theirs in
// their stores.
func fetchEnv(stores string) []string {
	return append(os.Environ(), "XDG_RUNTIME_DIR="+runtimeDir(stores), "XDG_DATA_HOME="+filepath.Join(stores, "skopeo", "data"))
}

// emptyStore is the prepare command of a cold fetch: it moves each of paths that a run left
// behind into a new directory in trash, so the next run starts from nothing. A move is instant,
// where deleting a store takes long and needs write permission on its read-only layer
// directories; the bench deletes the whole scratch directory at its end (every file there is the
// bench user's: the image's files belong to uid 0, which each tool's user namespace maps to the
// user). sync then writes back what the previous run left dirty, so no run pays for another's
// writes.
func emptyStore(trash string, paths ...string) string {
	script := fmt.Sprintf(`for d in %s; do if [ -e "$d" ]; then mv "$d" "$(mktemp -d %s/run.XXXXXX)"/; fi; done; sync`,
		strings.Join(paths, " "), trash)
	return shellJoin([]string{"sh", "-c", script})
}

var imageID = regexp.MustCompile(`(?m)^(sha256:)?[0-9a-f]{64}$`)

// firstFetch runs f once into dir and checks that it printed an image ID.
func firstFetch(f fetcher, dir string, env []string) error {
	c := f.command(dir)
	cmd := exec.Command(c[0], c[1:]...)
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("`%s` failed: %v: %s", shellJoin(c), err, strings.TrimSpace(stderr.String()))
	}
	// skopeo copy -q prints nothing; the others print the image ID.
	if f.name != "skopeo" && !imageID.Match(out) {
		return fmt.Errorf("`%s` printed %q, not an image ID", shellJoin(c), out)
	}
	return nil
}

// stopPodmanPause stops the pause process that rootless podman started for runtimeDir, if any.
func stopPodmanPause(runtimeDir string) {
	data, err := os.ReadFile(filepath.Join(runtimeDir, "libpod", "tmp", "pause.pid"))
	if err != nil {
		return
	}
	var pid int
	if _, err := fmt.Sscan(string(data), &pid); err == nil && pid > 1 {
		if p, err := os.FindProcess(pid); err == nil {
			p.Kill()
		}
	}
}

// loadAverage is the 1, 5 and 15 minute load averages: other work on the machine shows there.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(data)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], ", ")
	}
	return "unknown"
}
