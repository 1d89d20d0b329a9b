package imagestore

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
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
