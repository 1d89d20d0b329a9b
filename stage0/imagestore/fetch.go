package imagestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/kite-runtime/kite/stage0/datadir"
	"github.com/kite-runtime/kite/stage0/imageindex"
	digest "github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/signature"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
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
	// RecordsOnly stops a fetch from a registry before it opens the store: once the source's
	// manifest is read and verified, Fetch returns the record of that manifest if there is one
	// for the same name, else nil. The store and its user namespace are then not needed.
	RecordsOnly bool
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
	fail := func(err error) error { return fmt.Errorf("fetch %s: %w", imageRef, explainNoSpace(err, dir)) }
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
	if opts.RecordsOnly && (len(sources) != 1 || sources[0].Ref.Transport().Name() != "docker") {
		// Only a registry is cheap to read twice; an archive would be unpacked twice.
		return nil, nil
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
	if opts.RecordsOnly {
		rec, err := imageindex.Lookup(dir.Images(), manifestDigest.String())
		if err != nil || rec.Name != from.Name {
			return nil, nil
		}
		return rec, saveRecord(dir, rec, imageRef, true)
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
	} else {
		err = s.explainApplyFailure(ctx, sys, src, err)
	}
	if err != nil {
		if cerr := s.removeAdded(before); cerr != nil {
			err = fmt.Errorf("%w (and removing what it stored failed: %v)", err, cerr)
		}
		return nil, err
	}
	return resolved, nil
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

// explainNoSpace says where the disk is full when err says it is: the storage library names the
// blob it was adding, not the directory, and its extraction runs in a child process that passes
// errors on as text, so the errno is not always there to test for.
func explainNoSpace(err error, dir datadir.Dir) error {
	if err == nil || !(errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) ||
		strings.Contains(err.Error(), syscall.ENOSPC.Error()) || strings.Contains(err.Error(), syscall.EDQUOT.Error())) {
		return err
	}
	return fmt.Errorf("%w (the filesystem of the data directory %s is full: free space there, kite image gc removes unused images, and fetch again)", err, dir.Root)
}
