package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/go-units"
	"github.com/kite-runtime/kite/pkg/exitcode"
	"github.com/kite-runtime/kite/stage0/imagestore"
	"go.podman.io/storage"
	"golang.org/x/term"
)

// imageAction manages the stored images:
//
//	image list [--format table|json] [--no-legend] [--quiet]
//	image inspect IMAGE
//	image rm IMAGE...                      prints the IDs it removed
//	image gc [--grace-period DURATION]     prints the IDs it removed
//	image export [--authfile F] [--quiet] IMAGE DEST
//	image verify [--format table|json] [IMAGE...]   exits 1 when it found damage
//
// IMAGE is an image reference as fetch takes it, a stored name or a unique image ID prefix.
type imageAction struct {
	verb     string
	args     []string
	format   string
	noLegend bool
	quiet    bool
	grace    time.Duration
	authFile string
}

var imageVerbArgs = map[string][2]int{ // minimum and maximum argument counts; -1 for any
	"list": {0, 0}, "inspect": {1, 1}, "rm": {1, -1}, "gc": {0, 0}, "export": {2, 2}, "verify": {0, -1},
}

func (a *imageAction) flags(fs *flag.FlagSet) {}

func (a *imageAction) parse(args []string) error {
	if len(args) == 0 {
		return usageError(errors.New("image: list, inspect, rm, gc, export or verify"))
	}
	a.verb = args[0]
	counts, ok := imageVerbArgs[a.verb]
	if !ok {
		return usageError(fmt.Errorf("image: unknown verb %q", a.verb))
	}
	fs := newFlagSet("image " + a.verb)
	fs.StringVar(&a.format, "format", "table", "table or json")
	fs.BoolVar(&a.noLegend, "no-legend", false, "no header line")
	fs.BoolVar(&a.quiet, "quiet", false, "IDs only; no progress")
	fs.DurationVar(&a.grace, "grace-period", 24*time.Hour, "keep images used this recently")
	fs.StringVar(&a.authFile, "authfile", os.Getenv("REGISTRY_AUTH_FILE"), "registry credentials")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError(fmt.Errorf("image %s: %w", a.verb, err))
	}
	a.args = fs.Args()
	if len(a.args) < counts[0] || counts[1] >= 0 && len(a.args) > counts[1] {
		return usageError(fmt.Errorf("image %s: wrong number of arguments", a.verb))
	}
	if a.format != "table" && a.format != "json" {
		return fmt.Errorf("--format: unknown value %q (valid: table, json)", a.format)
	}
	if a.grace < 0 {
		return fmt.Errorf("--grace-period: %s is negative", a.grace)
	}
	return nil
}

func (a *imageAction) needsStore() bool { return true }

func (a *imageAction) run(ctx context.Context, g *globals) error {
	return withStore(g, func(st *imagestore.Store) error { return a.runOn(ctx, g, st) })
}

func (a *imageAction) runOn(ctx context.Context, g *globals, st *imagestore.Store) error {
	switch a.verb {
	case "list":
		images, err := st.List(g.dir)
		if err != nil {
			return err
		}
		return a.printList(images)
	case "inspect":
		img, err := st.Find(a.args[0])
		if err != nil {
			return err
		}
		info, err := st.Inspect(ctx, img)
		if err != nil {
			return err
		}
		out := json.NewEncoder(os.Stdout)
		out.SetIndent("", "  ")
		return out.Encode(info)
	case "rm":
		// Resolve every name first, so that a typo removes nothing.
		var images []*storage.Image
		for _, what := range a.args {
			img, err := st.Find(what)
			if err != nil {
				return err
			}
			images = append(images, img)
		}
		for _, img := range images {
			if err := st.Remove(g.dir, img); err != nil {
				return err
			}
			fmt.Println(img.ID)
		}
		return nil
	case "gc":
		removed, err := st.GC(g.dir, a.grace)
		for _, id := range removed {
			fmt.Println(id)
		}
		return err
	case "export":
		img, err := st.Find(a.args[0])
		if err != nil {
			return err
		}
		opts := imagestore.FetchOptions{InsecureRegistries: g.insecure.Registries, AuthFile: a.authFile}
		if !a.quiet && term.IsTerminal(int(os.Stderr.Fd())) {
			opts.Progress = os.Stderr
		}
		return st.Export(ctx, img, a.args[1], opts, g.dir)
	case "verify":
		return a.verify(g, st)
	}
	return fmt.Errorf("image: unknown verb %q", a.verb)
}

func (a *imageAction) printList(images []imagestore.ImageInfo) error {
	if a.quiet {
		for _, img := range images {
			fmt.Println(img.ID)
		}
		return nil
	}
	if a.format == "json" {
		return json.NewEncoder(os.Stdout).Encode(images)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	if !a.noLegend {
		fmt.Fprintln(w, "ID\tNAMES\tDIGEST\tSIZE\tCREATED\tLAST USED")
	}
	for _, img := range images {
		names := strings.Join(img.Names, ",")
		if names == "" {
			names = "<none>"
		}
		size := "?"
		if img.Size >= 0 {
			size = units.HumanSize(float64(img.Size))
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", img.ID[:12], names, shortDigest(img.Digest), size, ago(img.Created), ago(img.LastUsed))
	}
	return w.Flush()
}

// verify reports what imagestore.Verify found and repaired; damage makes the exit status 1, so that
// a script notices.
func (a *imageAction) verify(g *globals, st *imagestore.Store) error {
	var ids []string
	for _, what := range a.args {
		img, err := st.Find(what)
		if err != nil {
			return err
		}
		ids = append(ids, img.ID)
	}
	damage, err := st.Verify(g.dir, ids)
	if a.format == "json" {
		if damage == nil {
			damage = []imagestore.Damage{}
		}
		if jerr := json.NewEncoder(os.Stdout).Encode(damage); err == nil {
			err = jerr
		}
	} else {
		for _, d := range damage {
			fate := "left in place"
			if d.Removed {
				fate = "removed; fetch it again"
			}
			fmt.Printf("%s %s: damaged (%s): %s\n", d.ID[:12], strings.Join(d.Names, ","), fate, strings.Join(d.Errors, "; "))
		}
		if len(damage) == 0 {
			fmt.Println("no damage found")
		}
	}
	if err != nil {
		return err
	}
	if len(damage) > 0 {
		return &exitcode.CodedError{Code: 1, Err: fmt.Errorf("%d damaged image(s) found", len(damage))}
	}
	return nil
}

func shortDigest(d string) string {
	if alg, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return alg + ":" + hex[:12]
	}
	return d
}

// ago says how long ago t was, as podman's listings do.
func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return units.HumanDuration(time.Since(t)) + " ago"
}
