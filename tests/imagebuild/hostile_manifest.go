package imagebuild

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Document-level hostile cases: media types that lie about what a blob is, indexes that name
// themselves or each other, documents of tens of MiB, an index with no entry for this platform,
// and image configs whose WorkingDir or Volumes climb, lead into /proc or through a symlink.

// HugeDocumentSize is how large the huge documents are: well beyond any real manifest or config
// (containers/image reads at most 4 MiB of one), small enough to build in a test.
const HugeDocumentSize = 24 << 20

func manifestCases() []HostileCase {
	return []HostileCase{
		{"mediatype-index-as-manifest", "the index names an image index blob with an image manifest's media type", HostileIndexAsManifest},
		{"mediatype-manifest-as-index", "the index names the image manifest with an image index's media type", HostileManifestAsIndex},
		{"mediatype-manifest-says-index", "the manifest's own mediaType field says image index", HostileManifestSaysIndex},
		{"mediatype-config-on-layer", "a layer descriptor with the image config's media type", HostileConfigMediaTypeOnLayer},
		{"mediatype-unknown-layer", "a layer descriptor with an unknown media type", HostileUnknownLayerMediaType},
		{"config-is-layer", "the manifest's config descriptor names the payload layer's blob", HostileConfigIsLayer},
		{"index-self-cycle", "an image index stored under a digest it names itself by", HostileIndexSelfCycle},
		{"index-mutual-cycle", "two image indexes, each naming the other", HostileIndexMutualCycle},
		{"huge-manifest", fmt.Sprintf("an image manifest of %d MiB", HugeDocumentSize>>20), HostileHugeManifest},
		{"huge-config", fmt.Sprintf("an image config of %d MiB", HugeDocumentSize>>20), HostileHugeConfig},
		{"huge-index", fmt.Sprintf("an image index blob of %d MiB between the layout's index and the manifest", HugeDocumentSize>>20), HostileHugeIndex},
		{"huge-layout-index", fmt.Sprintf("the layout's own index.json of %d MiB", HugeDocumentSize>>20), HostileHugeLayoutIndex},
		{"platform-index-no-match", "an image index listing the image only for windows/amd64 and linux/s390x", HostileIndexNoPlatform},
		{"platform-index-lies", "an index entry for this platform whose config says linux/s390x", HostileIndexPlatformLies},
		{"workdir-dotdot", "a config WorkingDir that climbs to the canary", HostileWorkdirDotDot},
		{"workdir-relative", "a config WorkingDir that is relative and climbs (../../…/CANARY)", HostileWorkdirRelative},
		{"workdir-proc-fd", "a config WorkingDir /proc/self/fd/7", HostileWorkdirProcFD},
		{"workdir-symlink-proc-fd", "a config WorkingDir that is a symlink to /proc/self/fd/7", HostileWorkdirSymlinkProcFD},
		{"workdir-symlink-canary", "a config WorkingDir below a symlink to the canary", HostileWorkdirSymlinkCanary},
		{"volume-dotdot", "a config Volume that climbs to the canary", HostileVolumeDotDot},
		{"volume-symlink-canary", "a config Volume below a symlink to the canary", HostileVolumeSymlinkCanary},
		{"volume-proc-fd", "a config Volume /proc/self/fd/7 and one \"..\"", HostileVolumeProcFD},
	}
}

// storeBlob stores data in the layout by its digest.
func (e *layoutEdit) storeBlob(mediaType string, data []byte) (ocispec.Descriptor, error) {
	return (&layoutWriter{dir: e.dir}).blob(mediaType, data)
}

