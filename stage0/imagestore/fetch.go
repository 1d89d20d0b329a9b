package imagestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/kite-runtime/kite/stage0/datadir"
	"github.com/kite-runtime/kite/stage0/imageindex"
	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/pkg/shortnames"
	"go.podman.io/image/v5/signature"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
	graphdriver "go.podman.io/storage/drivers"
)

// FetchOptions tune a fetch.
type FetchOptions struct {
	Policy *Policy
	// Progress receives the image library's progress report; nil for none. The library draws
	// progress bars when it is a terminal.
	Progress io.Writer
	// InsecureRegistries lets registries answer over plain HTTP, or over TLS with a certificate
	// that does not verify.
	InsecureRegistries bool
	// AuthFile is the registry credentials file; "" for the image library's default search
	// ($XDG_RUNTIME_DIR/containers/auth.json, then ~/.docker/config.json).
	AuthFile string
	// RegistriesDir holds the registries.d files that say where signatures are; "" for the image
	// library's default.
	RegistriesDir string
	// PullPolicy says whether a stored image is used without contacting its source.
	PullPolicy PullPolicy
	// Driver is the graph driver for a new store; "" lets kite choose.
	Driver string
}

// PullPolicy says when a fetch contacts the source of an image that is already stored (rkt's
// --pull-policy).
type PullPolicy string

const (
	// PullNever uses stored images only.
	PullNever PullPolicy = "never"
	// PullNew contacts a registry only for an image not stored under its name yet.
	PullNew PullPolicy = "new"
	// PullUpdate always reads the source, and copies the image when it changed.
	PullUpdate PullPolicy = "update"
)

// ParsePullPolicy checks a --pull-policy value.
func ParsePullPolicy(s string) (PullPolicy, error) {
	switch p := PullPolicy(s); p {
	case PullNever, PullNew, PullUpdate:
		return p, nil
	}
	return "", fmt.Errorf("--pull-policy: unknown value %q (valid: never, new, update)", s)
}

// systemContext is the image library's configuration for a fetch into dir; its temporary files
// (an unpacked archive, a layer being downloaded) go to tmp, a directory of newTempDir.
func (o FetchOptions) systemContext(dir datadir.Dir, tmp string) *types.SystemContext {
	sys := &types.SystemContext{
		// Keep the blob info cache in kite's store, not in podman's directories.
		BlobInfoCacheDir:        filepath.Join(dir.Storage(), "blob-info-cache"),
		BigFilesTemporaryDir:    tmp,
		AuthFilePath:            o.AuthFile,
		RegistriesDirPath:       o.RegistriesDir,
		DockerRegistryUserAgent: "kite",
	}
	if o.InsecureRegistries {
		// The docker transport falls back to plain HTTP only when TLS verification is off.
		sys.DockerInsecureSkipTLSVerify = types.OptionalBoolTrue
	}
	return sys
}

// Fetch copies the image imageRef names into the store below dir, unless it is there already,
// writes its record and returns it. A failed fetch leaves no image, layer or record behind.
func Fetch(ctx context.Context, dir datadir.Dir, imageRef string, opts FetchOptions) (*imageindex.Record, error) {
	fail := func(err error) error { return fmt.Errorf("fetch %s: %w", imageRef, err) }
	tmp, release, err := newTempDir(dir)
	if err != nil {
		return nil, fail(err)
	}
	defer release()
	sys := opts.systemContext(dir, tmp)
	if opts.PullPolicy != PullUpdate {
		rec, err := FindStored(dir, sys, imageRef, opts.PullPolicy)
		if rec != nil || err != nil {
			return rec, err
		}
		if opts.PullPolicy == PullNever {
			return nil, fmt.Errorf("image %s is not stored, and --pull-policy=never forbids fetching it; fetch it first with kite fetch %s", imageRef, imageRef)
		}
	}
	sources, err := Sources(sys, imageRef)
	if err != nil {
		return nil, err
	}
	if len(sources) == 1 {
		rec, err := fetchFrom(ctx, dir, sys, imageRef, sources[0], opts)
		if err != nil && !errors.Is(err, errRejected) {
			err = fail(err)
		}
		return rec, err
	}
	// A short name: the first registry that has the image wins, as with podman.
	var errs []error
	for _, src := range sources {
		rec, err := fetchFrom(ctx, dir, sys, src.Name, src, opts)
		if err == nil {
			return rec, saveRecord(dir, rec, imageRef, true)
		}
		if ctx.Err() != nil {
			return nil, fail(err)
		}
		errs = append(errs, fmt.Errorf("%s: %w", src.Name, err))
	}
	return nil, fail(errors.Join(errs...))
}

