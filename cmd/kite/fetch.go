package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/kite-runtime/kite/stage0/datadir"
	"github.com/kite-runtime/kite/stage0/imageindex"
	"github.com/urfave/cli/v2"
)

func fetchCommand() *cli.Command {
	return &cli.Command{
		Name:      "fetch",
		Usage:     "fetch images into the store and print their IDs",
		ArgsUsage: "IMAGE...",
		Description: `Copies each IMAGE into kite's store, verifying it first, and prints its image
ID on a line of its own. Layers already stored are not copied again.

IMAGE is one of:
   docker://HOST/REPO[:TAG|@DIGEST]   an image in a registry
   NAME[:TAG]                         the same, registry from registries.conf
                                      (short names resolve through its aliases
                                      and unqualified-search-registries)
   docker-archive:PATH[:NAME]         a docker save archive
   oci:PATH[:REF]                     an OCI image layout directory
   oci-archive:PATH[:REF]             a tar of an OCI image layout

Registry images must be signed by a key you trust (see kite trust), unless
--insecure-options=image is given; images from local files are accepted.
Credentials come from kite login (the containers auth.json podman uses) or
docker's config.json; mirrors and insecure registries from registries.conf.

Examples:
   kite fetch docker://registry.example:5000/team/app:1.2
   kite fetch oci-archive:./app.tar docker-archive:./app-docker.tar oci:./layout:tag`,
		Flags: append(fetchFlags(pullUpdate),
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress bars"},
		),
		OnUsageError: usageError,
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return errors.New("fetch: no image given: kite fetch IMAGE...")
			}
			req, err := newFetchRequest(c)
			if err != nil {
				return err
			}
			recs, err := req.fetch(c.Args().Slice()...)
			if err != nil {
				return err
			}
			for _, rec := range recs {
				req.markUsed(rec)
				fmt.Println(rec.ID)
			}
			return nil
		},
	}
}

const (
	pullNever  = "never"
	pullNew    = "new"
	pullUpdate = "update"
)

// fetchFlags are the flags of the commands that fetch.
func fetchFlags(defaultPolicy string) []cli.Flag {
	return []cli.Flag{
		insecureFlag(),
		&cli.StringFlag{Name: "pull-policy", Value: defaultPolicy, Usage: "when to contact the image's source: never (stored images only), new (only for an image not stored yet) or update (always, copying what changed)"},
		&cli.StringFlag{Name: "authfile", Usage: "registry credentials `FILE` (default: $REGISTRY_AUTH_FILE, else the containers auth.json that kite login writes, else docker's config.json)", EnvVars: []string{"REGISTRY_AUTH_FILE"}},
	}
}

// fetchRequest is how one kite command wants images fetched.
type fetchRequest struct {
	helper     *imageHelper
	dir        datadir.Dir
	pullPolicy string
	authFile   string
	quiet      bool
}

func newFetchRequest(c *cli.Context) (*fetchRequest, error) {
	h, err := newImageHelper(c)
	if err != nil {
		return nil, err
	}
	policy := c.String("pull-policy")
	if policy != pullNever && policy != pullNew && policy != pullUpdate {
		return nil, fmt.Errorf("--pull-policy: unknown value %q (valid: never, new, update)", policy)
	}
	return &fetchRequest{helper: h, dir: h.dir, pullPolicy: policy, authFile: c.String("authfile"), quiet: c.Bool("quiet")}, nil
}

// storedImage returns the record of the image ref names, from the store when the pull policy
// allows, else fetched.
func (r *fetchRequest) storedImage(ref string) (*imageindex.Record, error) {
	rec, err := r.findOrFetch(ref)
	if err != nil {
		return nil, err
	}
	r.markUsed(rec)
	return rec, nil
}

// markUsed records a use of the image for kite image gc; an image whose use cannot be recorded is
// still used.
func (r *fetchRequest) markUsed(rec *imageindex.Record) {
	if err := imageindex.MarkUsed(r.dir.Images(), rec.ManifestDigest); err != nil {
		slog.Debug("record the use of the image", "error", err)
	}
}

func (r *fetchRequest) findOrFetch(ref string) (*imageindex.Record, error) {
	// An OCI layout is found by the manifest it holds now, so a changed layout is fetched again.
	if dg, ok := imageindex.ManifestDigestOfLayout(ref); ok {
		if rec, err := found(imageindex.Lookup(r.dir.Images(), dg)); rec != nil || err != nil {
			return rec, err
		}
	}
	if r.pullPolicy != pullUpdate {
		// kite-image records registry images under the words they were fetched by.
		if rec, err := found(imageindex.LookupName(r.dir.Images(), ref)); rec != nil || err != nil {
			return rec, err
		}
	}
	recs, err := r.fetch(ref)
	if err != nil {
		return nil, err
	}
	return recs[0], nil
}

func found(rec *imageindex.Record, err error) (*imageindex.Record, error) {
	if errors.Is(err, imageindex.ErrNotFound) {
		return nil, nil
	}
	if rec != nil {
		slog.Debug("image is stored", "id", rec.ID)
	}
	return rec, err
}

// fetch runs kite-image to fetch refs, and reads the records of the stored images from its
// stdout.
func (r *fetchRequest) fetch(refs ...string) ([]*imageindex.Record, error) {
	args := []string{"fetch", "--pull-policy", r.pullPolicy}
	if r.authFile != "" {
		args = append(args, "--authfile", r.authFile)
	}
	if r.quiet {
		args = append(args, "--quiet")
	}
	slog.Debug("fetching", "refs", refs)
	out, err := r.helper.run(append(append(args, "--"), refs...)...)
	if err != nil {
		return nil, err
	}
	var recs []*imageindex.Record
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var rec imageindex.Record
		if err := dec.Decode(&rec); err != nil {
			return nil, fmt.Errorf("read the image records from kite-image: %w", err)
		}
		recs = append(recs, &rec)
	}
	if len(recs) != len(refs) {
		return nil, fmt.Errorf("kite-image printed %d image records for %d images", len(recs), len(refs))
	}
	return recs, nil
}
