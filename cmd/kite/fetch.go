package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"

	"github.com/kite-runtime/kite/pkg/exitcode"
	"github.com/kite-runtime/kite/stage0/datadir"
	"github.com/kite-runtime/kite/stage0/imageindex"
)

// storedImage returns the record of the image ref names, fetching it into the store first unless
// the store already holds that exact manifest.
func storedImage(d datadir.Dir, ref string, insecure map[string]bool, debug bool) (*imageindex.Record, error) {
	dg, ok := imageindex.ManifestDigestOfLayout(ref)
	if ok {
		rec, err := imageindex.Lookup(d.Images(), dg)
		if err == nil {
			slog.Debug("image is stored", "ref", ref, "id", rec.ID)
			return rec, nil
		}
		if !errors.Is(err, imageindex.ErrNotFound) {
			return nil, err
		}
	}
	return fetch(d, ref, insecure, debug)
}

// fetch runs kite-image, which links the image and storage libraries kite itself stays free of,
// and reads the record of the stored image from its stdout. It prints its own errors.
func fetch(d datadir.Dir, ref string, insecure map[string]bool, debug bool) (*imageindex.Record, error) {
	helper, err := libexecPath("kite-image")
	if err != nil {
		return nil, err
	}
	args := []string{"--dir", d.Root}
	if debug {
		args = append(args, "--debug")
	}
	if insecure["image"] {
		args = append(args, "--insecure-options", "image")
	}
	args = append(args, "fetch", ref)
	slog.Debug("fetching", "helper", helper, "args", args)
	var out bytes.Buffer
	cmd := exec.Command(helper, args...)
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			// kite-image has explained the failure on stderr already.
			return nil, &exitcode.CodedError{Code: exitcode.Failed, Err: errSilent}
		}
		return nil, fmt.Errorf("fetch %s: %w", ref, err)
	}
	var rec imageindex.Record
	if err := json.Unmarshal(out.Bytes(), &rec); err != nil {
		return nil, fmt.Errorf("fetch %s: read the image record from kite-image: %w", ref, err)
	}
	return &rec, nil
}

// errSilent marks a failure that was reported already.
var errSilent = errors.New("")
