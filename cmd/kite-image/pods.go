package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kite-runtime/kite/pkg/poddir"
	"github.com/kite-runtime/kite/stage0/imagestore"
	"github.com/kite-runtime/kite/stage0/pods"
)

// rmPodsAction removes pods kite has moved to DATA/pods/garbage (and locked), inside the store's
// user namespace, where the files the pods' apps made under subordinate ids can be removed:
//
//	rm-pods UUID...
//
// It removes each pod's directory, its copy of the image in a vfs store, and its name.
type rmPodsAction struct {
	uuids []string
}

func (a *rmPodsAction) flags(*flag.FlagSet) {}

func (a *rmPodsAction) parse(args []string) error {
	if len(args) == 0 {
		return usageError(errors.New("rm-pods UUID..."))
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
