package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

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
	args := []string{}
	if insecure["image"] {
		args = append(args, "--insecure-options", "image")
	}
	slog.Debug("fetching", "ref", ref)
	out, err := runImageHelper(d, debug, append(args, "fetch", ref)...)
	if err != nil {
		return nil, err
	}
	var rec imageindex.Record
	if err := json.Unmarshal(out, &rec); err != nil {
		return nil, fmt.Errorf("fetch %s: read the image record from kite-image: %w", ref, err)
	}
	return &rec, nil
}

// errSilent marks a failure that was reported already.
var errSilent = errors.New("")

// podCopy makes pod id's own copy of the image in a store without overlayfs, through kite-image,
// and returns its directory.
func podCopy(d datadir.Dir, id string, rec *imageindex.Record, debug bool) (string, error) {
	out, err := runImageHelper(d, debug, "rootfs", "--pod", id, rec.ID)
	if err != nil {
		return "", err
	}
	dir := strings.TrimSpace(string(out))
	if !filepath.IsAbs(dir) {
		return "", fmt.Errorf("copy the image for pod %s: kite-image printed %q, not a directory", id, dir)
	}
	return dir, nil
}

// removePodCopy deletes what podCopy made, for a pod that never ran.
func removePodCopy(d datadir.Dir, id string, debug bool) {
	runImageHelper(d, debug, "rm-rootfs", "--pod", id)
}

// runImageHelper runs kite-image with args after its global flags and returns its stdout. It
// prints its own errors.
func runImageHelper(d datadir.Dir, debug bool, args ...string) ([]byte, error) {
	helper, err := libexecPath("kite-image")
	if err != nil {
		return nil, err
	}
	global := []string{"--dir", d.Root}
	if debug {
		global = append(global, "--debug")
	}
	var out bytes.Buffer
	cmd := exec.Command(helper, append(global, args...)...)
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, &exitcode.CodedError{Code: exitcode.Failed, Err: errSilent}
		}
		return nil, fmt.Errorf("run %s: %w", helper, err)
	}
	return out.Bytes(), nil
}
