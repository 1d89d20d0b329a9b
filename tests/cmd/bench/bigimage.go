package main

import (
	"compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/kite-runtime/kite/tests/imagebuild"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// bigTag is the tag of the fetch benchmark's image in its OCI layout.
const bigTag = "big"

// bigLayerMiB are the uncompressed sizes of the image's files per layer, bottom first, in MiB:
// gzip shrinks the content below to a little over half, so the compressed layers come to about
// 30, 20 and 10 MB.
var bigLayerMiB = []int{47, 32, 16}

// bigImage returns the fetch benchmark's image: three layers of files whose content is fixed by a
// seed, so every run of the benchmark pushes the same digests.
func bigImage() imagebuild.Image {
	img := imagebuild.Image{
		Tag:    bigTag,
		Config: ocispec.ImageConfig{Env: []string{"PATH=/usr/bin:/bin"}, Cmd: []string{"/bin/sh"}},
	}
	for i, mib := range bigLayerMiB {
		img.Layers = append(img.Layers, bigLayer(i, mib<<20))
	}
	return img
}

// bigLayer returns a layer of files of 256 KiB to 2 MiB under /data/layerN totalling size bytes.
func bigLayer(n, size int) []imagebuild.Entry {
	seed := uint64(n + 1)
	choice := rand.New(rand.NewPCG(seed, 0x6b697465))
	var seedBytes [32]byte
	seedBytes[0] = byte(seed)
	noise := rand.NewChaCha8(seedBytes)
	dir := fmt.Sprintf("/data/layer%d", n)
	entries := []imagebuild.Entry{imagebuild.Dir("/data", 0o755, 0, 0), imagebuild.Dir(dir, 0o755, 0, 0)}
	for i := 0; size > 0; i++ {
		fileSize := min(size, (256<<10)+choice.IntN(7<<18))
		entries = append(entries, imagebuild.File(fmt.Sprintf("%s/file%03d", dir, i), 0o644, 0, 0, content(choice, noise, fileSize)))
		size -= fileSize
	}
	return entries
}

// blockSize is the unit of content: each block is either noise or text.
const blockSize = 4 << 10

// content returns size bytes that compress about as well as a mix of binaries and text: blocks of
// random bytes (which gzip cannot shrink) between blocks of lines of words from a small vocabulary
// (which it shrinks to about a third).
func content(choice *rand.Rand, noise *rand.ChaCha8, size int) []byte {
	b := make([]byte, 0, size+blockSize)
	for len(b) < size {
		if choice.IntN(100) < noisePercent {
			block := make([]byte, blockSize)
			noise.Read(block)
			b = append(b, block...)
			continue
		}
		end := len(b) + blockSize
		for len(b) < end {
			for w := 3 + choice.IntN(10); w > 0; w-- {
				b = append(b, vocabulary[choice.IntN(len(vocabulary))]...)
				b = append(b, ' ')
			}
			b[len(b)-1] = '\n'
		}
	}
	return b[:size]
}

// noisePercent is the share of random blocks.
const noisePercent = 40

var vocabulary = strings.Fields(`the a an of to in for on with by from at as is are was be been
	container image layer store fetch registry manifest digest config blob tag pod runtime kernel
	namespace mount overlay user group mapping signal process exit status file directory path link
	read write open close error return value string buffer byte int uint64 func type struct map
	slice channel lock unlock wait start stop run exec fork clone socket message request response
	header body length offset size count index table record entry name version policy key trust`)

// imageSizes describe an image as a registry serves it.
type imageSizes struct {
	manifest string
	layers   []layerSize
}

// layerSize is a layer's blob size and the size of the tar it decompresses to, in bytes.
type layerSize struct{ compressed, uncompressed int64 }

// layoutSizes measures the layers of the image tagged tag in an OCI layout.
func layoutSizes(layout, tag string) (imageSizes, error) {
	var index ocispec.Index
	if err := readJSON(filepath.Join(layout, "index.json"), &index); err != nil {
		return imageSizes{}, err
	}
	for _, m := range index.Manifests {
		if m.Annotations[ocispec.AnnotationRefName] != tag {
			continue
		}
		var man ocispec.Manifest
		if err := readJSON(blobPath(layout, m.Digest.String()), &man); err != nil {
			return imageSizes{}, err
		}
		sizes := imageSizes{manifest: m.Digest.String()}
		for _, l := range man.Layers {
			n, err := gunzippedSize(blobPath(layout, l.Digest.String()))
			if err != nil {
				return imageSizes{}, err
			}
			sizes.layers = append(sizes.layers, layerSize{compressed: l.Size, uncompressed: n})
		}
		return sizes, nil
	}
	return imageSizes{}, fmt.Errorf("no image tagged %s in %s", tag, layout)
}

func gunzippedSize(blob string) (int64, error) {
	f, err := os.Open(blob)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return 0, err
	}
	return io.Copy(io.Discard, gz)
}

// total sums the layers' sizes.
func (s imageSizes) total() layerSize {
	var t layerSize
	for _, l := range s.layers {
		t.compressed += l.compressed
		t.uncompressed += l.uncompressed
	}
	return t
}
