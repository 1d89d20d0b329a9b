package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/kite-runtime/kite/stage0/imagestore"
)

// rootfsAction makes or removes a pod's own copy of an image, for stores without overlayfs:
//
//	rootfs --pod UUID --app NAME IMAGE-ID    prints the directory of the copy
//	rm-rootfs --pod UUID                     removes the copies of every app of the pod
type rootfsAction struct {
	remove   bool
	pod, app string
	imageID  string
}

func (a *rootfsAction) flags(fs *flag.FlagSet) {
	fs.StringVar(&a.pod, "pod", "", "pod UUID")
	fs.StringVar(&a.app, "app", "", "app name")
}

func (a *rootfsAction) parse(args []string) error {
	want := 1
	if a.remove {
		want = 0
	}
	if a.pod == "" || len(args) != want || (a.app == "") != a.remove {
		return usageError(errors.New("rootfs --pod UUID --app NAME IMAGE-ID, or rm-rootfs --pod UUID"))
	}
	if !a.remove {
		a.imageID = args[0]
	}
	return nil
}

func (a *rootfsAction) needsStore() bool { return true }

func (a *rootfsAction) run(_ context.Context, g *globals) error {
	if a.remove {
		return withStore(g, func(st *imagestore.Store) error { return st.RemoveRootfs(a.pod) })
	}
	var dir string
	err := withStore(g, func(st *imagestore.Store) (err error) {
		dir, err = st.CreateRootfs(a.pod, a.app, a.imageID)
		return err
	})
	if err != nil {
		return err
	}
	_, err = fmt.Println(dir)
	return err
}
