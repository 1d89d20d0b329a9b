package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// netResults is a pod network's cost: start-to-exit of `true` in each network, and HTTP requests
// per second through a published port.
type netResults struct {
	latency []measured
	labels  []string
	rps     []rpsResult
}

// rpsResult is how many HTTP requests a server in a pod answered per second.
type rpsResult struct {
	label, command string
	requests       int
	failures       int
	seconds        float64
}

// networkBench measures kite run in its networks beside podman run's default rootless network
// and its host network, interleaved, and HTTP requests per second through a published port.
// podman is the bench's podman command of `true` on the host network (nil: not measured).
func networkBench(scratch, kite, data, image string, podman []string, runs int) (*netResults, error) {
	res := &netResults{}
	var commands [][]string
	for _, mode := range []string{"default", "slirp4netns", "host"} {
		commands = append(commands, []string{kite, "--dir", data, "run", "--net=" + mode, image, "--", "true"})
		res.labels = append(res.labels, "kite --net="+mode)
	}
	if podman != nil {
		commands = append(commands, withoutHostNetwork(podman), podman)
		res.labels = append(res.labels, "podman, its default network", "podman --network=host")
	}
	var err error
	if res.latency, err = hyperfine(scratch, bench{commands: commands, warmup: 2, runs: runs, rounds: runs}); err != nil {
		return nil, err
	}
	if podman != nil {
		exec.Command("podman", "system", "migrate").Run()
	}
	httpd := []string{"busybox", "httpd", "-f", "-p", "8080", "-h", "/etc"}
	type server struct {
		label string
		cmd   func(port int) []string
		// stop, when set, ends the server; else SIGTERM to its command does.
		stop []string
	}
	servers := []server{
		{label: "kite, pasta", cmd: func(port int) []string {
			return append([]string{kite, "--dir", data, "run", "--port", fmt.Sprintf("127.0.0.1:%d:8080", port), image, "--"}, httpd...)
		}},
		{label: "kite, slirp4netns", cmd: func(port int) []string {
			return append([]string{kite, "--dir", data, "run", "--net=slirp4netns", "--port", fmt.Sprintf("127.0.0.1:%d:8080", port), image, "--"}, httpd...)
		}},
		{label: "kite --net=host (no forwarding)", cmd: func(port int) []string {
			return []string{kite, "--dir", data, "run", "--net=host", image, "--", "busybox", "httpd", "-f", "-p", "127.0.0.1:" + strconv.Itoa(port), "-h", "/etc"}
		}},
	}
	if podman != nil {
		base, id := podman[:slices.Index(podman, "run")], podman[len(podman)-2]
		// httpd is the container's pid 1, which ignores SIGTERM: podman rm -f ends it.
		servers = append(servers, server{"podman, its default network", func(port int) []string {
			return append(append(append([]string{}, base...), "run", "--rm", "--name", "kite-bench-httpd", "-p", fmt.Sprintf("127.0.0.1:%d:8080", port), id), httpd...)
		}, append(append([]string{}, base...), "rm", "-f", "-t", "0", "kite-bench-httpd")})
	}
	for _, s := range servers {
		r, err := requestsPerSecond(s.label, s.cmd, s.stop, 5*time.Second, 4)
		if err != nil {
			return nil, err
		}
		res.rps = append(res.rps, r)
	}
	if podman != nil {
		exec.Command("podman", "system", "migrate").Run()
	}
	return res, nil
}

// withoutHostNetwork is podman's command without --network=host: its default rootless network.
func withoutHostNetwork(podman []string) []string {
	return slices.DeleteFunc(slices.Clone(podman), func(a string) bool { return a == "--network=host" })
}

// requestsPerSecond starts the server command(port) on a free loopback port, waits until it
// answers, and has workers clients fetch /hostname for d, each request on a new connection (as
// busybox httpd closes each one). stop, when not nil, is the command that ends the server.
func requestsPerSecond(label string, command func(port int) []string, stop []string, d time.Duration, workers int) (rpsResult, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return rpsResult{}, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := command(port)
	res := rpsResult{label: label, command: shellJoin(cmd)}
	server := exec.Command(cmd[0], cmd[1:]...)
	server.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := server.Start(); err != nil {
		return res, err
	}
	defer func() {
		if stop != nil {
			exec.Command(stop[0], stop[1:]...).Run()
		}
		server.Process.Signal(syscall.SIGTERM)
		server.Wait()
	}()
	url := fmt.Sprintf("http://127.0.0.1:%d/hostname", port)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for get() != nil {
		if time.Now().After(deadline) {
			return res, fmt.Errorf("%s: no answer on port %d within 30 s", res.command, port)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	began := time.Now()
	end := began.Add(d)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				if get() == nil {
					ok.Add(1)
				} else {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	res.requests, res.failures, res.seconds = int(ok.Load()), int(failed.Load()), time.Since(began).Seconds()
	return res, nil
}
