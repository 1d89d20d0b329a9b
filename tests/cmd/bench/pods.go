package main

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// pairResult is kite run with and without its seccomp filter, measured in interleaved pairs so
// that the machine's drift during the run weighs on both alike.
type pairResult struct {
	pairs              int
	with, without      float64 // medians, seconds
	commandA, commandB string
}

// seccompCost runs kite run with the default filter and with --insecure-options=seccomp
// alternately, pairs times each, after two warm-up pairs.
func seccompCost(kite, data, image string, pairs int) (*pairResult, error) {
	a := []string{kite, "--dir", data, "run", "--net=host", image, "--", "true"}
	b := []string{kite, "--dir", data, "run", "--net=host", "--insecure-options=seccomp", image, "--", "true"}
	var ta, tb []float64
	for i := range pairs + 2 {
		for _, c := range [][]string{a, b} {
			began := time.Now()
			if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
				return nil, fmt.Errorf("%v: %v\n%s", c, err, out)
			}
			d := time.Since(began).Seconds()
			if i < 2 {
				continue
			}
			if len(c) == len(a) {
				ta = append(ta, d)
			} else {
				tb = append(tb, d)
			}
		}
	}
	return &pairResult{pairs: pairs, with: median(ta), without: median(tb), commandA: shellJoin(a), commandB: shellJoin(b)}, nil
}

// burstResult is n pods started at once.
type burstResult struct {
	n, failures int
	wall        float64 // seconds, from the first start to the last end
	command     string
}

// burst starts n commands at once, the i-th command(i), and waits for them all.
func burst(n int, command func(i int) []string) *burstResult {
	var wg sync.WaitGroup
	var mu sync.Mutex
	failures := 0
	began := time.Now()
	for i := range n {
		cmd := command(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := exec.Command(cmd[0], cmd[1:]...).Run(); err != nil {
				mu.Lock()
				failures++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return &burstResult{n: n, failures: failures, wall: time.Since(began).Seconds(), command: shellJoin(command(0))}
}

// listResult is kite list of many exited pods.
type listResult struct {
	pods    int
	list    measured
	command string
}

// listPods makes a data directory with n exited pods (one pod run, its documents copied under
// n-1 new UUIDs) and measures kite list there with hyperfine.
func listPods(kite, scratch, image string, n, runs int) (*listResult, error) {
	data := filepath.Join(scratch, "list")
	if out, err := exec.Command(kite, "--dir", data, "run", "--net=host", image, "--", "true").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("kite run: %v\n%s", err, out)
	}
	run := filepath.Join(data, "pods", "run")
	entries, err := os.ReadDir(run)
	if err != nil || len(entries) != 1 {
		return nil, fmt.Errorf("the pod to copy: %v", err)
	}
	src := filepath.Join(run, entries[0].Name())
	for range n - 1 {
		if err := copyDocuments(src, filepath.Join(run, newUUID())); err != nil {
			return nil, fmt.Errorf("copy a pod: %w", err)
		}
	}
	cmd := []string{kite, "--dir", data, "list"}
	res, err := hyperfine(scratch, bench{commands: [][]string{cmd}, warmup: 3, runs: runs})
	if err != nil {
		return nil, err
	}
	return &listResult{pods: n, list: res[0], command: shellJoin(cmd)}, nil
}

func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// copyDocuments copies the regular files of pod directory src and of its apps' directories to
// dst, leaving out the apps' overlay directories (whose files belong to the pod's subordinate ids).
func copyDocuments(src, dst string) error {
	return filepath.WalkDir(src, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		switch {
		case e.IsDir() && (e.Name() == "upper" || e.Name() == "work" || e.Name() == "rootfs"):
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			return filepath.SkipDir
		case e.IsDir():
			return os.MkdirAll(target, 0o755)
		case e.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, 0o644)
		}
		return nil
	})
}
