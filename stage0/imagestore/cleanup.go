package imagestore

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/kite-runtime/kite/stage0/datadir"
	"golang.org/x/sys/unix"
)

// contents is what the store holds, to find what a failed copy added.
type contents struct {
	layers, images map[string]bool
	// scratch holds the driver's directories, which a copy may add (temporary directories of the
	// vfs driver, e.g.) and leave empty when it fails.
	scratch map[string]bool
}

func (s *Store) contents() (contents, error) {
	c := contents{layers: map[string]bool{}, images: map[string]bool{}, scratch: map[string]bool{}}
	for _, d := range s.scratchDirs() {
		c.scratch[d] = true
	}
	layers, err := s.Layers()
	if err != nil {
		return c, err
	}
	for _, l := range layers {
		c.layers[l.ID] = true
	}
	images, err := s.Images()
	if err != nil {
		return c, err
	}
	for _, i := range images {
		c.images[i.ID] = true
	}
	return c, nil
}

// removeAdded removes the images and layers added since before. The storage destination commits
// each layer as soon as it and its parents are complete, so a copy that fails on a later layer
// leaves the earlier ones in the store.
func (s *Store) removeAdded(before contents) error {
	if err := s.removeAddedImages(before); err != nil {
		return err
	}
	// Last: removing layers uses the driver's temporary directories.
	for _, d := range s.scratchDirs() {
		if !before.scratch[d] {
			os.Remove(d) // only if empty: the driver may have put something there meanwhile
		}
	}
	return nil
}

func (s *Store) removeAddedImages(before contents) error {
	images, err := s.Images()
	if err != nil {
		return err
	}
	for _, i := range images {
		if !before.images[i.ID] {
			slog.Debug("removing image left by a failed copy", "id", i.ID)
			if _, err := s.DeleteImage(i.ID, true); err != nil {
				return fmt.Errorf("remove image %s: %w", i.ID, err)
			}
		}
	}
	// Remove children first: a layer with children cannot be deleted.
	for {
		layers, err := s.Layers()
		if err != nil {
			return err
		}
		parents := map[string]bool{}
		for _, l := range layers {
			parents[l.Parent] = true
		}
		removed := 0
		for _, l := range layers {
			if !before.layers[l.ID] && !parents[l.ID] {
				slog.Debug("removing layer left by a failed copy", "id", l.ID)
				if err := s.DeleteLayer(l.ID); err != nil {
					return fmt.Errorf("remove layer %s: %w", l.ID, err)
				}
				removed++
			}
		}
		if removed == 0 {
			return nil
		}
	}
}

// scratchDirs lists the directories directly below the driver's and its layer store's homes.
func (s *Store) scratchDirs() []string {
	var out []string
	for _, home := range []string{s.GraphDriverName(), s.GraphDriverName() + "-layers"} {
		entries, _ := os.ReadDir(filepath.Join(s.GraphRoot(), home))
		for _, e := range entries {
			if e.IsDir() {
				out = append(out, filepath.Join(s.GraphRoot(), home, e.Name()))
			}
		}
	}
	return out
}

// newTempDir makes a directory for one fetch's temporary files below the data dir (not /var/tmp:
// kite writes nothing outside its own directories), and removes those of fetches that were
// killed: each fetch holds a lock in its directory while it runs. release removes the directory,
// and the parent too when nothing else is in it, so a data dir that had none keeps none.
func newTempDir(dir datadir.Dir) (string, func(), error) {
	parent := filepath.Join(dir.Root, "tmp")
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return "", nil, err
	}
	removeAbandoned(parent)
	// The directory gets its fetch- name only once locked, so that removeAbandoned never sees it
	// unlocked.
	made, err := os.MkdirTemp(parent, ".new-")
	if err != nil {
		return "", nil, err
	}
	lock, err := os.OpenFile(filepath.Join(made, ".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err == nil {
		err = unix.Flock(int(lock.Fd()), unix.LOCK_EX)
	}
	tmp := filepath.Join(parent, "fetch-"+strings.TrimPrefix(filepath.Base(made), ".new-"))
	if err == nil {
		err = os.Rename(made, tmp)
	}
	if err != nil {
		os.RemoveAll(made)
		return "", nil, fmt.Errorf("make a temporary directory in %s: %w", parent, err)
	}
	return tmp, func() {
		os.RemoveAll(tmp)
		lock.Close()
		os.Remove(parent)
	}, nil
}

// removeAbandonedFetches removes the temporary directories of the data dir's fetches that were
// killed. The tmp directory itself stays: a fetch starting now may be about to make its own there.
func removeAbandonedFetches(dir datadir.Dir) {
	removeAbandoned(filepath.Join(dir.Root, "tmp"))
}

// removeAbandoned removes the temporary directories in parent whose fetch no longer runs.
func removeAbandoned(parent string) {
	dirs, _ := filepath.Glob(filepath.Join(parent, "fetch-*"))
	for _, d := range dirs {
		lock, err := os.Open(filepath.Join(d, ".lock"))
		if err != nil {
			continue // being made, or being removed
		}
		if unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			slog.Debug("removing the temporary files of a fetch that was killed", "dir", d)
			os.RemoveAll(d)
		}
		lock.Close()
	}
}