// topIndex wraps the manifest in an image index blob with entries (each the manifest's
// descriptor with the given platform) and points the layout's index at it.
func (e *layoutEdit) storeNestedIndex(annotations map[string]string, platforms ...ocispec.Platform) error {
	if err := e.storeManifest(); err != nil {
		return err
	}
	inner := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Annotations: annotations}
	for _, p := range platforms {
		d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: e.index.Manifests[0].Digest, Size: e.index.Manifests[0].Size, Platform: &p}
		inner.Manifests = append(inner.Manifests, d)
	}
	data, err := json.Marshal(inner)
	if err != nil {
		return err
	}
	desc, err := e.storeBlob(ocispec.MediaTypeImageIndex, data)
	if err != nil {
		return err
	}
	top := &e.index.Manifests[0]
	top.MediaType, top.Digest, top.Size, top.Platform = desc.MediaType, desc.Digest, desc.Size, nil
	return e.storeIndex()
}

func thisPlatform() ocispec.Platform {
	return ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
}

// HostileIndexAsManifest: the layout's index names an index blob (which lists the image) with
// the image manifest media type.
func HostileIndexAsManifest(dir string, o HostileOptions) error {
	return tampered(dir, o, func(e *layoutEdit) error {
		if err := e.storeNestedIndex(nil, thisPlatform()); err != nil {
			return err
		}
		e.index.Manifests[0].MediaType = ocispec.MediaTypeImageManifest
		return e.storeIndex()
	})
}

// HostileManifestAsIndex: the layout's index names the image manifest with the image index
// media type.
func HostileManifestAsIndex(dir string, o HostileOptions) error {
	return tampered(dir, o, func(e *layoutEdit) error {
		e.index.Manifests[0].MediaType = ocispec.MediaTypeImageIndex
		return e.storeIndex()
	})
}

// HostileManifestSaysIndex: the manifest's mediaType field is the image index's; the descriptor
// naming it says image manifest.
func HostileManifestSaysIndex(dir string, o HostileOptions) error {
	return tampered(dir, o, func(e *layoutEdit) error {
		e.manifest.MediaType = ocispec.MediaTypeImageIndex
		if err := e.storeManifest(); err != nil {
			return err
		}
		return e.storeIndex()
	})
}

func payloadMediaType(dir string, o HostileOptions, mediaType string) error {
	return tampered(dir, o, func(e *layoutEdit) error {
		e.payload().MediaType = mediaType
		if err := e.storeManifest(); err != nil {
			return err
		}
		return e.storeIndex()
	})
}

// HostileConfigMediaTypeOnLayer: the payload layer's descriptor has the config media type.
func HostileConfigMediaTypeOnLayer(dir string, o HostileOptions) error {
	return payloadMediaType(dir, o, ocispec.MediaTypeImageConfig)
}

// HostileUnknownLayerMediaType: the payload layer's descriptor has a media type nobody defines.
func HostileUnknownLayerMediaType(dir string, o HostileOptions) error {
	return payloadMediaType(dir, o, "application/vnd.kite-runtime.test.unknown")
}

// HostileConfigIsLayer: the config descriptor names the gzipped payload layer (config media type).
func HostileConfigIsLayer(dir string, o HostileOptions) error {
	return tampered(dir, o, func(e *layoutEdit) error {
		p := *e.payload()
		e.manifest.Config.Digest, e.manifest.Config.Size = p.Digest, p.Size
		if err := e.storeManifest(); err != nil {
			return err
		}
		return e.storeIndex()
	})
}

// cycleIndex returns an index document naming each of refs (with the index media type and the
// size given).
func cycleIndex(refs []digest.Digest, size int64) ([]byte, error) {
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	for _, r := range refs {
		p := thisPlatform()
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: r, Size: size, Platform: &p})
	}
	return json.Marshal(idx)
}

