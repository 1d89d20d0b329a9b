// Package pods owns DATA/pods: what state each pod is in, finding a pod by UUID, UUID prefix,
// name or UUID file, and moving pods between states. It follows rkt's pod lifecycle: a pod's state
// is the directory it is in and whether its lock is held, every transition is a rename under the
// pod's exclusive flock(2), and nothing else keeps state, so every command is safe to run beside
// any other without a daemon.
//
//	embryo/     being written by kite, which holds the lock; unlocked: kite died (aborted)
//	prepared/   written by kite prepare, waiting for kite run-prepared
//	run/        handed to stage1: running while the monitor holds the lock, exited after
//	exited-garbage/  exited pods kite gc has marked; removed after the grace period
//	garbage/    pods being removed
package pods

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kite-runtime/kite/pkg/poddir"
	"github.com/kite-runtime/kite/stage0/datadir"
	"golang.org/x/sys/unix"
)

var stateDirs = []string{poddir.EmbryoDir, poddir.PreparedDir, poddir.RunDir, poddir.ExitedGarbageDir, poddir.GarbageDir}

// State is where a pod is in its life, as list and status show it.
type State string

const (
	Embryo        State = "embryo"         // kite is writing it
	Aborted       State = "aborted"        // kite died writing it; gc removes it
	Prepared      State = "prepared"       // ready for run-prepared
	Running       State = "running"        // its monitor is alive
	Exited        State = "exited"         // its monitor has ended
	ExitedGarbage State = "exited-garbage" // exited, and marked by gc for removal
	Garbage       State = "garbage"        // being removed
)

// Pod is one pod directory and what its files say.
type Pod struct {
	UUID  string
	Dir   string
	State State
	// Manifest is pod.json; nil when it cannot be read (an embryo may not have it yet).
	Manifest *poddir.Pod
	// Pid is the host PID of the pod's init, once the app has started (0 before).
	Pid int
	// Started is when the app started; zero before.
	Started time.Time
	// Exit is exit-status, once the pod has ended; nil when its monitor was killed first.
	Exit *poddir.ExitStatus
}

// Name is the pod's name, "" when it has none.
func (p *Pod) Name() string {
	if p.Manifest == nil {
		return ""
	}
	return p.Manifest.Name
}

// List reads every pod, in no particular order. A pod that moves while it is read is read where
// it went, or left out if it was removed.
func List(d datadir.Dir) ([]*Pod, error) {
	type entry struct{ state, uuid string }
	var entries []entry
	seen := map[string]bool{}
	for _, state := range stateDirs {
		names, err := os.ReadDir(d.PodsIn(state))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list pods: %w", err)
		}
		for _, e := range names {
			if e.IsDir() && !seen[e.Name()] && validUUID(e.Name()) {
				seen[e.Name()] = true
				entries = append(entries, entry{state, e.Name()})
			}
		}
	}
	// Reading a pod is a dozen system calls and two small JSON documents: read several at once.
	pods := make([]*Pod, len(entries))
	errs := make([]error, len(entries))
	var wg sync.WaitGroup
	work := make(chan int)
	for range min(len(entries), 4*runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				e := entries[i]
				p, err := load(filepath.Join(d.PodsIn(e.state), e.uuid), e.state, e.uuid, false)
				if errors.Is(err, os.ErrNotExist) {
					// It moved since the directory was read: look for it where it went.
					p, err = Load(d, e.uuid)
				}
				pods[i], errs[i] = p, err
			}
		}()
	}
	for i := range entries {
		work <- i
	}
	close(work)
	wg.Wait()
	var out []*Pod
	for i, p := range pods {
		if errors.Is(errs[i], os.ErrNotExist) {
			continue // removed meanwhile
		}
		if errs[i] != nil {
			return nil, errs[i]
		}
		out = append(out, p)
	}
	return out, nil
}

// Load reads pod uuid in whatever state it is. It retries when the pod moves while it looks.
func Load(d datadir.Dir, uuid string) (*Pod, error) {
	if err := CheckUUID(uuid); err != nil {
		return nil, err
	}
	for try := 0; try < 5; try++ {
		for _, state := range stateDirs {
			dir := filepath.Join(d.PodsIn(state), uuid)
			p, err := load(dir, state, uuid, false)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return p, err
		}
	}
	return nil, fmt.Errorf("pod %s: %w", uuid, os.ErrNotExist)
}

// load reads the pod in dir. locked says that this process holds its lock, so no other does.
func load(dir, stateDir, uuid string, locked bool) (*Pod, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Only an embryo's and a handed-over pod's state depend on their lock.
	held := false
	if !locked && (stateDir == poddir.EmbryoDir || stateDir == poddir.RunDir) {
		if held, err = lockHeld(f); err != nil {
			return nil, fmt.Errorf("pod %s: %w", uuid, err)
		}
	}
	p := &Pod{UUID: uuid, Dir: dir}
	var m poddir.Pod
	if b, _, err := readAt(f, poddir.PodFile); err == nil && json.Unmarshal(b, &m) == nil {
		p.Manifest = &m
	}
	switch stateDir {
	case poddir.EmbryoDir:
		p.State = Embryo
		if !held {
			p.State = Aborted
		}
	case poddir.PreparedDir:
		p.State = Prepared
	case poddir.RunDir:
		p.State = Running
		if !held {
			p.State = Exited
		}
	case poddir.ExitedGarbageDir:
		p.State = ExitedGarbage
	case poddir.GarbageDir:
		p.State = Garbage
	}
	if b, changed, err := readAt(f, poddir.PidFile); err == nil {
		p.Started = changed.UTC()
		p.Pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	var exit poddir.ExitStatus
	if b, _, err := readAt(f, poddir.ExitStatusFile); err == nil && json.Unmarshal(b, &exit) == nil {
		p.Exit = &exit
	}
	return p, nil
}

// readAt reads the small file name of the open directory dir, and says when it last changed. A
// listing reads three files of every pod: relative to the open directory, and with no more
// system calls than it takes.
func readAt(dir *os.File, name string) ([]byte, time.Time, error) {
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, time.Time{}, &os.PathError{Op: "open", Path: name, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, time.Time{}, &os.PathError{Op: "stat", Path: name, Err: err}
	}
	buf := make([]byte, st.Size+1)
	n := 0
	for {
		m, err := unix.Read(fd, buf[n:])
		if err != nil {
			return nil, time.Time{}, &os.PathError{Op: "read", Path: name, Err: err}
		}
		if m == 0 || n+m == len(buf) {
			n += m
			break
		}
		n += m
	}
	return buf[:n], time.Unix(st.Mtim.Unix()), nil
}

// lockHeld reports whether some process holds the exclusive lock of the open pod directory f.
// It takes a shared lock for an instant to find out.
func lockHeld(f *os.File) (bool, error) {
	err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return true, nil
	}
	if err != nil {
		return false, os.NewSyscallError("flock", err)
	}
	return false, unix.Flock(int(f.Fd()), unix.LOCK_UN)
}

// CheckUUID checks that s has the form of a pod UUID.
func CheckUUID(s string) error {
	if !validUUID(s) {
		return fmt.Errorf("%q is not a pod UUID", s)
	}
	return nil
}

// validUUID reports whether s has the form of a pod UUID: 8-4-4-4-12 lowercase hex digits.
func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
		} else if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
