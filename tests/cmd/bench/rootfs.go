package main

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// extractImage unpacks the layers of the tagged image in an OCI layout into dir, for bubblewrap.
func extractImage(layout, tag, dir string) error {
	var index ocispec.Index
	if err := readJSON(filepath.Join(layout, "index.json"), &index); err != nil {
		return err
	}
	for _, m := range index.Manifests {
		if m.Annotations[ocispec.AnnotationRefName] != tag {
			continue
		}
		var man ocispec.Manifest
		if err := readJSON(blobPath(layout, m.Digest.String()), &man); err != nil {
			return err
		}
		for _, l := range man.Layers {
			if err := untar(blobPath(layout, l.Digest.String()), dir); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("no image tagged %s in %s", tag, layout)
}

func blobPath(layout, dg string) string {
	alg, hex, _ := strings.Cut(dg, ":")
	return filepath.Join(layout, "blobs", alg, hex)
}

func readJSON(p string, v any) error {
	data, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

// untar unpacks a gzip layer of the locally built test image; it trusts its input.
func untar(blob, dir string) error {
	f, err := os.Open(blob)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		p := filepath.Join(dir, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeSymlink:
			os.MkdirAll(filepath.Dir(p), 0o755)
			err = os.Symlink(h.Linkname, p)
		case tar.TypeReg:
			os.MkdirAll(filepath.Dir(p), 0o755)
			var w *os.File
			if w, err = os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o755|0o600); err == nil {
				_, err = io.Copy(w, tr)
				w.Close()
			}
		}
		if err != nil {
			return err
		}
	}
}

// removeAll removes a tree that may hold directories a pod made unwritable.
func removeAll(dir string) {
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	os.RemoveAll(dir)
}