// writeCycle stores, under each of names, an index naming next(name), and points the layout's
// index at names[0]. A digest cannot name a document that contains it, so each blob is stored
// under a made-up digest: the cycle exists only for a reader that does not check digests first.
func writeCycle(dir string, o HostileOptions, names []digest.Digest, next func(int) []digest.Digest) error {
	return tampered(dir, o, func(e *layoutEdit) error {
		// Every document has the same length (same number of entries, digests of one length), so
		// one size fits all; find it by fixed point, since the size is written inside.
		var size int64
		for range 4 {
			data, err := cycleIndex(next(0), size)
			if err != nil {
				return err
			}
			size = int64(len(data))
		}
		for i, name := range names {
			data, err := cycleIndex(next(i), size)
			if err != nil {
				return err
			}
			if int64(len(data)) != size {
				return fmt.Errorf("cycle document %d has %d bytes, not %d", i, len(data), size)
			}
			if err := os.WriteFile(e.blobPath(name), data, 0o644); err != nil {
				return err
			}
		}
		top := &e.index.Manifests[0]
		top.MediaType, top.Digest, top.Size, top.Platform = ocispec.MediaTypeImageIndex, names[0], size, nil
		return e.storeIndex()
	})
}

// HostileIndexSelfCycle: an index stored as D naming D.
func HostileIndexSelfCycle(dir string, o HostileOptions) error {
	d := []digest.Digest{digest.FromString("kite hostile image: an index that names itself")}
	return writeCycle(dir, o, d, func(int) []digest.Digest { return d })
}

// HostileIndexMutualCycle: an index stored as A naming B, and one stored as B naming A.
func HostileIndexMutualCycle(dir string, o HostileOptions) error {
	d := []digest.Digest{digest.FromString("kite hostile image: index A"), digest.FromString("kite hostile image: index B")}
	return writeCycle(dir, o, d, func(i int) []digest.Digest { return []digest.Digest{d[1-i]} })
}

// padding is a string that makes a JSON document about HugeDocumentSize bytes long.
func padding() string { return strings.Repeat("k", HugeDocumentSize) }

const paddingKey = "org.kite-runtime.test.padding"

// HostileHugeManifest: the manifest carries an annotation of HugeDocumentSize bytes.
func HostileHugeManifest(dir string, o HostileOptions) error {
	return tampered(dir, o, func(e *layoutEdit) error {
		e.manifest.Annotations = map[string]string{paddingKey: padding()}
		if err := e.storeManifest(); err != nil {
			return err
		}
		return e.storeIndex()
	})
}

// HostileHugeConfig: the config carries a label of HugeDocumentSize bytes.
func HostileHugeConfig(dir string, o HostileOptions) error {
	return tampered(dir, o, func(e *layoutEdit) error {
		e.config.Config.Labels = map[string]string{paddingKey: padding()}
		return e.storeAll()
	})
}

// HostileHugeIndex: an index blob with an annotation of HugeDocumentSize bytes lists the image.
func HostileHugeIndex(dir string, o HostileOptions) error {
	return tampered(dir, o, func(e *layoutEdit) error {
		return e.storeNestedIndex(map[string]string{paddingKey: padding()}, thisPlatform())
	})
}

// HostileHugeLayoutIndex: the layout's index.json carries an annotation of HugeDocumentSize
// bytes. Only a layout has this file: a registry serves the image's own manifest instead.
func HostileHugeLayoutIndex(dir string, o HostileOptions) error {
	return tampered(dir, o, func(e *layoutEdit) error {
		e.index.Annotations = map[string]string{paddingKey: padding()}
		return e.storeIndex()
	})
}

// HostileIndexNoPlatform: an index blob lists the image for windows/amd64 and linux/s390x (or
// linux/arm64 on an s390x) only.
func HostileIndexNoPlatform(dir string, o HostileOptions) error {
	arch := "s390x"
	if runtime.GOARCH == arch {
		arch = "arm64"
	}
	return tampered(dir, o, func(e *layoutEdit) error {
		return e.storeNestedIndex(nil, ocispec.Platform{OS: "windows", Architecture: "amd64"}, ocispec.Platform{OS: "linux", Architecture: arch})
	})
}

