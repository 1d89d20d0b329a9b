package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/kite-runtime/kite/stage0/datadir"
	"github.com/kite-runtime/kite/stage0/imageindex"
	"github.com/kite-runtime/kite/stage0/imagestore"
	"go.podman.io/image/v5/types"
	"golang.org/x/term"
)

// fetchAction stores images and prints each one's imageindex.Record as a line of JSON:
//
//	fetch [--authfile FILE] [--pull-policy never|new|update] [--quiet] IMAGEREF...
type fetchAction struct {
	refs       []string
	authFile   string
	pullPolicy imagestore.PullPolicy
	pull       string
	quiet      bool
}

func (a *fetchAction) flags(fs *flag.FlagSet) {
	fs.StringVar(&a.authFile, "authfile", os.Getenv("REGISTRY_AUTH_FILE"), "registry credentials")
	fs.StringVar(&a.pull, "pull-policy", string(imagestore.PullUpdate), "never, new or update")
	fs.BoolVar(&a.quiet, "quiet", false, "no progress bars")
}

func (a *fetchAction) parse(args []string) error {
	var err error
	if a.pullPolicy, err = imagestore.ParsePullPolicy(a.pull); err != nil {
		return err
	}
	if len(args) == 0 {
		return usageError(errors.New("fetch: no image reference"))
	}
	// Refuse a bad reference before creating a user namespace for it.
	for _, ref := range args {
		if _, err := imagestore.ParseReference(ref); err != nil {
			return err
		}
	}
	a.refs = args
	return nil
}

func (a *fetchAction) needsStore() bool { return true }

// runOutside prints the records of the images to fetch and reports true when every one of them
// is stored: the pull policy lets kite use it as stored, or the registry still serves the
// manifest that was stored. The store and its user namespace are then not needed.
func (a *fetchAction) runOutside(ctx context.Context, g *globals) (bool, error) {
	opts, err := a.options(g)
	if err != nil {
		return false, err
	}
	opts.RecordsOnly = true
	opts.Progress = nil
	var recs []*imageindex.Record
	for _, ref := range a.refs {
		var rec *imageindex.Record
		if a.pullPolicy == imagestore.PullUpdate {
			rec, err = imagestore.Fetch(ctx, g.dir, ref, opts)
		} else {
			rec, err = imagestore.FindStored(g.dir, &types.SystemContext{}, ref, a.pullPolicy)
		}
		if err != nil || rec == nil {
			return false, err
		}
		recs = append(recs, rec)
	}
	a.warnUnverified(opts)
	return true, printRecords(recs...)
}

// warnUnverified says on stderr which images are used without verification.
func (a *fetchAction) warnUnverified(opts imagestore.FetchOptions) {
	if opts.Policy.Insecure {
		for _, ref := range a.refs {
			fmt.Fprintf(os.Stderr, "kite: warning: %s is not verified (--insecure-options=image)\n", ref)
		}
	}
}

// options are the fetch options of the command line and the user's configuration.
func (a *fetchAction) options(g *globals) (imagestore.FetchOptions, error) {
	config, err := datadir.ConfigDir()
	if err != nil && !g.insecure.Image {
		return imagestore.FetchOptions{}, err
	}
	policy, err := imagestore.LoadPolicy(g.insecure, datadir.PolicyFile(config))
	if err != nil {
		return imagestore.FetchOptions{}, err
	}
	opts := imagestore.FetchOptions{
		Policy:             policy,
		InsecureRegistries: g.insecure.Registries,
		AuthFile:           a.authFile,
		PullPolicy:         a.pullPolicy,
		Driver:             g.driver,
	}
	// kite trust keeps its registries.d beside the policy it writes.
	if reg := datadir.RegistriesDir(config); config != "" && isDir(reg) {
		opts.RegistriesDir = reg
	}
	if !a.quiet && term.IsTerminal(int(os.Stderr.Fd())) {
		opts.Progress = os.Stderr
	}
	return opts, nil
}

func (a *fetchAction) run(ctx context.Context, g *globals) error {
	opts, err := a.options(g)
	if err != nil {
		return err
	}
	a.warnUnverified(opts)
	for _, ref := range a.refs {
		rec, err := imagestore.Fetch(ctx, g.dir, ref, opts)
		if err != nil {
			return err
		}
		if err := printRecords(rec); err != nil {
			return err
		}
	}
	return nil
}

func printRecords(recs ...*imageindex.Record) error {
	out := json.NewEncoder(os.Stdout)
	for _, rec := range recs {
		if err := out.Encode(rec); err != nil {
			return err
		}
	}
	return nil
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
