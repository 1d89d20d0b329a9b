package pods

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kite-runtime/kite/stage0/datadir"
	"golang.org/x/sys/unix"
)

// ErrBusy means another process holds the pod's lock: its monitor (a running pod) or a kite
// command at work on it.
var ErrBusy = errors.New("the pod is in use")

// Locked is a pod whose exclusive lock this process holds.
type Locked struct {
	*Pod
	lock *os.File
}

// Close releases the lock.
func (l *Locked) Close() error { return l.lock.Close() }

// Lock takes the exclusive lock of p and reloads it. Other kite commands take a shared lock for an
// instant to read a pod's state, so Lock tries for a moment before it reports ErrBusy. A pod that
// moved meanwhile is followed; one that was removed gives os.ErrNotExist.
func Lock(d datadir.Dir, p *Pod) (*Locked, error) {
	for try := 0; try < 5; try++ {
		f, err := os.Open(p.Dir)
		if errors.Is(err, os.ErrNotExist) {
			if p, err = Load(d, p.UUID); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := flockWithin(f, 50*time.Millisecond); err != nil {
			f.Close()
			return nil, fmt.Errorf("pod %s: %w", p.UUID, err)
		}
		// Locked: the pod cannot move now, but it may have moved before.
		if same, err := samePath(f, p.Dir); err != nil || !same {
			f.Close()
			if p, err = Load(d, p.UUID); err != nil {
				return nil, err
			}
			continue
		}
		q, err := load(p.Dir, filepath.Base(filepath.Dir(p.Dir)), p.UUID, true)
		if err != nil {
			f.Close()
			return nil, err
		}
		return &Locked{Pod: q, lock: f}, nil
	}
	return nil, fmt.Errorf("pod %s keeps moving: %w", p.UUID, ErrBusy)
}

// flockWithin takes f's exclusive lock, trying until timeout.
func flockWithin(f *os.File, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return os.NewSyscallError("flock", err)
		}
		if time.Now().After(deadline) {
			return ErrBusy
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func samePath(f *os.File, path string) (bool, error) {
	a, err := f.Stat()
	if err != nil {
		return false, err
	}
	b, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	return os.SameFile(a, b), nil
}

// Move renames the locked pod into the state directory to (one of the *Dir constants). A pod
// another command moved first gives os.ErrNotExist.
func (l *Locked) Move(d datadir.Dir, to string) error {
	parent := d.PodsIn(to)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return fmt.Errorf("move pod %s to %s: %w", l.UUID, to, err)
	}
	dest := filepath.Join(parent, l.UUID)
	if err := os.Rename(l.Dir, dest); err != nil {
		return fmt.Errorf("move pod %s to %s: %w", l.UUID, to, err)
	}
	from := filepath.Dir(l.Dir)
	l.Dir = dest
	if err := syncDir(parent); err != nil {
		return err
	}
	return syncDir(from)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
