package main

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kite-runtime/kite/tests/imagebuild"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// debianImage reads a Debian root file system, as `mmdebstrap --variant=minbase --format=tar`
// writes it, into a three-layer image: /usr/lib, /usr/share, and the rest. Every directory goes to
// the bottom layer, so each layer's parents exist below it, and a hard link goes to the layer of
// the file it names. Device nodes are left out, as image builders do: the runtime makes /dev.
func debianImage(tarball string) (imagebuild.Image, int, error) {
	img := imagebuild.Image{
		Tag:    bigTag,
		Config: ocispec.ImageConfig{Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, Cmd: []string{"bash"}},
		Layers: make([][]imagebuild.Entry, 3),
	}
	f, err := os.Open(tarball)
	if err != nil {
		return img, 0, err
	}
	defer f.Close()
	layerOf := map[string]int{}
	files := 0
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return img, 0, fmt.Errorf("%s: %w", tarball, err)
		}
		name := strings.TrimPrefix(hdr.Name, "./")
		if name == "" || hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock {
			continue
		}
		e := imagebuild.Entry{Name: name, Type: hdr.Typeflag, Mode: hdr.Mode, UID: hdr.Uid, GID: hdr.Gid, Linkname: hdr.Linkname}
		layer := 2
		switch {
		case hdr.Typeflag == tar.TypeDir:
			layer = 0
		case hdr.Typeflag == tar.TypeLink:
			layer = layerOf[strings.TrimPrefix(hdr.Linkname, "./")]
			e.Linkname = strings.TrimPrefix(hdr.Linkname, "./")
		case strings.HasPrefix(name, "usr/lib/"):
			layer = 0
		case strings.HasPrefix(name, "usr/share/"):
			layer = 1
		}
		if hdr.Typeflag == tar.TypeReg {
			if e.Content, err = io.ReadAll(tr); err != nil {
				return img, 0, fmt.Errorf("%s: %s: %w", tarball, name, err)
			}
		}
		layerOf[name] = layer
		img.Layers[layer] = append(img.Layers[layer], e)
		files++
	}
	if files == 0 {
		return img, 0, fmt.Errorf("%s has no files", tarball)
	}
	return img, files, nil
}
