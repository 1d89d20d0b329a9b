package imagestore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kite-runtime/kite/stage0/datadir"
	"github.com/kite-runtime/kite/stage0/imageindex"
	digest "github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/pkg/shortnames"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
)

// saveRecord writes the record of an image the user fetched as imageRef, and the names it is
// found by: its stored name, and for a registry image the user's own words for it, so that
// `kite run` finds it by them without the image libraries.
func saveRecord(dir datadir.Dir, rec *imageindex.Record, imageRef string, fromRegistry bool) error {
	if err := imageindex.Save(dir.Images(), rec); err != nil {
		return err
	}
	names := []string{rec.Name}
	if fromRegistry && imageRef != rec.Name {
		names = append(names, imageRef)
	}
	for _, n := range names {
		if n == "" {
			continue
		}
		if err := imageindex.SaveName(dir.Images(), n, rec.ManifestDigest); err != nil {
			return err
		}
	}
	return nil
}

// FindStored returns the record of the stored image imageRef names, by name, without opening the
// store or contacting a registry; nil if it finds none. Under PullNew only registry images are
// looked up: the file transports are read again, as a file may have changed under its name.
func FindStored(dir datadir.Dir, sys *types.SystemContext, imageRef string, policy PullPolicy) (*imageindex.Record, error) {
	ref, err := ParseReference(imageRef)
	if err != nil {
		return nil, err
	}
	fromRegistry := ref == nil || ref.Transport().Name() == "docker"
	var names []string
	switch {
	case ref == nil:
		candidates, err := shortnames.ResolveLocally(sys, imageRef)
		if err != nil {
			return nil, fmt.Errorf("resolve the short name %q: %w", imageRef, err)
		}
		for _, c := range candidates {
			names = append(names, c.String())
		}
	case fromRegistry || policy == PullNever:
		name, err := storedName(sys, ref, imageRef)
		if err != nil {
			return nil, err
		}
		names = append(names, name)
	}
	for _, n := range names {
		rec, err := imageindex.LookupName(dir.Images(), n)
		if err == nil {
			slog.Debug("image is stored", "name", n, "id", rec.ID)
			return rec, saveRecord(dir, rec, imageRef, fromRegistry)
		}
		if !errors.Is(err, imageindex.ErrNotFound) {
			return nil, err
		}
	}
	return nil, nil
}

// record describes the stored image ref resolves to.
func (s *Store) record(ctx context.Context, sys *types.SystemContext, ref types.ImageReference, name string, manifestDigest digest.Digest) (*imageindex.Record, error) {
	ref, img, err := istorage.ResolveReference(ref)
	if err != nil {
		return nil, fmt.Errorf("find the stored image: %w", err)
	}
	stored, err := ref.NewImage(ctx, sys)
	if err != nil {
		return nil, fmt.Errorf("read the stored image %s: %w", img.ID, err)
	}
	defer stored.Close()
	config, err := stored.OCIConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the config of image %s: %w", img.ID, err)
	}
	driver, err := s.GraphDriver()
	if err != nil {
		return nil, err
	}
	rec := &imageindex.Record{
		ID:             img.ID,
		Name:           name,
		ManifestDigest: manifestDigest.String(),
		Config:         runConfig(config.Config),
		Driver:         driver.String(),
		UIDMap:         s.UIDs,
		GIDMap:         s.GIDs,
	}
	switch rec.Driver {
	case "overlay":
		rec.OverlayHome = filepath.Join(s.GraphRoot(), "overlay")
		for id := img.TopLayer; id != ""; {
			layer, err := s.Layer(id)
			if err != nil {
				return nil, fmt.Errorf("find layer %s: %w", id, err)
			}
			dir, err := layerDir(driver, id)
			if err != nil {
				return nil, err
			}
			// <home>/<id>/link holds the short name of <home>/l/<name> → ../<id>/diff, which keeps
			// the options of a mount of many layers within a page.
			link, err := os.ReadFile(filepath.Join(rec.OverlayHome, id, "link"))
			if err != nil {
				return nil, fmt.Errorf("read the short name of layer %s: %w", id, err)
			}
			rec.Layers = append(rec.Layers, imageindex.Layer{ID: id, Dir: dir, Link: "l/" + strings.TrimSpace(string(link))})
			id = layer.Parent
		}
	case "vfs":
		// Each vfs layer is a whole root filesystem: the top one is the image.
		if img.TopLayer != "" {
			dir, err := layerDir(driver, img.TopLayer)
			if err != nil {
				return nil, err
			}
			rec.Layers = []imageindex.Layer{{ID: img.TopLayer, Dir: dir}}
		}
	default:
		return nil, fmt.Errorf("the store uses the %s driver, which kite does not support", rec.Driver)
	}
	return rec, nil
}

// runConfig copies what kite uses to run an image from its OCI configuration.
func runConfig(c imgspecv1.ImageConfig) imageindex.ImageConfig {
	return imageindex.ImageConfig{
		User: c.User, ExposedPorts: c.ExposedPorts, Env: c.Env, Entrypoint: c.Entrypoint, Cmd: c.Cmd,
		Volumes: c.Volumes, WorkingDir: c.WorkingDir, Labels: c.Labels, StopSignal: c.StopSignal,
	}
}
