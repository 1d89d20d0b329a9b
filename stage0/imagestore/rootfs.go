package imagestore

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.podman.io/storage"
)

// The vfs driver cannot be mounted as layers: a pod's root filesystem is a copy of the image, made
// as a storage container (rkt's "tree store" equivalent for hosts without native overlay).

func rootfsName(podUUID string) (string, error) {
	if podUUID == "" || strings.ContainsAny(podUUID, "/ \t\n") {
		return "", fmt.Errorf("invalid pod UUID %q", podUUID)
	}
	return "kite-pod-" + podUUID, nil
}

// CreateRootfs creates the root filesystem of pod podUUID from image imageID and returns its
// directory. Run again for the same pod, it returns the same directory.
func (s *Store) CreateRootfs(podUUID, imageID string) (string, error) {
	name, err := rootfsName(podUUID)
	if err != nil {
		return "", err
	}
	fail := func(err error) error { return fmt.Errorf("create the root filesystem of pod %s: %w", podUUID, err) }
	driver, err := s.GraphDriver()
	if err != nil {
		return "", fail(err)
	}
	if driver.String() != "vfs" {
		return "", fail(fmt.Errorf("the store uses the %s driver; pods mount its layers instead", driver.String()))
	}
	img, err := s.Image(imageID)
	if err != nil {
		return "", fail(fmt.Errorf("image %s: %w", imageID, err))
	}
	c, err := s.Container(name)
	switch {
	case errors.Is(err, storage.ErrContainerUnknown):
		if c, err = s.CreateContainer("", []string{name}, img.ID, "", "", nil); err != nil {
			return "", fail(err)
		}
	case err != nil:
		return "", fail(err)
	case c.ImageID != img.ID:
		return "", fail(fmt.Errorf("it exists already, made from image %s", c.ImageID))
	}
	dir, err := layerDir(driver, c.LayerID)
	if err != nil {
		return "", fail(err)
	}
	return dir, nil
}

// RemoveRootfs deletes the root filesystem of pod podUUID; it is not an error if there is none.
func (s *Store) RemoveRootfs(podUUID string) error {
	name, err := rootfsName(podUUID)
	if err != nil {
		return err
	}
	c, err := s.Container(name)
	if errors.Is(err, storage.ErrContainerUnknown) {
		return nil
	}
	if err == nil {
		err = s.DeleteContainer(c.ID)
	}
	if err != nil {
		return fmt.Errorf("remove the root filesystem of pod %s: %w", podUUID, err)
	}
	return nil
}

// RemoveOrphanRootfs removes the pods' copies whose pod exists no more (exists says which do) and
// that were made more than minAge ago: a kite killed between copying the image and writing the
// pod leaves one behind. The age spares the copies of pods being written right now. It returns
// the UUIDs of the pods whose copies it removed.
func (s *Store) RemoveOrphanRootfs(exists func(uuid string) bool, minAge time.Duration) ([]string, error) {
	containers, err := s.Containers()
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, c := range containers {
		for _, name := range c.Names {
			uuid, ok := strings.CutPrefix(name, "kite-pod-")
			if !ok || exists(uuid) || time.Since(c.Created) < minAge {
				continue
			}
			if err := s.DeleteContainer(c.ID); err != nil && !errors.Is(err, storage.ErrContainerUnknown) {
				return removed, fmt.Errorf("remove the image copy of pod %s, which exists no more: %w", uuid, err)
			}
			removed = append(removed, uuid)
		}
	}
	return removed, nil
}
