package imagestore

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"go.podman.io/image/v5/pkg/compression"
	"go.podman.io/image/v5/types"
)

// checkedSource is the verified image source the copy reads from. It stays open after the copy
// (Fetch closes it), and checks every blob it hands out before the store may use it:
//   - its size must be the one the manifest gives (the image library trusts the bytes it reads and
//     records their real size instead);
//   - a layer's tar entries must stay inside the root filesystem (see checkEntries);
//   - no blob is fetched from the URLs a manifest may name: a layer comes from the image's own
//     source or not at all.
//
// A blob that fails a check ends its stream with the error instead of EOF. The store writes a blob
// to a temporary file before applying it, so a refused layer never reaches a layer directory.
type checkedSource struct{ types.ImageSource }

func (checkedSource) Close() error { return nil }

func (s checkedSource) GetBlob(ctx context.Context, info types.BlobInfo, cache types.BlobInfoCache) (io.ReadCloser, int64, error) {
	info.URLs = nil
	rc, size, err := s.ImageSource.GetBlob(ctx, info, cache)
	if err != nil {
		return nil, 0, err
	}
	if info.Size >= 0 && size >= 0 && size != info.Size {
		rc.Close()
		return nil, 0, fmt.Errorf("blob %s: the manifest gives its size as %d bytes, the source has %d", info.Digest, info.Size, size)
	}
	c := &checkedBlob{rc: rc, info: info}
	if isLayer(info.MediaType) {
		pr, pw := io.Pipe()
		c.entries, c.checked = pw, make(chan error, 1)
		go func() {
			err := checkLayer(pr)
			if err == nil {
				// Whatever follows the tar's end (padding) is not the checker's business.
				_, err = io.Copy(io.Discard, pr)
			} else {
				err = fmt.Errorf("layer %s: %w", info.Digest, err)
			}
			pr.CloseWithError(err)
			c.checked <- err
		}()
	}
	return c, size, nil
}

// isLayer reports whether a descriptor's media type is a layer's (OCI and docker, compressed or
// not, distributable or not).
func isLayer(mediaType string) bool {
	return strings.Contains(mediaType, ".tar") || strings.Contains(mediaType, "rootfs.diff")
}

// checkedBlob passes a blob through, counting its bytes and feeding a layer to checkLayer.
type checkedBlob struct {
	rc      io.ReadCloser
	info    types.BlobInfo
	read    int64
	entries *io.PipeWriter // nil for a blob that is not a layer
	checked chan error
}

func (c *checkedBlob) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	c.read += int64(n)
	if n > 0 && c.entries != nil {
		if _, werr := c.entries.Write(p[:n]); werr != nil {
			// checkLayer stopped early: it found something wrong.
			return 0, <-c.checked
		}
	}
	if !errors.Is(err, io.EOF) {
		return n, err
	}
	if c.info.Size >= 0 && c.read != c.info.Size {
		return n, fmt.Errorf("blob %s: the manifest gives its size as %d bytes, it has %d", c.info.Digest, c.info.Size, c.read)
	}
	if c.entries != nil {
		c.entries.Close()
		if cerr := <-c.checked; cerr != nil {
			return n, cerr
		}
		c.entries = nil
	}
	return n, err
}

func (c *checkedBlob) Close() error {
	if c.entries != nil {
		c.entries.CloseWithError(errors.New("blob closed before its end"))
	}
	return c.rc.Close()
}

// checkLayer reads a layer, compressed or not, and checks its entries.
func checkLayer(r io.Reader) error {
	dec, _, err := compression.AutoDecompress(r)
	if err != nil {
		return fmt.Errorf("decompress: %w", err)
	}
	defer dec.Close()
	return checkEntries(tar.NewReader(dec))
}

// checkEntries refuses a layer whose entries would land outside the root filesystem if applied
// naively, or that relies on the store confining them: names that are absolute or climb out with
// "..", entries and hard link targets below a symlink the same layer made, and one name given
// twice unless both are directories. The store would clamp such entries inside the root; kite
// refuses them instead, so that the image is what its author can see in the tar.
func checkEntries(tr *tar.Reader) error {
	kinds := map[string]byte{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read the tar stream: %w", err)
		}
		name, err := entryPath(hdr.Name)
		if err != nil {
			return err
		}
		if link := symlinkAbove(name, kinds); link != "" {
			return fmt.Errorf("entry %q lies below %q, a symbolic link the same layer made", hdr.Name, link)
		}
		if hdr.Typeflag == tar.TypeLink {
			target, err := entryPath(hdr.Linkname)
			if err != nil {
				return fmt.Errorf("hard link %q: target: %w", hdr.Name, err)
			}
			if link := symlinkAbove(target, kinds); link != "" {
				return fmt.Errorf("hard link %q points below %q, a symbolic link the same layer made", hdr.Name, link)
			}
		}
		if prev, dup := kinds[name]; dup && (prev != tar.TypeDir || hdr.Typeflag != tar.TypeDir) {
			return fmt.Errorf("entry %q appears twice in the layer", hdr.Name)
		}
		kinds[name] = hdr.Typeflag
	}
}

// entryPath cleans a tar entry's name, refusing one that is absolute or climbs above the root.
func entryPath(name string) (string, error) {
	clean := path.Clean(name)
	switch {
	case strings.HasPrefix(name, "/"):
		return "", fmt.Errorf("entry %q has an absolute name", name)
	case clean == ".." || strings.HasPrefix(clean, "../"):
		return "", fmt.Errorf("entry %q climbs out of the root filesystem", name)
	}
	return clean, nil
}

// symlinkAbove returns the nearest directory above name that kinds records as a symlink, or "".
func symlinkAbove(name string, kinds map[string]byte) string {
	for dir := path.Dir(name); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if kinds[dir] == tar.TypeSymlink {
			return dir
		}
	}
	return ""
}
