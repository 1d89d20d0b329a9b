package imagestore

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"sync"

	"github.com/kite-runtime/kite/stage0/rootview"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/pkg/compression"
	compressiontypes "go.podman.io/image/v5/pkg/compression/types"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
	graphdriver "go.podman.io/storage/drivers"
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
type checkedSource struct {
	types.ImageSource
	seen *seenLayers
}

func (checkedSource) Close() error { return nil }

// seenLayers keeps, for each layer the copy read (by blob digest), the directories its entries
// need, so that checkLowerSymlinks can check them against the layers below once all are stored;
// the copy reads layers in parallel and in any order.
type seenLayers struct {
	mu       sync.Mutex
	byDigest map[digest.Digest]*layerDirs
}

func (s *seenLayers) add(d digest.Digest, dirs *layerDirs) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byDigest[d] = dirs
}

func (s *seenLayers) get(d digest.Digest) *layerDirs {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byDigest[d]
}

// layerDirs are the directories a layer's entries lie in, and those it makes itself.
type layerDirs struct {
	parents, made map[string]bool
}

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
			dirs, err := checkLayer(pr)
			if err == nil {
				s.seen.add(info.Digest, dirs)
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
// not, distributable or not). A docker schema 1 manifest gives its layers no media type at all:
// those are checked as layers too.
func isLayer(mediaType string) bool {
	return mediaType == "" || strings.Contains(mediaType, ".tar") || strings.Contains(mediaType, "rootfs.diff")
}

// checkedBlob passes a blob through, counting its bytes and feeding a layer to checkLayer.
type checkedBlob struct {
	rc      io.ReadCloser
	info    types.BlobInfo
	read    int64
	entries *io.PipeWriter // nil for a blob that is not a layer, and once the check has ended
	checked chan error
	err     error // what ended the blob early, returned by every later Read
}

func (c *checkedBlob) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.rc.Read(p)
	c.read += int64(n)
	if n > 0 && c.entries != nil {
		if _, werr := c.entries.Write(p[:n]); werr != nil {
			// checkLayer stopped early: it found something wrong.
			return 0, c.fail(<-c.checked)
		}
	}
	if !errors.Is(err, io.EOF) {
		return n, err
	}
	if c.info.Size >= 0 && c.read != c.info.Size {
		return n, c.fail(fmt.Errorf("blob %s: the manifest gives its size as %d bytes, it has %d", c.info.Digest, c.info.Size, c.read))
	}
	if c.entries != nil {
		c.entries.Close()
		c.entries = nil
		if cerr := <-c.checked; cerr != nil {
			return n, c.fail(cerr)
		}
	}
	return n, err
}

// fail ends the blob with err, and the layer check if it still runs.
func (c *checkedBlob) fail(err error) error {
	c.err = err
	if c.entries != nil {
		c.entries.CloseWithError(err)
		c.entries = nil
	}
	return err
}

func (c *checkedBlob) Close() error {
	if c.entries != nil {
		c.entries.CloseWithError(errors.New("blob closed before its end"))
	}
	return c.rc.Close()
}

// checkLayer reads a layer, compressed or not, and checks its entries.
func checkLayer(r io.Reader) (*layerDirs, error) {
	dec, err := decompress(r)
	if err != nil {
		return nil, fmt.Errorf("decompress: %w", err)
	}
	defer dec.Close()
	return checkEntries(tar.NewReader(dec))
}

// decompress decompresses a layer for the check. The store decompresses it again to apply it,
// on the other core of a small machine: gzip and zstd are read on one goroutine, which costs
// less CPU than the image library's parallel readers.
func decompress(r io.Reader) (io.ReadCloser, error) {
	algo, decompressor, r, err := compression.DetectCompressionFormat(r)
	if err != nil {
		return nil, err
	}
	switch {
	case decompressor == nil:
		return io.NopCloser(r), nil
	case algo.Name() == compressiontypes.GzipAlgorithmName:
		return gzip.NewReader(r)
	case algo.Name() == compressiontypes.ZstdAlgorithmName:
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	}
	return decompressor(r)
}

