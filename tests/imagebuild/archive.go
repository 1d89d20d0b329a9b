package imagebuild

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteArchive writes the layout in layoutDir as an oci-archive: a plain tar of the layout's
// contents (oci-layout, index.json, blobs/...) with no leading directory, which is what
// containers/image's oci-archive transport extracts. The file appears atomically via rename.
func WriteArchive(layoutDir, archivePath string) error {
	if err := os.MkdirAll(filepath.Dir(archivePath), 0o755); err != nil {
		return fmt.Errorf("create parent of archive %s: %w", archivePath, err)
	}
	f, err := os.CreateTemp(filepath.Dir(archivePath), "."+filepath.Base(archivePath)+".tmp-")
	if err != nil {
		return fmt.Errorf("create archive: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("create archive: %w", err)
	}

	tw := tar.NewWriter(f)
	// WalkDir visits in lexical order, which keeps the archive deterministic.
	err = filepath.WalkDir(layoutDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(layoutDir, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		hdr := &tar.Header{Name: rel, Mode: 0o644, ModTime: epoch}
		switch {
		case d.IsDir():
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, rel+"/", 0o755
			return tw.WriteHeader(hdr)
		case !d.Type().IsRegular():
			return fmt.Errorf("%s is not a regular file", p)
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		fi, err := src.Stat()
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, fi.Size()
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err = io.Copy(tw, src)
		return err
	})
	if err != nil {
		return fmt.Errorf("archive layout %s: %w", layoutDir, err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	if err := os.Rename(f.Name(), archivePath); err != nil {
		return fmt.Errorf("move archive into place: %w", err)
	}
	return nil
}