// fetchFrom fetches the image src refers to, which the user called imageRef.
func fetchFrom(ctx context.Context, dir datadir.Dir, sys *types.SystemContext, imageRef string, from Source, opts FetchOptions) (*imageindex.Record, error) {
	// The source stays open for the copy, so that the manifest whose digest keys the record is the
	// one copied, and an archive is unpacked once.
	src, err := from.Ref.NewImageSource(ctx, sys)
	if err != nil {
		return nil, explainOpenError(imageRef, err)
	}
	defer src.Close()
	manifestBlob, manifestType, err := src.GetManifest(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	manifestDigest := digest.FromBytes(manifestBlob)
	slog.Debug("source manifest", "digest", manifestDigest, "type", manifestType)
	if err := checkLayoutDigest(imageRef, manifestDigest); err != nil {
		return nil, err
	}

	// Verify before the store is touched: a rejected image leaves nothing behind.
	pc, err := signature.NewPolicyContext(opts.Policy.Policy)
	if err != nil {
		return nil, err
	}
	defer pc.Destroy()
	if allowed, err := pc.IsRunningImageAllowed(ctx, image.UnparsedInstance(src, nil)); !allowed {
		var rejected signature.PolicyRequirementError
		var invalid signature.InvalidSignatureError
		if err == nil || errors.As(err, &rejected) || errors.As(err, &invalid) {
			return nil, opts.Policy.rejection(imageRef, from.Ref, err)
		}
		return nil, fmt.Errorf("verify signatures: %w", err)
	}

	st, err := Open(dir, opts.Driver)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	slog.Debug("store open")

	resolved, err := st.stored(manifestDigest, from.Name)
	if err != nil {
		return nil, err
	}
	if resolved == nil {
		if err := checkPlatform(ctx, sys, src); err != nil {
			return nil, err
		}
		if resolved, err = st.copy(ctx, sys, openedReference{ImageReference: from.Ref, src: src, seen: &seenLayers{byDigest: map[digest.Digest]*layerDirs{}}}, from.Name, opts.Progress); err != nil {
			return nil, err
		}
	}
	slog.Debug("image stored", "ref", resolved.StringWithinTransport())
	rec, err := st.record(ctx, sys, resolved, from.Name, manifestDigest)
	if err == nil {
		err = saveRecord(dir, rec, imageRef, from.Ref.Transport().Name() == "docker")
	}
	if err != nil {
		// The image stays: it is whole, and the next fetch writes its record again.
		return nil, err
	}
	return rec, nil
}

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

// stored returns a reference to the stored image fetched by manifestDigest, named name, or nil
// if there is none. Finding it here saves the copy's reading of the source and rewriting of the
// store's metadata.
func (s *Store) stored(manifestDigest digest.Digest, name string) (types.ImageReference, error) {
	// The storage destination keeps each manifest it stores, the top-level list included, as big
	// data named after its digest; ImagesByDigest searches those.
	images, err := s.ImagesByDigest(manifestDigest)
	if err != nil || len(images) == 0 {
		return nil, nil
	}
	img := images[0]
	slog.Debug("image already stored", "id", img.ID)
	if name != "" {
		// A name is on one image at a time: this takes it from another image that has it.
		if err := s.AddNames(img.ID, []string{name}); err != nil {
			return nil, fmt.Errorf("name image %s %s: %w", img.ID, name, err)
		}
	}
	return istorage.Transport.NewStoreReference(s.Store, nil, img.ID)
}

// copy copies the image src refers to into the store and returns a reference to the copy. If the
// copy fails, what it stored is removed.
func (s *Store) copy(ctx context.Context, sys *types.SystemContext, src openedReference, name string, progress io.Writer) (types.ImageReference, error) {
	var dest types.ImageReference
	var err error
	if name != "" {
		dest, err = istorage.Transport.ParseStoreReference(s.Store, name)
	} else {
		// The storage destination needs a name or an ID; without a name, use the ID it would
		// pick for a named copy.
		var id string
		if id, err = configID(ctx, sys, src.src); err == nil {
			dest, err = istorage.Transport.NewStoreReference(s.Store, nil, id)
		}
	}
	if err != nil {
		return nil, err
	}
	before, err := s.contents()
	if err != nil {
		return nil, err
	}
	// fetchFrom verified the signatures on this very source, whose manifest the copy reads again
	// from its cache, and the copy checks every blob against that manifest. The copy cannot check
	// them itself: through checkedSource it sees only the public image source interface, which
	// has no sigstore signatures.
	acceptVerified, err := signature.NewPolicyContext(&signature.Policy{Default: signature.PolicyRequirements{signature.NewPRInsecureAcceptAnything()}})
	if err != nil {
		return nil, err
	}
	defer acceptVerified.Destroy()
	var resolved types.ImageReference
	_, err = copy.Image(ctx, acceptVerified, dest, src, &copy.Options{
		ReportWriter:       progress,
		SourceCtx:          sys,
		DestinationCtx:     sys,
		ImageListSelection: copy.CopySystemImage,
		// Not OptimizeDestinationImageAlreadyExists: with a containers-storage destination the
		// skipped copy never calls PutManifest, and the commit fails. Fetch finds stored images
		// itself.
		ReportResolvedReference: &resolved,
	})
	if err == nil {
		err = s.checkLowerSymlinks(resolved, src.seen)
	}
	if err != nil {
		if cerr := s.removeAdded(before); cerr != nil {
			err = fmt.Errorf("%w (and removing what it stored failed: %v)", err, cerr)
		}
		return nil, err
	}
	return resolved, nil
}

// explainOpenError says what is wrong when the image imageRef names cannot be opened, and how to
// fix it: the image library's messages omit the path of a file, and the flag or command a
// registry error calls for.
func explainOpenError(imageRef string, err error) error {
	transport, rest, _ := strings.Cut(imageRef, ":")
	if transport != "oci" && transport != "oci-archive" && transport != "docker-archive" {
		return explainRegistryError(err)
	}
	path, _, _ := strings.Cut(rest, ":")
	st, statErr := os.Stat(path)
	switch {
	case errors.Is(statErr, fs.ErrNotExist):
		return fmt.Errorf("%s does not exist", path)
	case statErr == nil && transport == "oci" && !st.IsDir():
		return fmt.Errorf("%s is not an OCI image layout directory; for an archive use oci-archive:%s", path, rest)
	case statErr == nil && transport != "oci" && st.IsDir():
		return fmt.Errorf("%s is a directory; for an OCI image layout use oci:%s", path, rest)
	}
	switch transport {
	case "oci":
		if _, statErr := os.Stat(filepath.Join(path, "index.json")); errors.Is(statErr, fs.ErrNotExist) {
			return fmt.Errorf("%s is not an OCI image layout: it has no index.json", path)
		}
		return fmt.Errorf("read OCI image layout %s: %w", path, err)
	case "oci-archive":
		return fmt.Errorf("read OCI archive %s: %w", path, err)
	}
	return fmt.Errorf("read docker archive %s: %w", path, err)
}

// explainRegistryError adds the fix to a registry error whose cause kite can tell.
func explainRegistryError(err error) error {
	msg := err.Error()
	var unauthorized docker.ErrUnauthorizedForCredentials
	switch {
	case errors.As(err, &unauthorized) || strings.Contains(msg, "authentication required") || strings.Contains(msg, "unauthorized"):
		return fmt.Errorf("%w; log in with kite login REGISTRY, or give a credentials file with --authfile", err)
	case strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		return fmt.Errorf("%w; if the registry is meant to be plain HTTP, mark it insecure in registries.conf or use --insecure-options=http", err)
	case strings.Contains(msg, "x509:") || strings.Contains(msg, "certificate"):
		return fmt.Errorf("%w; add the registry's CA under /etc/containers/certs.d/HOST:PORT/, or use --insecure-options=tls", err)
	}
	return err
}

// openedReference is a source reference whose image source is already open and verified; the
// copy reads it through checkedSource and leaves closing it to Fetch.
type openedReference struct {
	types.ImageReference
	src  types.ImageSource
	seen *seenLayers
}

func (r openedReference) NewImageSource(context.Context, *types.SystemContext) (types.ImageSource, error) {
	return checkedSource{ImageSource: r.src, seen: r.seen}, nil
}

// chosenImage is the image of src that a copy stores: the instance for this platform if the
// manifest is a list.
func chosenImage(ctx context.Context, sys *types.SystemContext, src types.ImageSource) (types.Image, error) {
	blob, mimeType, err := src.GetManifest(ctx, nil)
	if err != nil {
		return nil, err
	}
	var instance *digest.Digest
	if manifest.MIMETypeIsMultiImage(mimeType) {
		list, err := manifest.ListFromBlob(blob, mimeType)
		if err != nil {
			return nil, err
		}
		d, err := list.ChooseInstance(sys)
		if err != nil {
			return nil, err
		}
		instance = &d
	}
	return image.FromUnparsedImage(ctx, sys, image.UnparsedInstance(src, instance))
}

// configID is the ID the storage destination gives an image: its config's digest.
func configID(ctx context.Context, sys *types.SystemContext, src types.ImageSource) (string, error) {
	img, err := chosenImage(ctx, sys, src)
	if err != nil {
		return "", err
	}
	return img.ConfigInfo().Digest.Encoded(), nil
}

// checkPlatform refuses an image built for another system: the image library only logs that.
func checkPlatform(ctx context.Context, sys *types.SystemContext, src types.ImageSource) error {
	img, err := chosenImage(ctx, sys, src)
	if err != nil {
		return err
	}
	config, err := img.OCIConfig(ctx)
	if err != nil {
		return fmt.Errorf("read the image configuration: %w", err)
	}
	if config.OS != "linux" || config.Architecture != runtime.GOARCH {
		return fmt.Errorf("the image is built for %s/%s; kite runs linux/%s images", config.OS, config.Architecture, runtime.GOARCH)
	}
	return nil
}

// checkLayoutDigest compares the manifest an OCI layout gave with the digest its index.json
// names: the image library's layout reader does not.
func checkLayoutDigest(imageRef string, got digest.Digest) error {
	want, ok := imageindex.ManifestDigestOfLayout(imageRef)
	if ok && want != got.String() {
		return fmt.Errorf("the manifest does not match its digest: index.json names %s, the manifest's content is %s", want, got)
	}
	return nil
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
			meta, err := driver.Metadata(id)
			if err != nil || meta["UpperDir"] == "" {
				return nil, fmt.Errorf("find the directory of layer %s: %w", id, err)
			}
			// <home>/<id>/link holds the short name of <home>/l/<name> → ../<id>/diff, which keeps
			// the options of a mount of many layers within a page.
			link, err := os.ReadFile(filepath.Join(rec.OverlayHome, id, "link"))
			if err != nil {
				return nil, fmt.Errorf("read the short name of layer %s: %w", id, err)
			}
			rec.Layers = append(rec.Layers, imageindex.Layer{ID: id, Dir: meta["UpperDir"], Link: "l/" + strings.TrimSpace(string(link))})
			id = layer.Parent
		}
	case "vfs":
		// Each vfs layer is a whole root filesystem: the top one is the image.
		if img.TopLayer != "" {
			dir, err := driver.Get(img.TopLayer, graphdriver.MountOpts{})
			if err != nil {
				return nil, fmt.Errorf("find the directory of layer %s: %w", img.TopLayer, err)
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