// checkEntries refuses a layer whose entries would land outside the root filesystem if applied
// naively, or that relies on the store confining them: names that are absolute or climb out with
// "..", entries and hard link targets below a symlink the same layer made, and one name given
// twice unless both are directories. The store would clamp such entries inside the root; kite
// refuses them instead, so that the image is what its author can see in the tar.
func checkEntries(tr *tar.Reader) (*layerDirs, error) {
	kinds := map[string]byte{}
	dirs := &layerDirs{parents: map[string]bool{}, made: map[string]bool{}}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return dirs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read the tar stream: %w", err)
		}
		name, err := entryPath(hdr.Name)
		if err != nil {
			return nil, err
		}
		if isSparse(hdr) {
			return nil, fmt.Errorf("entry %q is a sparse file of %d bytes: the store would write it out whole (a layer of a few hundred bytes can claim a terabyte), and image tools never write sparse entries", hdr.Name, hdr.Size)
		}
		if x := overlayXattr(hdr); x != "" {
			return nil, fmt.Errorf("entry %q sets the extended attribute %s, which overlayfs reads as its own mark (opaque, redirect, metacopy): a layer says that with whiteouts", hdr.Name, x)
		}
		if link := symlinkAbove(name, kinds); link != "" {
			return nil, fmt.Errorf("entry %q lies below %q, a symbolic link the same layer made", hdr.Name, link)
		}
		dirs.parents[path.Dir(name)] = true
		if hdr.Typeflag == tar.TypeLink {
			target, err := entryPath(hdr.Linkname)
			if err != nil {
				return nil, fmt.Errorf("hard link %q: target: %w", hdr.Name, err)
			}
			if link := symlinkAbove(target, kinds); link != "" {
				return nil, fmt.Errorf("hard link %q points below %q, a symbolic link the same layer made", hdr.Name, link)
			}
			dirs.parents[path.Dir(target)] = true
		}
		if prev, dup := kinds[name]; dup && (prev != tar.TypeDir || hdr.Typeflag != tar.TypeDir) {
			return nil, fmt.Errorf("entry %q appears twice in the layer", hdr.Name)
		}
		kinds[name] = hdr.Typeflag
		if hdr.Typeflag == tar.TypeDir {
			dirs.made[name] = true
		}
	}
}

// isSparse reports whether hdr is a GNU sparse file, in the old GNU format or in one of its PAX
// encodings; archive/tar reads both and hands out the expanded contents.
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// checkLowerSymlinks checks the layers of the stored image ref that the copy read against the
// layers below each: an entry whose directory is a symlink in a lower layer would be applied
// through it (the store confines it to the root, but the image would not be what its layers
// say, and the overlay and vfs drivers disagree about the result).
func (s *Store) checkLowerSymlinks(ref types.ImageReference, seen *seenLayers) error {
	_, img, err := istorage.ResolveReference(ref)
	if err != nil {
		return err
	}
	var chain []*storage.Layer // bottom-most first
	for id := img.TopLayer; id != ""; {
		l, err := s.Layer(id)
		if err != nil {
			return err
		}
		chain = append([]*storage.Layer{l}, chain...)
		id = l.Parent
	}
	stack, err := s.newLayerStack()
	if err != nil {
		return err
	}
	for _, l := range chain {
		dirs := seen.get(l.CompressedDigest)
		if dirs == nil {
			dirs = seen.get(l.UncompressedDigest)
		}
		if err := stack.check(dirs, l.CompressedDigest); err != nil {
			return err
		}
		if err := stack.push(l.ID); err != nil {
			return err
		}
	}
	return nil
}

// layerStack is the root filesystem of the stored layers pushed so far, as rootview sees it.
type layerStack struct {
	driver graphdriver.Driver
	view   rootview.View // top-most first
}

