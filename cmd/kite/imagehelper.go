package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/kite-runtime/kite/pkg/exitcode"
	"github.com/kite-runtime/kite/stage0/datadir"
	"github.com/urfave/cli/v2"
)

// imageHelper runs kite-image, which links the image and storage libraries kite itself stays
// free of, with the global flags of one kite command.
type imageHelper struct {
	dir     datadir.Dir
	globals []string
}

func newImageHelper(c *cli.Context) (*imageHelper, error) {
	d, err := dataDir(c)
	if err != nil {
		return nil, err
	}
	insecure, err := insecureOptions(c)
	if err != nil {
		return nil, err
	}
	h := &imageHelper{dir: d, globals: []string{"--dir", d.Root}}
	if c.Bool("debug") {
		h.globals = append(h.globals, "--debug")
	}
	if driver := c.String("storage-driver"); driver != "" {
		h.globals = append(h.globals, "--storage-driver", driver)
	}
	var skip []string
	for _, v := range insecureValues {
		if insecure[v] {
			skip = append(skip, v)
		}
	}
	if len(skip) > 0 {
		h.globals = append(h.globals, "--insecure-options", strings.Join(skip, ","))
	}
	return h, nil
}

// exec replaces kite with kite-image running args: what it prints and its exit status are the
// command's.
func (h *imageHelper) exec(args ...string) error {
	path, err := libexecPath("kite-image")
	if err != nil {
		return err
	}
	argv := append(append([]string{path}, h.globals...), args...)
	slog.Debug("exec", "argv", argv)
	if err := syscall.Exec(path, argv, os.Environ()); err != nil {
		return fmt.Errorf("run %s: %w", path, err)
	}
	return nil
}

// errSilent marks a failure that was reported already.
var errSilent = errors.New("")

// run runs kite-image with args and returns its stdout. kite-image prints its own errors.
func (h *imageHelper) run(args ...string) ([]byte, error) {
	return h.runInput(nil, args...)
}

// runInput is run with stdin read from in (nil: /dev/null).
func (h *imageHelper) runInput(in io.Reader, args ...string) ([]byte, error) {
	path, err := libexecPath("kite-image")
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	cmd := exec.Command(path, append(append([]string{}, h.globals...), args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = in, &out, os.Stderr
	// A kite killed while kite-image works must not leave it running: SIGTERM makes it undo a
	// half-done fetch and exit.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, &exitcode.CodedError{Code: exitcode.Failed, Err: errSilent}
		}
		return nil, fmt.Errorf("run %s: %w", path, err)
	}
	return out.Bytes(), nil
}

// podCopy makes app app of pod id its own copy of image imageID in a store without overlayfs,
// and returns its directory.
func (h *imageHelper) podCopy(id, app, imageID string) (string, error) {
	out, err := h.run("rootfs", "--pod", id, "--app", app, imageID)
	if err != nil {
		return "", err
	}
	dir := strings.TrimSpace(string(out))
	if !filepath.IsAbs(dir) {
		return "", fmt.Errorf("copy the image for pod %s: kite-image printed %q, not a directory", id, dir)
	}
	return dir, nil
}

// removePodCopy deletes what podCopy made for the apps of a pod that never ran.
func (h *imageHelper) removePodCopy(id string) {
	h.run("rm-rootfs", "--pod", id)
}

// execImageHelper replaces kite with kite-image running args, with the command's global flags.
func execImageHelper(c *cli.Context, args ...string) error {
	h, err := newImageHelper(c)
	if err != nil {
		return err
	}
	return h.exec(args...)
}
