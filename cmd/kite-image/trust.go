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

	"github.com/kite-runtime/kite/stage0/datadir"
	"github.com/kite-runtime/kite/stage0/trust"
)

// trustAction manages the keys trusted to sign registry images:
//
//	trust add (--prefix PREFIX | --root) KEYFILE
//	trust list [--format json|table] [--no-legend]
//	trust rm (--prefix PREFIX | --root)
type trustAction struct {
	verb     string
	prefix   string
	root     bool
	format   string
	noLegend bool
	keyFile  string
}

func (a *trustAction) flags(fs *flag.FlagSet) {}

func (a *trustAction) parse(args []string) error {
	if len(args) == 0 {
		return usageError(errors.New("trust: add, list or rm"))
	}
	a.verb = args[0]
	fs := newFlagSet("trust " + a.verb)
	fs.StringVar(&a.prefix, "prefix", "", "image name prefix")
	fs.BoolVar(&a.root, "root", false, "every registry image")
	fs.StringVar(&a.format, "format", "table", "json or table")
	fs.BoolVar(&a.noLegend, "no-legend", false, "no header line")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError(fmt.Errorf("trust %s: %w", a.verb, err))
	}
	rest := fs.Args()
	switch a.verb {
	case "add", "rm":
		if (a.prefix == "") == !a.root {
			return errors.New("trust: say which images the key is for: --prefix REGISTRY[/REPOSITORY] (e.g. registry.example:5000/team), or --root for every registry image")
		}
		if a.verb == "add" && len(rest) != 1 || a.verb == "rm" && len(rest) != 0 {
			return usageError(errors.New("trust add (--prefix PREFIX | --root) KEYFILE, or trust rm (--prefix PREFIX | --root)"))
		}
		if a.verb == "add" {
			a.keyFile = rest[0]
		}
		if a.prefix != "" {
			return trust.CheckPrefix(a.prefix)
		}
	case "list":
		if a.format != "json" && a.format != "table" {
			return fmt.Errorf("--format: unknown value %q (valid: json, table)", a.format)
		}
	default:
		return usageError(fmt.Errorf("trust: unknown verb %q", a.verb))
	}
	return nil
}

// needsStore is false: trust changes the user's configuration, not the store.
func (a *trustAction) needsStore() bool { return false }

func (a *trustAction) run(_ context.Context, g *globals) error {
	dir, err := datadir.ConfigDir()
	if err != nil {
		return err
	}
	c := trust.Config{Dir: dir}
	switch a.verb {
	case "add":
		e, err := c.Add(a.prefix, a.keyFile)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "kite: trusting %d key(s) for %s (policy %s)\n", len(e.Keys), describe(e.Prefix), datadir.PolicyFile(dir))
		return nil
	case "rm":
		return c.Remove(a.prefix)
	}
	entries, err := c.List()
	if err != nil {
		return err
	}
	if a.format == "json" {
		if entries == nil {
			entries = []trust.Entry{}
		}
		return json.NewEncoder(os.Stdout).Encode(entries)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	if !a.noLegend {
		fmt.Fprintln(w, "PREFIX\tTYPE\tKEYS")
	}
	for _, e := range entries {
		fmt.Fprintf(w, "%s\t%s\t%s\n", describe(e.Prefix), e.Kind, strings.Join(e.Keys, ","))
	}
	return w.Flush()
}

func describe(prefix string) string {
	if prefix == "" {
		return "(every registry image)"
	}
	return prefix
}