// HostileIndexPlatformLies: an index blob lists the image for this platform, but its config
// says linux/s390x (linux/arm64 on an s390x).
func HostileIndexPlatformLies(dir string, o HostileOptions) error {
	arch := "s390x"
	if runtime.GOARCH == arch {
		arch = "arm64"
	}
	return tampered(dir, o, func(e *layoutEdit) error {
		e.config.Architecture = arch
		if err := e.storeConfig(); err != nil {
			return err
		}
		return e.storeNestedIndex(nil, thisPlatform())
	})
}

// Names the config cases create, for the caller to look for.
const (
	WorkdirMade = "made-by-workdir"
	VolumeMade  = "made-by-volume"
)

func writeConfig(dir string, o HostileOptions, cfg ocispec.ImageConfig, layers ...[]Entry) error {
	if len(layers) == 0 {
		layers = [][]Entry{payloadLayer(PayloadContent)}
	}
	return writeHostile(dir, o, cfg, layers...)
}

// HostileWorkdirDotDot: WorkingDir /../../…/CANARY/made-by-workdir.
func HostileWorkdirDotDot(dir string, o HostileOptions) error {
	return writeConfig(dir, o, ocispec.ImageConfig{WorkingDir: "/" + Climbing(o.Canary) + "/" + WorkdirMade})
}

// HostileWorkdirRelative: WorkingDir ../../…/CANARY/made-by-workdir, relative.
func HostileWorkdirRelative(dir string, o HostileOptions) error {
	return writeConfig(dir, o, ocispec.ImageConfig{WorkingDir: Climbing(o.Canary) + "/" + WorkdirMade})
}

// HostileWorkdirProcFD: WorkingDir /proc/self/fd/7 (CVE-2024-21626's leaked descriptor).
func HostileWorkdirProcFD(dir string, o HostileOptions) error {
	return writeConfig(dir, o, ocispec.ImageConfig{WorkingDir: "/proc/self/fd/7"})
}

// HostileWorkdirSymlinkProcFD: /wd-fd -> /proc/self/fd/7, and WorkingDir /wd-fd.
func HostileWorkdirSymlinkProcFD(dir string, o HostileOptions) error {
	return writeConfig(dir, o, ocispec.ImageConfig{WorkingDir: "/wd-fd"}, []Entry{Symlink("/wd-fd", "/proc/self/fd/7")})
}

// HostileWorkdirSymlinkCanary: /wd-link -> /CANARY, and WorkingDir /wd-link/made-by-workdir.
func HostileWorkdirSymlinkCanary(dir string, o HostileOptions) error {
	return writeConfig(dir, o, ocispec.ImageConfig{WorkingDir: "/wd-link/" + WorkdirMade}, []Entry{Symlink("/wd-link", o.Canary)})
}

// HostileVolumeDotDot: Volumes /../../…/CANARY/made-by-volume.
func HostileVolumeDotDot(dir string, o HostileOptions) error {
	return writeConfig(dir, o, ocispec.ImageConfig{Volumes: map[string]struct{}{"/" + Climbing(o.Canary) + "/" + VolumeMade: {}}})
}

// HostileVolumeSymlinkCanary: /vol-link -> /CANARY, and Volumes /vol-link/made-by-volume.
func HostileVolumeSymlinkCanary(dir string, o HostileOptions) error {
	return writeConfig(dir, o, ocispec.ImageConfig{Volumes: map[string]struct{}{"/vol-link/" + VolumeMade: {}}}, []Entry{Symlink("/vol-link", o.Canary)})
}

// HostileVolumeProcFD: Volumes /proc/self/fd/7 and "..".
func HostileVolumeProcFD(dir string, o HostileOptions) error {
	return writeConfig(dir, o, ocispec.ImageConfig{Volumes: map[string]struct{}{"/proc/self/fd/7": {}, "..": {}}})
}

// LayoutBlobPath is where the layout in dir keeps the blob d.
func LayoutBlobPath(dir string, d digest.Digest) string {
	return filepath.Join(dir, ocispec.ImageBlobsDir, d.Algorithm().String(), d.Encoded())
}
