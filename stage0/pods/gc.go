package pods

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kite-runtime/kite/pkg/poddir"
	"golang.org/x/sys/unix"

	"github.com/kite-runtime/kite/stage0/datadir"
)

// GCOptions are kite gc's choices.
type GCOptions struct {
	// GracePeriod is how long an exited pod stays marked (exited-garbage) before it is removed.
	GracePeriod time.Duration
	// ExpirePrepared is how long a prepared pod may wait for run-prepared.
	ExpirePrepared time.Duration
	// MarkOnly marks exited pods and removes nothing.
	MarkOnly bool
}

// GC marks the exited pods, then moves to garbage every pod that is due: marked longer than the
// grace period, aborted, prepared too long ago, or left in garbage by an earlier removal. It
// returns the marked pods' UUIDs and the pods to remove, locked: the caller removes them (inside
// the store's user namespace, where every file of a pod can be removed) and closes them. Pods
// another process holds (running, being written, started or removed) are left alone.
func GC(d datadir.Dir, o GCOptions, now time.Time) (marked []string, due []*Locked, err error) {
	all, err := List(d)
	if err != nil {
		return nil, nil, err
	}
	for _, p := range all {
		if p.State != Exited {
			continue
		}
		l, err := lockIf(d, p, Exited)
		if err != nil || l == nil {
			if err != nil {
				return marked, due, err
			}
			continue
		}
		err = l.Move(d, poddir.ExitedGarbageDir)
		if err == nil {
			// The mark's time, for the grace period: nothing else writes to an exited pod's directory.
			err = os.Chtimes(l.Dir, now, now)
		}
		l.Close()
		if err != nil {
			return marked, due, err
		}
		marked = append(marked, p.UUID)
	}
	if o.MarkOnly {
		return marked, nil, nil
	}
	if all, err = List(d); err != nil {
		return marked, nil, err
	}
	removeStaging(d.PodsIn(poddir.EmbryoDir))
	for _, p := range all {
		var isDue bool
		switch p.State {
		case ExitedGarbage:
			st, err := os.Stat(p.Dir)
			isDue = err == nil && now.Sub(st.ModTime()) >= o.GracePeriod
		case Prepared:
			isDue = p.Manifest != nil && now.Sub(p.Manifest.Created) >= o.ExpirePrepared
		case Aborted, Garbage:
			isDue = true
		}
		if !isDue {
			continue
		}
		l, err := lockIf(d, p, p.State)
		if err != nil {
			return marked, due, err
		}
		if l == nil {
			continue
		}
		if err := l.ToGarbage(d); err != nil {
			l.Close()
			return marked, due, err
		}
		due = append(due, l)
	}
	return marked, due, nil
}

// removeStaging removes the staging directories of embryos (lockedDir) that a kite killed
// between making and renaming one left behind. Under the exclusive staging lock, no kite is
// making one, so every one there is abandoned.
func removeStaging(embryos string) {
	guard, err := os.Open(filepath.Join(filepath.Dir(embryos), stagingLock))
	if err != nil {
		return
	}
	defer guard.Close()
	if unix.Flock(int(guard.Fd()), unix.LOCK_EX) != nil {
		return
	}
	entries, _ := os.ReadDir(embryos)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), stagingPrefix) {
			os.Remove(filepath.Join(embryos, e.Name()))
		}
	}
}

// lockIf locks p if it is still in state; nil when it is not, or another process holds it.
func lockIf(d datadir.Dir, p *Pod, state State) (*Locked, error) {
	l, err := Lock(d, p)
	if errors.Is(err, ErrBusy) || errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	// Anything that changed since the pod was listed is no longer this pass's business.
	if l.State != state {
		l.Close()
		return nil, nil
	}
	return l, nil
}

// ToGarbage moves the locked pod to garbage, where it waits to be removed. A running pod or one
// being written cannot be locked by anyone else, so it never gets here.
func (l *Locked) ToGarbage(d datadir.Dir) error {
	if l.State == Garbage {
		return nil
	}
	if err := l.Move(d, poddir.GarbageDir); err != nil {
		return fmt.Errorf("remove pod %s: %w", l.UUID, err)
	}
	l.State = Garbage
	return nil
}
