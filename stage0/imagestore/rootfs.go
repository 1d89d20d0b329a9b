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

// rootfsPrefix starts the names of a pod's copies: kite-pod-UUID-APP.
const rootfsPrefix = "kite-pod-"

func rootfsName(podUUID, app string) (string, error) {
	if len(podUUID) != 36 || strings.ContainsAny(podUUID, "/ \t\n") {
		return "", fmt.Errorf("invalid pod UUID %q", podUUID)
	}
	if app == "" || strings.ContainsAny(app, "/ \t\n") {
		return "", fmt.Errorf("invalid app name %q", app)
	}
	return rootfsPrefix + podUUID + "-" + app, nil
}

// podOfRootfs is the UUID of the pod a copy's name names, "" when it names none.
func podOfRootfs(name string) string {
	rest, ok := strings.CutPrefix(name, rootfsPrefix)
	if !ok || len(rest) < 36 {
		return ""
	}
	return rest[:36]
}

// CreateRootfs creates the root filesystem of app app of pod podUUID from image imageID and
// returns its directory. Run again for the same app, it returns the same directory.
func (s *Store) CreateRootfs(podUUID, app, imageID string) (string, error) {
	name, err := rootfsName(podUUID, app)
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

// RemoveRootfs deletes the root filesystems of pod podUUID's apps; it is not an error if there
// are none.
func (s *Store) RemoveRootfs(podUUID string) error {
	containers, err := s.Containers()
	if err != nil {
		return fmt.Errorf("remove the root filesystems of pod %s: %w", podUUID, err)
	}
	for _, c := range containers {
		for _, name := range c.Names {
			if podOfRootfs(name) != podUUID {
				continue
			}
			if err := s.DeleteContainer(c.ID); err != nil && !errors.Is(err, storage.ErrContainerUnknown) {
				return fmt.Errorf("remove the root filesystem %s of pod %s: %w", name, podUUID, err)
			}
		}
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
			uuid := podOfRootfs(name)
			if uuid == "" || exists(uuid) || time.Since(c.Created) < minAge {
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
