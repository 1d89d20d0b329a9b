package imagestore

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"

	"github.com/kite-runtime/kite/pkg/poddir"
	"github.com/kite-runtime/kite/stage0/datadir"
	"golang.org/x/sys/unix"
)

// podRef is a pod that refers to an image.
type podRef struct {
	uuid    string
	running bool
}

// podsByImage finds, for each image ID, the pods whose directories refer to it, in any state, and
// whether each is running: its monitor holds the exclusive lock on the pod directory for the
// pod's whole life.
func podsByImage(dir datadir.Dir) (map[string][]podRef, error) {
	podDirs, err := filepath.Glob(filepath.Join(dir.Root, "pods", "*", "*", poddir.PodFile))
	if err != nil {
		return nil, err
	}
	out := map[string][]podRef{}
	for _, podFile := range podDirs {
		data, err := os.ReadFile(podFile)
		if err != nil {
			continue // the pod went away meanwhile
		}
		var p poddir.Pod
		if json.Unmarshal(data, &p) != nil {
			continue
		}
		ref := podRef{uuid: p.UUID, running: locked(filepath.Dir(podFile))}
		for _, a := range p.Apps {
			out[a.ImageID] = append(out[a.ImageID], ref)
		}
	}
	return out, nil
}

// locked reports whether another process holds the pod directory's lock.
func locked(podDir string) bool {
	f, err := os.Open(podDir)
	if err != nil {
		return false
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
	return errors.Is(err, unix.EWOULDBLOCK)
}