func (s *Store) newLayerStack() (*layerStack, error) {
	driver, err := s.GraphDriver()
	if err != nil {
		return nil, err
	}
	return &layerStack{driver: driver}, nil
}

// check refuses a layer, of the directories dirs its entries lie in (nil when they were not
// read), that would be applied through a symlink of the layers on the stack.
func (st *layerStack) check(dirs *layerDirs, layer digest.Digest) error {
	if dirs == nil || len(st.view) == 0 {
		return nil
	}
	if err := dirs.checkAgainst(st.view); err != nil {
		return fmt.Errorf("layer %s: %w", layer, err)
	}
	return nil
}

// push puts the stored layer id on top of the stack.
func (st *layerStack) push(id string) error {
	dir, err := layerDir(st.driver, id)
	if err != nil {
		return err
	}
	if st.driver.String() == "vfs" {
		// A vfs layer is a whole copy of the root filesystem.
		st.view = rootview.View{dir}
	} else {
		st.view = append(rootview.View{dir}, st.view...)
	}
	return nil
}

// checkAgainst walks each directory the layer's entries lie in down from the root, through the
// layers below, and refuses one that goes through a symlink the layer does not replace.
func (d *layerDirs) checkAgainst(below rootview.View) error {
	checked := map[string]bool{}
	for dir := range d.parents {
		prefix := ""
		for _, c := range strings.Split(dir, "/") {
			if c == "." || c == "" {
				continue
			}
			prefix = path.Join(prefix, c)
			if checked[prefix] || d.made[prefix] {
				continue
			}
			checked[prefix] = true
			_, st, err := below.Lookup(prefix)
			if errors.Is(err, fs.ErrNotExist) {
				break
			}
			if err != nil {
				return err
			}
			if st.Mode()&fs.ModeSymlink != 0 {
				return fmt.Errorf("an entry lies below %q, a symbolic link in a lower layer", prefix)
			}
			if !st.IsDir() {
				break
			}
		}
	}
	return nil
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

// overlayXattr returns the name of an extended attribute of hdr in overlayfs's namespaces
// (trusted.overlay.*, and user.overlay.* that a rootless overlay mounted with userxattr reads),
// or "". Stored on a layer's files, such an attribute would change what the pod's overlay shows:
// a user.overlay.opaque directory hides the layers below it (found by the hostile image tests).
func overlayXattr(hdr *tar.Header) string {
	for key := range hdr.PAXRecords {
		x, ok := strings.CutPrefix(key, "SCHILY.xattr.")
		if ok && (strings.HasPrefix(x, "trusted.overlay.") || strings.HasPrefix(x, "user.overlay.")) {
			return x
		}
	}
	return ""
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

// explainApplyFailure is copyErr, or, when a layer the copy read goes through a symlink of the
// layers stored below it, that problem: the store confines such an entry to the root and then
// fails on what it finds there (a hard link to xl-hl/victim, with xl-hl a symlink to /victim
// below, fails with "no such file or directory"), before checkLowerSymlinks can name it.
func (s *Store) explainApplyFailure(ctx context.Context, sys *types.SystemContext, src openedReference, copyErr error) error {
	img, err := chosenImage(ctx, sys, src.src)
	if err != nil {
		return copyErr
	}
	stack, err := s.newLayerStack()
	if err != nil {
		return copyErr
	}
	parent := ""
	for _, info := range img.LayerInfos() {
		if err := stack.check(src.seen.get(info.Digest), info.Digest); err != nil {
			return err
		}
		// The next layer's view: this one, if the store holds it on top of the ones below.
		stored, err := s.LayersByCompressedDigest(info.Digest)
		if err != nil {
			return copyErr
		}
		id := ""
		for _, l := range stored {
			if l.Parent == parent {
				id = l.ID
				break
			}
		}
		if id == "" || stack.push(id) != nil {
			return copyErr
		}
		parent = id
	}
	return copyErr
}
