// Package ocihooks runs the hooks of an OCI container's config.json (runtime-spec config.md,
// "POSIX-platform Hooks"): each in turn, with the container's state on its standard input, within
// its timeout. Who runs which hooks, and where, is the caller's: kite oci's monitor, the
// container's init or kite oci delete.
package ocihooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// maxOutput bounds how much of a failed hook's output goes into its error.
const maxOutput = 4 << 10

// Run runs hooks in order and stops at the first that fails; kind names them in errors
// (prestart, poststop...).
func Run(kind string, hooks []specs.Hook, state specs.State) error {
	return RunIn("", kind, hooks, state)
}

// RunIn is Run with each hook chrooted into root, where its path resolves, unless root is "".
func RunIn(root, kind string, hooks []specs.Hook, state specs.State) error {
	if len(hooks) == 0 {
		return nil
	}
	in, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("%s hook: encode the state: %w", kind, err)
	}
	for i, h := range hooks {
		if err := run(root, h, in); err != nil {
			return fmt.Errorf("%s hook %d (%s): %w", kind, i, h.Path, err)
		}
	}
	return nil
}

// RunAll runs every hook, also those after one that failed, and returns the failures joined: for
// the poststart and poststop hooks, whose failures are only warnings (runtime-spec runtime.md,
// "Lifecycle").
func RunAll(kind string, hooks []specs.Hook, state specs.State) error {
	in, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("%s hook: encode the state: %w", kind, err)
	}
	var errs []error
	for i, h := range hooks {
		if err := run("", h, in); err != nil {
			errs = append(errs, fmt.Errorf("%s hook %d (%s): %w", kind, i, h.Path, err))
		}
	}
	return errors.Join(errs...)
}

func run(root string, h specs.Hook, state []byte) error {
	ctx := context.Background()
	if h.Timeout != nil {
		if *h.Timeout <= 0 {
			return fmt.Errorf("timeout %d: it must be above zero", *h.Timeout)
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
		defer cancel()
	}
	args := h.Args
	if len(args) == 0 {
		args = []string{h.Path}
	}
	cmd := exec.CommandContext(ctx, h.Path)
	// The hook's argv[0] is what config.json says, which need not be its path.
	cmd.Args = args
	// Exactly the environment config.json gives, none of the runtime's.
	cmd.Env = h.Env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	if root != "" {
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
		cmd.Dir = "/"
	}
	cmd.Stdin = bytes.NewReader(state)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// A hook that leaves a child holding its output must not hold kite up past the timeout.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("killed after its timeout of %d s", *h.Timeout)
	}
	if msg := strings.TrimSpace(tail(out.String())); msg != "" {
		err = fmt.Errorf("%w: %s", err, msg)
	}
	return err
}

func tail(s string) string {
	if len(s) > maxOutput {
		return "…" + s[len(s)-maxOutput:]
	}
	return s
}
