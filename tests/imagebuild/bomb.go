package imagebuild

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"strconv"

	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Bombs: well-formed images whose layers cost far more to store than to send. Each is an OCI
// layout of BombOptions.Base and one bomb layer, streamed to disk as it is made (a bomb never
// sits in memory, compressed or not), with a correct diff_id, so that a runtime that refuses one
// does so for its size and not for a digest.

// BombOptions size the bombs.
type BombOptions struct {
	// Tag names the image in the layout's index; "bomb" when empty.
	Tag string
	// Base is a well-formed bottom layer under the bomb.
	Base []Entry
	// ZeroBytes is how much the decompression bombs expand to: a multiple of 64 MiB.
	ZeroBytes int64
	// Inodes is how many files (or hard links) the inode bombs hold.
	Inodes int
	// SparseSize is the size the sparse file entry claims.
	SparseSize int64
}

// BombCase is one named bomb.
type BombCase struct {
	Name    string
	Problem string
	Write   func(dir string, o BombOptions) error
}

// BombCases lists the bombs.
func BombCases() []BombCase {
	return []BombCase{
		{"gzip-zeros", "a gzip layer of one file of ZeroBytes zeros, in gzip members of 64 MiB each", func(dir string, o BombOptions) error {
			return writeBomb(dir, o, ocispec.MediaTypeImageLayerGzip, func(w io.Writer) (digest.Digest, error) { return zeroBomb(w, o.ZeroBytes, false) })
		}},
		{"zstd-zeros", "a zstd layer of one file of ZeroBytes zeros, in zstd frames of 64 MiB each", func(dir string, o BombOptions) error {
			return writeBomb(dir, o, ocispec.MediaTypeImageLayerZstd, func(w io.Writer) (digest.Digest, error) { return zeroBomb(w, o.ZeroBytes, true) })
		}},
		{"inode-files", "a gzip layer of Inodes empty files", func(dir string, o BombOptions) error {
			return writeBomb(dir, o, ocispec.MediaTypeImageLayerGzip, func(w io.Writer) (digest.Digest, error) { return inodeBomb(w, o.Inodes, false) })
		}},
		{"inode-hardlinks", "a gzip layer of one file and Inodes hard links to it", func(dir string, o BombOptions) error {
			return writeBomb(dir, o, ocispec.MediaTypeImageLayerGzip, func(w io.Writer) (digest.Digest, error) { return inodeBomb(w, o.Inodes, true) })
		}},
		{"sparse-huge", "a gzip layer of a PAX (GNU 1.0) sparse file entry claiming SparseSize bytes, of which 512 are data", func(dir string, o BombOptions) error {
			return writeBomb(dir, o, ocispec.MediaTypeImageLayerGzip, func(w io.Writer) (digest.Digest, error) { return sparseBomb(w, o.SparseSize) })
		}},
	}
}

// BigImage writes, as a layout in dir tagged tag, an image of base and layers more layers of
// size bytes each of incompressible (seeded pseudo-random) data: an honest image that needs
// about twice layers*size of disk to fetch (blob and extracted layer).
func BigImage(dir, tag string, base []Entry, layers int, size int64, seed int64) error {
	rng := rand.New(rand.NewSource(seed))
	var streams []layerStream
	for i := range layers {
		streams = append(streams, layerStream{ocispec.MediaTypeImageLayerGzip, func(w io.Writer) (digest.Digest, error) {
			return randomLayer(w, fmt.Sprintf("random-%d", i), size, rng)
		}})
	}
	return writeStreamed(dir, tag, base, streams...)
}

// bombChunk is the unit the decompression bombs repeat: one gzip member or zstd frame each.
const bombChunk = 64 << 20

func (o BombOptions) tag() string {
	if o.Tag == "" {
		return "bomb"
	}
	return o.Tag
}

func writeBomb(dir string, o BombOptions, mediaType string, write func(io.Writer) (digest.Digest, error)) error {
	return writeStreamed(dir, o.tag(), o.Base, layerStream{mediaType, write})
}

// layerStream writes one compressed layer to w and returns its diff_id.
type layerStream struct {
	mediaType string
	write     func(w io.Writer) (digest.Digest, error)
}

