package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestTortureConcurrentPods starts KITE_TORTURE_PODS pods (20 by default) of a stored image at
// once, while kite gc and a fetch of another image (removed again after each fetch, so that every
// fetch writes the store) run in loops beside them. Every pod must run its app to the exit status
// it chose and write its own file, every gc, fetch and removal must succeed, and afterwards gc
// must leave no pod, layer, mount or process behind.
func TestTortureConcurrentPods(t *testing.T) {
	n := envInt(t, "KITE_TORTURE_PODS", 20)
	dir := newDataDir(t)
	wantCode(t, kite(t, dir, "fetch", "-q", layoutRef("busybox")), 0, "store the image")
	marker := uniqueSleep(0)
	var failures atomic.Int64
	fail := func(format string, args ...any) {
		t.Helper()
		failures.Add(1)
		t.Errorf(format, args...)
	}

	stop := make(chan struct{})
	var loops sync.WaitGroup
	var gcs, fetches atomic.Int64
	loop := func(once func() bool) {
		loops.Add(1)
		go func() {
			defer loops.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if !once() {
					return
				}
			}
		}()
	}
	run := func(what string, args ...string) (result, bool) {
		r, err := runKite(dir, nil, args...)
		if err != nil || r.Code != 0 {
			fail("%s beside the pods: %v %s", what, err, r)
			return r, false
		}
		return r, true
	}
	loop(func() bool {
		_, ok := run("kite gc", "gc", "--grace-period", "0")
		gcs.Add(1)
		return ok
	})
	loop(func() bool {
		if _, ok := run("kite fetch", "fetch", "-q", layoutRef("multilayer")); !ok {
			return false
		}
		fetches.Add(1)
		_, ok := run("kite image rm", "image", "rm", "localhost/layout:multilayer")
		return ok
	})

	var pods sync.WaitGroup
	var ranClean atomic.Int64
	for i := range n {
		pods.Add(1)
		go func() {
			defer pods.Done()
			code := 10 + i%100
			script := fmt.Sprintf("echo %d > /mine && sleep %s && test \"$(cat /mine)\" = %d && exit %d", i, marker, i, code)
			r, err := runKite(dir, nil, "run", layoutRef("busybox"), "--", "sh", "-c", script)
			if err != nil || r.Code != code {
				fail("pod %d beside gc and fetch: want exit status %d, got %v %s", i, code, err, r)
				return
			}
			ranClean.Add(1)
		}()
	}
	pods.Wait()
	close(stop)
	loops.Wait()
	t.Logf("%d pods ran beside %d gc and %d fetches", n, gcs.Load(), fetches.Load())

	p := &problems{t: t, what: "after the pods"}
	p.waitNoProcs(dir, marker)
	if r := p.kite(dir, "image", "verify"); r.Code != 0 {
		p.add("kite image verify: want a clean store, got %s", r)
	}
	p.want(dir, "gc", "--grace-period", "0", "--expire-prepared", "0s")
	p.want(dir, "image", "gc")
	p.checkClean(dir, marker)
	if r := p.want(dir, "image", "list", "--quiet"); len(strings.Fields(r.Stdout)) != 1 {
		p.add("the store holds %q, want the busybox image alone", r.Stdout)
	}
	// The row has torture.tsv's columns: what, runs, clean, failures, seed (none here).
	hardeningRow(t, "torture.tsv", "concurrent-pods", strconv.Itoa(n), strconv.FormatInt(ranClean.Load(), 10),
		strconv.FormatInt(failures.Load()+int64(len(p.list)), 10), "-")
}
