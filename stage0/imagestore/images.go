package imagestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kite-runtime/kite/stage0/datadir"
	"github.com/kite-runtime/kite/stage0/imageindex"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/pkg/shortnames"
	"go.podman.io/image/v5/signature"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
)

// ImageInfo describes a stored image for kite image list.
type ImageInfo struct {
	ID       string    `json:"id"`
	Names    []string  `json:"names"`
	Digest   string    `json:"digest"`
	Size     int64     `json:"size"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"lastUsed"`
	// Pods are the pods whose directories refer to the image.
	Pods []string `json:"pods,omitempty"`
}

// List describes every stored image, most recently created first.
func (s *Store) List(dir datadir.Dir) ([]ImageInfo, error) {
	images, err := s.Store.Images()
	if err != nil {
		return nil, err
	}
	lastUsed, err := lastUses(dir)
	if err != nil {
		return nil, err
	}
	pods, err := podsByImage(dir)
	if err != nil {
		return nil, err
	}
	out := make([]ImageInfo, 0, len(images))
	for _, img := range images {
		size, err := s.ImageSize(img.ID)
		if err != nil {
			size = -1
		}
		info := ImageInfo{ID: img.ID, Names: img.Names, Digest: img.Digest.String(), Size: size, Created: img.Created, LastUsed: lastUsed[img.ID]}
		for _, p := range pods[img.ID] {
			info.Pods = append(info.Pods, p.uuid)
		}
		if info.Names == nil {
			info.Names = []string{}
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// lastUses returns when each image ID was last fetched or run: the newest of its records.
func lastUses(dir datadir.Dir) (map[string]time.Time, error) {
	recs, err := imageindex.All(dir.Images())
	if err != nil {
		return nil, err
	}
	out := map[string]time.Time{}
	for _, r := range recs {
		if r.LastUsed.After(out[r.ID]) {
			out[r.ID] = r.LastUsed
		}
	}
	return out, nil
}

// Find returns the stored image that what names: an image reference as kite fetch takes it, a
// name as stored (e.g. localhost/app:1 or docker.io/library/busybox:latest), or a unique prefix of
// an image ID.
func (s *Store) Find(what string) (*storage.Image, error) {
	if what == "" {
		return nil, errors.New("no image given")
	}
	// Names and full IDs first, then the forms that need resolving into a name.
	if img, err := s.Image(what); err == nil {
		return img, nil
	}
	var candidates []string
	if ref, err := ParseReference(what); err == nil && ref != nil {
		if name, err := storedName(&types.SystemContext{}, ref, what); err == nil && name != "" {
			candidates = append(candidates, name)
		}
	} else if err == nil {
		named, err := shortnames.ResolveLocally(&types.SystemContext{}, what)
		if err == nil {
			for _, n := range named {
				candidates = append(candidates, n.String())
			}
		}
	}
	for _, c := range candidates {
		if img, err := s.Image(c); err == nil {
			return img, nil
		}
	}
	if img, err := s.byIDPrefix(what); img != nil || err != nil {
		return img, err
	}
	return nil, fmt.Errorf("image %s is not stored; see kite image list", what)
}

func (s *Store) byIDPrefix(prefix string) (*storage.Image, error) {
	if strings.Trim(prefix, "0123456789abcdef") != "" {
		return nil, nil
	}
	images, err := s.Store.Images()
	if err != nil {
		return nil, err
	}
	var found []*storage.Image
	for i := range images {
		if strings.HasPrefix(images[i].ID, prefix) {
			found = append(found, &images[i])
		}
	}
	if len(found) > 1 {
		return nil, fmt.Errorf("image ID prefix %s is ambiguous: %d images start with it; give more digits", prefix, len(found))
	}
	if len(found) == 1 {
		return found[0], nil
	}
	return nil, nil
}

// Remove deletes the image img, its records and the layers no other image uses. It refuses while a
// running pod uses the image: the pod's root filesystem is made of its layers.
func (s *Store) Remove(dir datadir.Dir, img *storage.Image) error {
	pods, err := podsByImage(dir)
	if err != nil {
		return err
	}
	for _, p := range pods[img.ID] {
		if p.running {
			return fmt.Errorf("image %s is used by running pod %s; stop the pod first", shortID(img.ID), p.uuid)
		}
	}
	return s.remove(dir, img.ID)
}

func (s *Store) remove(dir datadir.Dir, id string) error {
	// Found before anything is removed.
	pods, err := s.podCopies(id)
	if err != nil {
		return err
	}
	if len(pods) > 0 {
		return fmt.Errorf("image %s is copied into the root filesystem of pod %s; remove the pod first", shortID(id), strings.Join(pods, ", "))
	}
	// Records first: a record must never point at a removed image, while an image left without
	// records is merely fetched again.
	if err := s.removeRecords(dir, id); err != nil {
		return fmt.Errorf("remove the records of image %s: %w", shortID(id), err)
	}
	if _, err := s.DeleteImage(id, true); err != nil && !errors.Is(err, storage.ErrImageUnknown) {
		return fmt.Errorf("remove image %s: %w", shortID(id), err)
	}
	slog.Debug("removed image", "id", id)
	return nil
}

// podCopies returns the pods whose root filesystem is a copy of image id: a vfs store's pods run
// on copies, which are storage containers, and the image cannot go while they exist.
func (s *Store) podCopies(id string) ([]string, error) {
	containers, err := s.Containers()
	if err != nil {
		return nil, err
	}
	var pods []string
	for _, c := range containers {
		if c.ImageID == id {
			for _, name := range c.Names {
				if uuid := podOfRootfs(name); uuid != "" {
					pods = append(pods, uuid)
				}
			}
		}
	}
	return pods, nil
}

// GC removes the images not used for grace and not referred to by any pod, the layers no image
// uses (left by a fetch that was killed), and records of images that are gone. It returns the IDs
// of the images it removed.
func (s *Store) GC(dir datadir.Dir, grace time.Duration) ([]string, error) {
	images, err := s.List(dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	cutoff := time.Now().Add(-grace)
	for _, img := range images {
		if len(img.Pods) > 0 || img.LastUsed.After(cutoff) {
			continue
		}
		// A copy whose pod directory is gone keeps its image until the copy is removed.
		if copies, err := s.podCopies(img.ID); err != nil || len(copies) > 0 {
			if err != nil {
				return removed, err
			}
			slog.Debug("image gc keeps an image pods copied", "id", img.ID, "pods", copies)
			continue
		}
		if err := s.remove(dir, img.ID); err != nil {
			return removed, err
		}
		removed = append(removed, img.ID)
	}
	if err := s.removeUnusedLayers(); err != nil {
		return removed, err
	}
	// A fetch killed with its helper (SIGKILL to its process group) leaves its temporary files,
	// a partial layer blob among them, until the next fetch; gc is where a user reclaims space.
	removeAbandonedFetches(dir)
	return removed, s.removeStaleRecords(dir)
}

// removeUnusedLayers deletes layers that no image and no container is built on.
func (s *Store) removeUnusedLayers() error {
	used := map[string]bool{}
	images, err := s.Store.Images()
	if err != nil {
		return err
	}
	containers, err := s.Containers()
	if err != nil {
		return err
	}
	layers, err := s.Layers()
	if err != nil {
		return err
	}
	parent := map[string]string{}
	for _, l := range layers {
		parent[l.ID] = l.Parent
	}
	var tops []string
	for _, img := range images {
		tops = append(tops, img.TopLayer)
		tops = append(tops, img.MappedTopLayers...)
	}
	for _, c := range containers {
		tops = append(tops, c.LayerID)
	}
	for _, top := range tops {
		for id := top; id != "" && !used[id]; id = parent[id] {
			used[id] = true
		}
	}
	// removeAdded deletes the images and layers not in the set it keeps, children first.
	keep := contents{layers: used, images: map[string]bool{}, scratch: map[string]bool{}}
	for _, img := range images {
		keep.images[img.ID] = true
	}
	for _, d := range s.scratchDirs() {
		keep.scratch[d] = true
	}
	return s.removeAdded(keep)
}

// removeStaleRecords deletes the records of images that are no longer stored.
func (s *Store) removeStaleRecords(dir datadir.Dir) error {
	recs, err := imageindex.All(dir.Images())
	if err != nil {
		return err
	}
	for _, r := range recs {
		if _, err := s.Image(r.ID); errors.Is(err, storage.ErrImageUnknown) {
			if err := imageindex.Delete(dir.Images(), r.ManifestDigest); err != nil {
				return err
			}
		}
	}
	return nil
}

// Damage is what kite image verify found wrong with one image.
type Damage struct {
	ID      string   `json:"id"`
	Names   []string `json:"names"`
	Errors  []string `json:"errors"`
	Removed bool     `json:"removed"`
}

// Verify re-reads the stored layers of the images ids (all when empty) and checks them against
// their digests; damaged images and layers are removed, so that the next fetch stores them again.
func (s *Store) Verify(dir datadir.Dir, ids []string) ([]Damage, error) {
	// Layers no image uses are not the user's concern here; gc removes them.
	never := 100 * 365 * 24 * time.Hour
	opts := storage.CheckMost()
	opts.LayerUnreferencedMaximumAge = &never
	report, err := s.Check(opts)
	if err != nil {
		return nil, fmt.Errorf("check the store: %w", err)
	}
	var out []Damage
	for id, errs := range report.Images {
		if len(ids) > 0 && !slices.Contains(ids, id) {
			continue
		}
		d := Damage{ID: id, Names: []string{}}
		if img, err := s.Image(id); err == nil && img.Names != nil {
			d.Names = img.Names
		}
		for _, e := range errs {
			d.Errors = append(d.Errors, e.Error())
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if len(out) == 0 {
		return nil, nil
	}
	// Repair everything the check found: the images asked about and what depends on the same
	// damaged layers. Records go first, as in Remove.
	for id := range report.Images {
		if err := s.removeRecords(dir, id); err != nil {
			return out, err
		}
	}
	if errs := s.Repair(report, &storage.RepairOptions{RemoveContainers: true}); len(errs) > 0 {
		return out, fmt.Errorf("repair the store: %w", errors.Join(errs...))
	}
	for i := range out {
		_, err := s.Image(out[i].ID)
		out[i].Removed = errors.Is(err, storage.ErrImageUnknown)
	}
	return out, nil
}

func (s *Store) removeRecords(dir datadir.Dir, id string) error {
	recs, err := imageindex.All(dir.Images())
	if err != nil {
		return err
	}
	for _, r := range recs {
		if r.ID == id {
			if err := imageindex.Delete(dir.Images(), r.ManifestDigest); err != nil {
				return err
			}
		}
	}
	return nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Inspection is what kite image inspect prints: the stored image and its manifest and config as
// stored (rkt's image cat-manifest).
type Inspection struct {
	ID       string          `json:"id"`
	Names    []string        `json:"names"`
	Digest   string          `json:"digest"`
	Created  time.Time       `json:"created"`
	Size     int64           `json:"size"`
	Layers   []string        `json:"layers"`
	Manifest json.RawMessage `json:"manifest"`
	Config   json.RawMessage `json:"config"`
}

// Inspect reads img's manifest and config from the store.
func (s *Store) Inspect(ctx context.Context, img *storage.Image) (*Inspection, error) {
	ref, err := istorage.Transport.NewStoreReference(s.Store, nil, img.ID)
	if err != nil {
		return nil, err
	}
	stored, err := ref.NewImage(ctx, &types.SystemContext{})
	if err != nil {
		return nil, fmt.Errorf("read image %s: %w", shortID(img.ID), err)
	}
	defer stored.Close()
	manifestBlob, _, err := stored.Manifest(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the manifest of image %s: %w", shortID(img.ID), err)
	}
	config, err := stored.ConfigBlob(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the config of image %s: %w", shortID(img.ID), err)
	}
	size, _ := s.ImageSize(img.ID)
	out := &Inspection{ID: img.ID, Names: img.Names, Digest: img.Digest.String(), Created: img.Created, Size: size,
		Layers: []string{}, Manifest: manifestBlob, Config: config}
	if out.Names == nil {
		out.Names = []string{}
	}
	for _, l := range stored.LayerInfos() {
		out.Layers = append(out.Layers, l.Digest.String())
	}
	return out, nil
}

// Export copies img to the image reference dest (any transport of the image library but the
// store's own), e.g. oci-archive:out.tar or docker://registry.example/app:1.
func (s *Store) Export(ctx context.Context, img *storage.Image, dest string, opts FetchOptions, dir datadir.Dir) error {
	destRef, err := parseTransportReference(dest)
	if err != nil {
		return fmt.Errorf("parse destination %q: %w; use oci-archive:PATH, docker-archive:PATH, oci:PATH[:REF] or docker://HOST/REPO:TAG", dest, err)
	}
	// A docker archive without a name would load as an unnamed image elsewhere.
	if destRef.Transport().Name() == "docker-archive" && destRef.DockerReference() == nil && len(img.Names) > 0 {
		if named, err := parseTransportReference(dest + ":" + img.Names[0]); err == nil {
			destRef = named
		}
	}
	srcRef, err := istorage.Transport.NewStoreReference(s.Store, nil, img.ID)
	if err != nil {
		return err
	}
	tmp, release, err := newTempDir(dir)
	if err != nil {
		return err
	}
	defer release()
	sys := opts.systemContext(dir, tmp)
	// The image is in kite's store already, verified when it was fetched.
	pc, err := signature.NewPolicyContext(&signature.Policy{Default: signature.PolicyRequirements{signature.NewPRInsecureAcceptAnything()}})
	if err != nil {
		return err
	}
	defer pc.Destroy()
	_, err = copy.Image(ctx, pc, destRef, srcRef, &copy.Options{ReportWriter: opts.Progress, SourceCtx: sys, DestinationCtx: sys})
	if err != nil {
		return fmt.Errorf("export image %s to %s: %w", shortID(img.ID), dest, explainRegistryError(err))
	}
	return nil
}