// writeStreamed writes a layout in dir of one image, tag, of base (gzip) and the streamed layers.
func writeStreamed(dir, tag string, base []Entry, layers ...layerStream) error {
	if err := os.MkdirAll(filepath.Join(dir, ocispec.ImageBlobsDir, "sha256"), 0o755); err != nil {
		return err
	}
	w := layoutWriter{dir: dir, layers: map[layerKey]ocispec.Descriptor{}}
	baseID, baseDesc, err := w.layer(base, false)
	if err != nil {
		return err
	}
	diffIDs, descs := []digest.Digest{baseID}, []ocispec.Descriptor{baseDesc}
	for _, l := range layers {
		diffID, desc, err := w.streamBlob(l)
		if err != nil {
			return err
		}
		diffIDs, descs = append(diffIDs, diffID), append(descs, desc)
	}
	platform := ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	config := ocispec.Image{
		Created:  &epoch,
		Platform: platform,
		Config:   ocispec.ImageConfig{Env: []string{defaultPath}, Cmd: []string{"/bin/sh"}},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
	}
	configBlob, err := json.Marshal(config)
	if err != nil {
		return err
	}
	manifest := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Layers: descs}
	if manifest.Config, err = w.blob(ocispec.MediaTypeImageConfig, configBlob); err != nil {
		return err
	}
	manifestBlob, err := json.Marshal(manifest)
	if err != nil {
		return err
	}
	desc, err := w.blob(ocispec.MediaTypeImageManifest, manifestBlob)
	if err != nil {
		return err
	}
	desc.Platform = &platform
	desc.Annotations = map[string]string{ocispec.AnnotationRefName: tag}
	if err := writeJSON(filepath.Join(dir, ocispec.ImageLayoutFile), ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion}); err != nil {
		return err
	}
	return writeJSON(filepath.Join(dir, ocispec.ImageIndexFile), ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{desc},
	})
}

// streamBlob writes a layer to a temporary file among the blobs, hashing it on the way, and moves
// it to its digest's name.
func (w *layoutWriter) streamBlob(l layerStream) (digest.Digest, ocispec.Descriptor, error) {
	blobs := filepath.Join(w.dir, ocispec.ImageBlobsDir, "sha256")
	f, err := os.CreateTemp(blobs, ".partial-")
	if err != nil {
		return "", ocispec.Descriptor{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	h := sha256.New()
	counted := &countingWriter{w: io.MultiWriter(f, h)}
	buffered := bufio.NewWriterSize(counted, 1<<20)
	diffID, err := l.write(buffered)
	if err == nil {
		err = buffered.Flush()
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		return "", ocispec.Descriptor{}, fmt.Errorf("write layer: %w", err)
	}
	d := digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h.Sum(nil)))
	// Readable by all, as the layout's other blobs (CreateTemp makes the file 0600).
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return "", ocispec.Descriptor{}, err
	}
	if err := os.Rename(f.Name(), filepath.Join(blobs, d.Encoded())); err != nil {
		return "", ocispec.Descriptor{}, err
	}
	return diffID, ocispec.Descriptor{MediaType: l.mediaType, Digest: d, Size: counted.n}, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// zeroBomb writes a tar of one file of size zeros (a multiple of bombChunk), compressed as
// separate gzip members or zstd frames: a header, size/bombChunk copies of one compressed chunk of
// zeros, and the tar's end. Both formats define a stream of members (frames) as their
// concatenation, so this is one valid layer, made with one chunk's compression work.
func zeroBomb(w io.Writer, size int64, useZstd bool) (digest.Digest, error) {
	if size <= 0 || size%bombChunk != 0 {
		return "", fmt.Errorf("zero bomb: size %d is not a positive multiple of %d", size, bombChunk)
	}
	var header bytes.Buffer
	tw := tar.NewWriter(&header)
	// Past 8 GiB the size needs a PAX record; the writer adds one.
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "zeros", Mode: 0o644, Size: size, ModTime: epoch}); err != nil {
		return "", err
	}
	// WriteHeader wrote the header blocks; the data and the tar's end follow below, and tw is
	// left unclosed, as it would count the data missing.
	trailer := make([]byte, 1024) // two zero blocks end a tar
	zeros := make([]byte, bombChunk)
	compress := func(b []byte) ([]byte, error) {
		var out bytes.Buffer
		if useZstd {
			enc, err := zstd.NewWriter(&out, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
			if err != nil {
				return nil, err
			}
			if _, err := enc.Write(b); err != nil {
				return nil, err
			}
			err = enc.Close()
			return out.Bytes(), err
		}
		gz, err := gzip.NewWriterLevel(&out, gzip.BestCompression)
		if err != nil {
			return nil, err
		}
		if _, err := gz.Write(b); err != nil {
			return nil, err
		}
		err = gz.Close()
		return out.Bytes(), err
	}
	head, err := compress(header.Bytes())
	if err != nil {
		return "", err
	}
	chunk, err := compress(zeros)
	if err != nil {
		return "", err
	}
	tail, err := compress(trailer)
	if err != nil {
		return "", err
	}
	diff := sha256.New()
	diff.Write(header.Bytes())
	if _, err := w.Write(head); err != nil {
		return "", err
	}
	for range size / bombChunk {
		diff.Write(zeros)
		if _, err := w.Write(chunk); err != nil {
			return "", err
		}
	}
	diff.Write(trailer)
	if _, err := w.Write(tail); err != nil {
		return "", err
	}
	return digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(diff.Sum(nil))), nil
}

