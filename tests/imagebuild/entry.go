// Package imagebuild owns kite's test images: it writes OCI image layouts and oci-archive files by
// hand (archive/tar, compress/gzip and the image-spec types), with no container tooling, so tests
// run offline and can build images no well-behaved tool would (hostile names, devices, owners).
//
// Output is deterministic: fixed timestamps, entries in the order given (sorted for the standard
// images), gzip without names or times, JSON in struct order.
package imagebuild

import (
	"archive/tar"
	"bytes"
	"fmt"
	"path"
	"strings"
	"time"
)

// epoch is the mtime of every tar entry and the creation time of every image, so rebuilding an
// image gives the same digests.
var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Entry is one tar entry of a layer. Its owner and mode are written as given, so files owned by
// uid 1000 come out the same whoever runs the build.
type Entry struct {
	// Name is written to the tar header verbatim: hostile-image tests need names such as "../x" or
	// "/abs". The constructors below produce the conventional form ("dir/", "dir/file").
	Name string
	// Type is a tar type flag: tar.TypeReg, TypeDir, TypeSymlink, TypeLink, TypeChar, TypeBlock,
	// TypeFifo.
	Type byte
	// Mode is the permission bits including setuid (04000), setgid (02000) and sticky (01000).
	Mode     int64
	UID, GID int
	// Content is the data of a regular file; it is ignored for other types.
	Content []byte
	// Linkname is the target of a symlink or the existing entry a hard link points to.
	Linkname           string
	Devmajor, Devminor int64
}

// Dir is a directory entry.
func Dir(name string, mode int64, uid, gid int) Entry {
	return Entry{Name: clean(name) + "/", Type: tar.TypeDir, Mode: mode, UID: uid, GID: gid}
}

// File is a regular file entry.
func File(name string, mode int64, uid, gid int, content []byte) Entry {
	return Entry{Name: clean(name), Type: tar.TypeReg, Mode: mode, UID: uid, GID: gid, Content: content}
}

// Symlink is a root-owned symbolic link to target.
func Symlink(name, target string) Entry {
	return Entry{Name: clean(name), Type: tar.TypeSymlink, Mode: 0o777, Linkname: target}
}

// Whiteout deletes name from the layers below (image-spec layer.md, "Whiteouts").
func Whiteout(name string) Entry {
	dir, base := path.Split(clean(name))
	return File(dir+".wh."+base, 0o644, 0, 0, nil)
}

// Opaque hides everything the layers below have in dir, keeping what this layer adds
// (image-spec layer.md, "Opaque Whiteout").
func Opaque(dir string) Entry {
	return File(path.Join(clean(dir), ".wh..wh..opq"), 0o644, 0, 0, nil)
}

// clean turns an image path ("/data/x") into a tar name ("data/x").
func clean(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// layerTar returns the uncompressed tar of entries, in their order.
func layerTar(entries []Entry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{
			Typeflag: e.Type,
			Name:     e.Name,
			Linkname: e.Linkname,
			Mode:     e.Mode,
			Uid:      e.UID,
			Gid:      e.GID,
			ModTime:  epoch,
			Devmajor: e.Devmajor,
			Devminor: e.Devminor,
		}
		if e.Type == tar.TypeReg {
			hdr.Size = int64(len(e.Content))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("write tar header %q: %w", e.Name, err)
		}
		if hdr.Size > 0 {
			if _, err := tw.Write(e.Content); err != nil {
				return nil, fmt.Errorf("write tar entry %q: %w", e.Name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("finish tar: %w", err)
	}
	return buf.Bytes(), nil
}
