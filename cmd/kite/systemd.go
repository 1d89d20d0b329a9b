package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/kite-runtime/kite/pkg/poddir"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// hostOnlyEnv are variables of kite's environment about kite itself, which never reach an app as
// they are, even with --inherit-env: socket activation's and sd_notify's.
var hostOnlyEnv = []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET"}

// socketActivation takes the descriptors systemd passed kite (sd_listen_fds(3)): LISTEN_FDS of
// them from 3 on, when LISTEN_PID is kite's own pid. It unsets the variables, as a service that
// took its descriptors does, and returns how many there are and what the app's environment gets
// for them: LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID, which stage1 sets to the app's own pid.
func socketActivation() (int, []string, error) {
	pid, fds, names := os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_FDNAMES")
	for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		os.Unsetenv(k)
	}
	if fds == "" || pid != strconv.Itoa(os.Getpid()) {
		return 0, nil, nil
	}
	n, err := strconv.Atoi(fds)
	if err != nil || n < 0 {
		return 0, nil, fmt.Errorf("LISTEN_FDS=%q: not a number of descriptors", fds)
	}
	if n == 0 {
		return 0, nil, nil
	}
	if err := checkPreservedFDs(n); err != nil {
		return 0, nil, fmt.Errorf("socket activation: %w", err)
	}
	env := []string{"LISTEN_FDS=" + fds, "LISTEN_PID="}
	if names != "" {
		env = append(env, "LISTEN_FDNAMES="+names)
	}
	return n, env, nil
}

// passDescriptors gives the pod's first app, whose config.json is app, the descriptors of socket
// activation or of --preserve-fds (not both), and records their count in the pod's config.json,
// pod (which may be app itself).
func passDescriptors(preserve int, pod, app *specs.Spec) error {
	listen, env, err := socketActivation()
	if err != nil {
		return err
	}
	if listen > 0 && preserve > 0 {
		return fmt.Errorf("--preserve-fds: kite was given %d descriptors by socket activation (LISTEN_FDS) already; they reach the app", listen)
	}
	n := max(listen, preserve)
	if n == 0 {
		return nil
	}
	if preserve > 0 {
		if err := checkPreservedFDs(preserve); err != nil {
			return err
		}
	}
	app.Process.Env = append(withoutKeys(app.Process.Env, hostOnlyEnv), env...)
	pod.Annotations[poddir.PreserveFDsAnnotation] = strconv.Itoa(n)
	return nil
}

// withoutKeys is env without the variables named keys.
func withoutKeys(env, keys []string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(keys, k) {
			out = append(out, kv)
		}
	}
	return out
}
