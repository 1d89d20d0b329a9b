package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/kite-runtime/kite/pkg/poddir"
	"github.com/kite-runtime/kite/stage0/imagestore"
	"github.com/kite-runtime/kite/stage0/pods"
)

// rmPodsAction removes pods kite has moved to DATA/pods/garbage (and locked), inside the store's
// user namespace, where the files the pods' apps made under subordinate ids can be removed:
//
//	rm-pods [--orphans] UUID...
//
// It removes each pod's directory, its copy of the image in a vfs store, and its name. With
// --orphans it also removes the copies of pods that exist no more (kite gc).
type rmPodsAction struct {
	uuids   []string
	orphans bool
}

// orphanAge is how old the copy of a pod that does not exist must be for --orphans to remove
// it: far longer than kite takes from making a copy to writing its pod.
const orphanAge = 10 * time.Minute

func (a *rmPodsAction) flags(fs *flag.FlagSet) {
	fs.BoolVar(&a.orphans, "orphans", false, "also remove copies whose pod exists no more")
}

func (a *rmPodsAction) parse(args []string) error {
	if len(args) == 0 && !a.orphans {
		return usageError(errors.New("rm-pods [--orphans] UUID..."))
	}
	for _, u := range args {
		if err := pods.CheckUUID(u); err != nil {
			return err
		}
	}
	a.uuids = args
	return nil
}

func (a *rmPodsAction) needsStore() bool { return true }

func (a *rmPodsAction) run(_ context.Context, g *globals) error {
	return withStore(g, func(st *imagestore.Store) error {
		var errs []error
		for _, uuid := range a.uuids {
			errs = append(errs, removePod(g, st, uuid))
		}
		if a.orphans {
			exists := func(uuid string) bool {
				_, err := pods.Load(g.dir, uuid)
				return !errors.Is(err, os.ErrNotExist)
			}
			removed, err := st.RemoveOrphanRootfs(exists, orphanAge)
			for _, uuid := range removed {
				slog.Debug("removed the image copy of a pod that exists no more", "pod", uuid)
			}
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
}

func removePod(g *globals, st *imagestore.Store, uuid string) error {
	dir := filepath.Join(g.dir.PodsIn(poddir.GarbageDir), uuid)
	var m poddir.Pod
	poddir.ReadJSON(dir, poddir.PodFile, &m)
	if err := st.RemoveRootfs(uuid); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove pod %s: %w", uuid, err)
	}
	if m.Name != "" {
		return pods.ReleaseName(g.dir, m.Name, uuid)
	}
	return nil
}