// inodeBomb writes a gzip tar of n empty files, or of one file and n hard links to it, a thousand
// to a directory.
func inodeBomb(w io.Writer, n int, hardlinks bool) (digest.Digest, error) {
	return gzipTar(w, func(tw *tar.Writer) error {
		target := "inodes/target"
		entries := []*tar.Header{{Typeflag: tar.TypeDir, Name: "inodes/", Mode: 0o755, ModTime: epoch}}
		if hardlinks {
			entries = append(entries, &tar.Header{Typeflag: tar.TypeReg, Name: target, Mode: 0o644, ModTime: epoch})
		}
		for _, h := range entries {
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
		}
		for i := range n {
			dir := fmt.Sprintf("inodes/%04d/", i/1000)
			if i%1000 == 0 {
				if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: epoch}); err != nil {
					return err
				}
			}
			h := &tar.Header{Typeflag: tar.TypeReg, Name: dir + strconv.Itoa(i), Mode: 0o644, ModTime: epoch}
			if hardlinks {
				h.Typeflag, h.Linkname = tar.TypeLink, target
			}
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
		}
		return nil
	})
}

// sparseBomb writes a gzip tar of one sparse file (PAX format, GNU sparse 1.0: the map is the
// start of the entry's data) of size bytes whose only data is its last 512.
func sparseBomb(w io.Writer, size int64) (digest.Digest, error) {
	if size < 1024 {
		return "", fmt.Errorf("sparse bomb: size %d is too small", size)
	}
	data := bytes.Repeat([]byte("the end of a huge sparse file\n"), 512)[:512]
	sparseMap := []byte(fmt.Sprintf("1\n%d\n%d\n", size-int64(len(data)), len(data)))
	sparseMap = append(sparseMap, make([]byte, 512-len(sparseMap)%512)...)
	records := paxRecords(
		"GNU.sparse.major", "1",
		"GNU.sparse.minor", "0",
		"GNU.sparse.name", "sparse-huge",
		"GNU.sparse.realsize", strconv.FormatInt(size, 10),
	)
	return gzipTarRaw(w, func(raw io.Writer, tw *tar.Writer) error {
		// Go's tar writer leaves GNU.sparse records out, so the extended header is made here.
		if _, err := raw.Write(ustarHeader("PaxHeaders/sparse-huge", 'x', int64(len(records)))); err != nil {
			return err
		}
		if _, err := raw.Write(padBlock(records)); err != nil {
			return err
		}
		err := tw.WriteHeader(&tar.Header{
			Typeflag: tar.TypeReg,
			// The name GNU tar gives the entry; readers take the real one from GNU.sparse.name.
			Name:    "GNUSparseFile.0/sparse-huge",
			Mode:    0o644,
			Size:    int64(len(sparseMap) + len(data)),
			ModTime: epoch,
			Format:  tar.FormatUSTAR,
		})
		if err != nil {
			return err
		}
		_, err = tw.Write(append(sparseMap, data...))
		return err
	})
}

// paxRecords encodes key, value pairs as PAX extended header records ("LEN key=value\n", LEN
// counting the whole record, its own digits included).
func paxRecords(kv ...string) []byte {
	var out []byte
	for i := 0; i+1 < len(kv); i += 2 {
		rest := " " + kv[i] + "=" + kv[i+1] + "\n"
		n := len(rest) + 1
		for len(strconv.Itoa(n))+len(rest) != n {
			n++
		}
		out = append(out, strconv.Itoa(n)+rest...)
	}
	return out
}

// ustarHeader is one ustar header block for an entry of the given type and size (root-owned,
// mode 0644, at epoch).
func ustarHeader(name string, typeflag byte, size int64) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], "0000644\x00")
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], fmt.Sprintf("%011o\x00", epoch.Unix()))
	copy(b[148:156], "        ")
	b[156] = typeflag
	copy(b[257:263], "ustar\x00")
	copy(b[263:265], "00")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// padBlock pads b with zeros to a whole number of tar blocks.
func padBlock(b []byte) []byte {
	if r := len(b) % 512; r != 0 {
		b = append(b, make([]byte, 512-r)...)
	}
	return b
}

// randomLayer writes a gzip tar of one file of size pseudo-random bytes.
func randomLayer(w io.Writer, name string, size int64, rng *rand.Rand) (digest.Digest, error) {
	return gzipTar(w, func(tw *tar.Writer) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size, ModTime: epoch}); err != nil {
			return err
		}
		_, err := io.CopyN(tw, rng, size)
		return err
	})
}

// gzipTar writes the tar that entries writes, gzip-compressed (fast: these layers are big), and
// returns the digest of the uncompressed tar.
func gzipTar(w io.Writer, entries func(*tar.Writer) error) (digest.Digest, error) {
	return gzipTarRaw(w, func(_ io.Writer, tw *tar.Writer) error { return entries(tw) })
}

// gzipTarRaw is gzipTar whose entries may also write raw blocks, between tw's entries.
func gzipTarRaw(w io.Writer, entries func(raw io.Writer, tw *tar.Writer) error) (digest.Digest, error) {
	gz, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return "", err
	}
	diff := sha256.New()
	raw := io.MultiWriter(gz, diff)
	tw := tar.NewWriter(raw)
	if err := entries(raw, tw); err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	if err := gz.Close(); err != nil {
		return "", err
	}
	return digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(diff.Sum(nil))), nil
}
