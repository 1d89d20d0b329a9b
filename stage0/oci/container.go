// Package oci is the stage0 side of kite's OCI runtime (kite oci): a container is a pod of one
// app whose directory, ROOT/ID, is the container's state. create turns a bundle's config.json into
// that pod directory (this package) and hands it to the same stage1 as kite run; the state,
// kill and delete commands read and act on the directory.
package oci

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kite-runtime/kite/pkg/poddir"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// AppName is the name of a container's one app in its pod directory.
const AppName = "app"

// DefaultRoot is the state directory kite oci uses without --root.
func DefaultRoot() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "kite-oci")
	}
	if os.Getuid() == 0 {
		return "/run/kite-oci"
	}
	return filepath.Join(os.TempDir(), "kite-oci-"+strconv.Itoa(os.Getuid()))
}

var validID = regexp.MustCompile(`^[A-Za-z0-9_+.-]+$`)

// CheckID refuses an ID that could not name a directory of its own under the root.
func CheckID(id string) error {
	if id == "" {
		return errors.New("no container ID given")
	}
	if !validID.MatchString(id) || id == "." || id == ".." || len(id) > 1024 {
		return fmt.Errorf("container ID %q: use letters, digits and _ + . - only", id)
	}
	return nil
}

// ErrNotExist means no container of that ID is in the root.
var ErrNotExist = errors.New("no such container")

// Container is one container's directory, read.
type Container struct {
	ID, Dir string
	Pod     poddir.Pod
	Created time.Time
}

// Load reads container id in root.
func Load(root, id string) (*Container, error) {
	if err := CheckID(id); err != nil {
		return nil, err
	}
	dir := filepath.Join(root, id)
	c := &Container{ID: id, Dir: dir}
	if err := poddir.ReadJSON(dir, poddir.PodFile, &c.Pod); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("container %s: %w (kite oci list shows the containers in %s)", id, ErrNotExist, root)
		}
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	if c.Pod.OCI == nil || c.Pod.OCI.ID != id {
		return nil, fmt.Errorf("container %s: %s is not a kite oci container", id, dir)
	}
	c.Created = c.Pod.Created
	return c, nil
}

// List reads every container in root, sorted by ID.
func List(root string) ([]*Container, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Container
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		c, err := Load(root, e.Name())
		if err != nil {
			// Being created (no pod.json yet) or not a container: not listed.
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

// Status is the container's status (runtime.md, "State") and its process, the pod's init, as the
// host sees it (0 until it exists).
func (c *Container) Status() (specs.ContainerState, int) {
	pid := 0
	if data, err := os.ReadFile(filepath.Join(c.Dir, poddir.PidFile)); err == nil {
		pid, _ = strconv.Atoi(strings.TrimSpace(string(data)))
	}
	switch {
	case exists(filepath.Join(c.Dir, poddir.ExitStatusFile)):
		return specs.StateStopped, pid
	case !c.busy() && !c.initAlive(pid):
		// No monitor, and no init either: the container ended, or its creation failed. (An init
		// outlives a killed monitor, and goes on as created or running.)
		return specs.StateStopped, pid
	case pid == 0:
		return specs.StateCreating, 0
	case exists(filepath.Join(c.Dir, poddir.StartedFile)):
		return specs.StateRunning, pid
	}
	return specs.StateCreated, pid
}

// initAlive reports whether the container's init, pid, still runs: the process of that pid
// started when the monitor recorded.
func (c *Container) initAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	recorded, err := os.ReadFile(filepath.Join(c.Dir, poddir.InitStartFile))
	return err == nil && poddir.ProcessStart(pid) == strings.TrimSpace(string(recorded))
}

// State is the runtime-spec state document.
func (c *Container) State() specs.State {
	// A stopped container's pid is the one its process had, as its hooks were told.
	status, pid := c.Status()
	return c.Pod.OCI.State(string(status), pid)
}

// busy reports whether a process holds the container's lock: kite oci create, or the monitor
// for the container's whole life.
func (c *Container) busy() bool {
	f, err := os.Open(c.Dir)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		return errors.Is(err, unix.EWOULDBLOCK)
	}
	return false
}

// Lock takes the container's lock, waiting up to timeout for its monitor to end.
func (c *Container) Lock(timeout time.Duration) (*os.File, error) {
	f, err := os.Open(c.Dir)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("container %s is still in use by its monitor", c.ID)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Signal sends sig to the container's process, which must be created or running.
func (c *Container) Signal(sig unix.Signal) error {
	status, pid := c.Status()
	if status != specs.StateCreated && status != specs.StateRunning {
		return fmt.Errorf("container %s is %s: only a created or running container can be signalled", c.ID, status)
	}
	if err := unix.Kill(pid, sig); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("container %s has stopped", c.ID)
		}
		return fmt.Errorf("signal container %s: %w", c.ID, err)
	}
	return nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
