package imagebuild

import (
	"archive/tar"
	"fmt"
	"path"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Hostile images: OCI layouts that a careful runtime refuses, or at least keeps inside the image's
// root filesystem. Each is written by a function of the form func(dir string, o HostileOptions)
// error, listed with a name in HostileCases. Tar-level cases carry entries whose names or link
// targets leave the root (through "..", absolute names, symlinks or hard links) and aim at
// o.Canary, an absolute host directory the caller watches; layout-level cases tamper with the
// blobs, descriptors and config of an otherwise well-formed image.
//
// Every hostile image has o.Base as its bottom layer, so an image that a runtime accepts still
// runs an app (e.g. busybox's ls or the probe) that can show where the hostile content landed.

// HostileOptions is what every hostile image is built around.
type HostileOptions struct {
	// Tag names the image in the layout's index; "hostile" when empty.
	Tag string
	// Base is a well-formed bottom layer (e.g. BusyboxLayer's) under the hostile content.
	Base []Entry
	// Canary is an absolute host directory outside the runtime's data directory. Hostile names,
	// symlinks and hard links aim at it (and at Canary/victim, a file the caller should create),
	// so that a write outside the root filesystem leaves a trace there.
	Canary string
	// URL is an http URL the caller watches. A layer descriptor of HostileExternalURL names a
	// location below it as its blob's external source, so that a fetch that follows descriptor
	// URLs shows up there.
	URL string
}

func (o HostileOptions) tag() string {
	if o.Tag == "" {
		return "hostile"
	}
	return o.Tag
}

// HostileCase is one named hostile image.
type HostileCase struct {
	// Name is short and unique, fit for a subtest name.
	Name string
	// Problem says what is wrong with the image.
	Problem string
	// Write writes the image as a new OCI layout in dir, which must be empty or missing.
	Write func(dir string, o HostileOptions) error
}

// HostileCases lists every hostile image: the tar-level cases of this file, then those of
// hostile_headers.go and hostile_special.go, then the layout-level ones of tamper.go and
// hostile_manifest.go.
func HostileCases() []HostileCase {
	cases := baseTarCases()
	cases = append(cases, headerCases()...)
	cases = append(cases, specialCases()...)
	cases = append(cases, layoutCases()...)
	return append(cases, manifestCases()...)
}

func baseTarCases() []HostileCase {
	return []HostileCase{
		{"name-dotdot", "a file whose name climbs out of the root with ../", HostileDotDotName},
		{"name-dotdot-inside", "a file whose name starts inside the root and climbs out (bin/../../..)", HostileDotDotInsideName},
		{"name-absolute", "a file with an absolute name naming the canary", HostileAbsoluteName},
		{"symlink-absolute-write", "a symlink to the canary's absolute path, then a file written through it", HostileAbsoluteSymlinkWrite},
		{"symlink-relative-write", "a symlink climbing to the canary with ../, then a file written through it", HostileRelativeSymlinkWrite},
		{"symlink-parent-mkdir", "a symlink to the canary, then a file whose missing parent directory lies behind it", HostileSymlinkParentMkdir},
		{"symlink-then-file", "a symlink to the canary's victim, then a regular file of the same name", HostileSymlinkThenFile},
		{"dir-then-symlink", "a directory (mode 0700), then a symlink to the canary of the same name", HostileDirThenSymlink},
		{"hardlink-dotdot", "a hard link to the canary's victim through ../", HostileDotDotHardlink},
		{"hardlink-dotdot-clamped", "a file at the canary's path inside the image, then a hard link to ../../…/CANARY/victim, which names that file once clamped to the root", HostileDotDotHardlinkClamped},
		{"hardlink-absolute", "a hard link to the canary's victim by its absolute host path", HostileAbsoluteHardlink},
		{"hardlink-through-symlink", "a symlink to the canary, then a hard link to victim behind it", HostileHardlinkThroughSymlink},
		{"hardlink-to-escaping-symlink", "a symlink to the canary's victim, then a hard link to that symlink", HostileHardlinkToEscapingSymlink},
		{"whiteout-through-symlink", "a symlink to the canary, then a whiteout of victim behind it, in one layer", HostileWhiteoutThroughSymlink},
		{"whiteout-through-lower-symlink", "a symlink to the canary in one layer, a whiteout of victim behind it in the next", HostileWhiteoutThroughLowerSymlink},
		{"opaque-through-symlink", "a symlink to the canary, then an opaque whiteout behind it", HostileOpaqueThroughSymlink},
		{"etc-symlink-user", "/etc a symlink to the canary, and a config User that only the canary's passwd names", HostileEtcSymlinkUser},
	}
}

func layoutCases() []HostileCase {
	return []HostileCase{
		{"layer-digest-mismatch", "a layer blob whose content is not what its digest names", HostileLayerDigestMismatch},
		{"config-digest-mismatch", "a config blob whose content is not what its digest names", HostileConfigDigestMismatch},
		{"manifest-digest-mismatch", "a manifest blob whose content is not what the index's digest names", HostileManifestDigestMismatch},
		{"layer-size-short", "a layer descriptor whose size is smaller than the blob", HostileLayerSizeShort},
		{"layer-size-long", "a layer descriptor whose size is larger than the blob", HostileLayerSizeLong},
		{"diff-id-mismatch", "a config whose rootfs.diff_ids do not match the layers", HostileDiffIDMismatch},
		{"diff-id-missing", "a config with fewer rootfs.diff_ids than the manifest has layers", HostileDiffIDMissing},
		{"platform-windows", "a config (and index entry) for os windows", HostileWindows},
		{"platform-s390x", "a config (and index entry) for architecture s390x", HostileS390x},
		{"layer-external-url", "a layer descriptor naming an http URL as its blob's source", HostileExternalURL},
	}
}

// Raw entries: unlike Dir, File, Symlink and Whiteout, these write name (and target) to the tar
// header exactly as given, without cleaning.

// RawFile is a root-owned regular file named name, verbatim.
func RawFile(name string, content []byte) Entry {
	return Entry{Name: name, Type: tar.TypeReg, Mode: 0o644, Content: content}
}

// RawDir is a root-owned directory named name, verbatim.
func RawDir(name string, mode int64) Entry {
	return Entry{Name: name, Type: tar.TypeDir, Mode: mode}
}

// RawSymlink is a symlink named name to target, both verbatim.
func RawSymlink(name, target string) Entry {
	return Entry{Name: name, Type: tar.TypeSymlink, Mode: 0o777, Linkname: target}
}

// RawHardlink is a hard link named name to target, both verbatim.
func RawHardlink(name, target string) Entry {
	return Entry{Name: name, Type: tar.TypeLink, Mode: 0o644, Linkname: target}
}

// climbs is more "../" than any directory has parents, so that a relative path starting with it
// reaches / from wherever it is resolved.
var climbs = strings.Repeat("../", 32)

// Climbing turns an absolute host path into a relative one that reaches it from any directory:
// "../../…/tmp/canary".
func Climbing(hostPath string) string {
	return climbs + strings.TrimPrefix(path.Clean(hostPath), "/")
}

// PayloadName and PayloadContent are the file of the extra, well-formed layer that the
// layout-level cases tamper with.
const (
	PayloadName    = "hostile-payload"
	PayloadContent = "the payload as its digest names it\n"
)

// payloadLayer is a small, well-formed layer: the layout-level cases tamper with it rather than
// with the base layer, which a store may already hold and then never read again.
func payloadLayer(content string) []Entry {
	return []Entry{File("/"+PayloadName, 0o644, 0, 0, []byte(content))}
}

// writeHostile writes an image of o.Base and the given layers on top, with config cfg.
func writeHostile(dir string, o HostileOptions, cfg ocispec.ImageConfig, layers ...[]Entry) error {
	if !path.IsAbs(o.Canary) {
		return fmt.Errorf("hostile image: the canary %q is not an absolute path", o.Canary)
	}
	if cfg.Env == nil {
		cfg.Env = []string{defaultPath}
	}
	if cfg.Cmd == nil {
		cfg.Cmd = []string{"/bin/sh"}
	}
	return WriteLayout(dir, Image{Tag: o.tag(), Layers: append([][]Entry{o.Base}, layers...), Config: cfg})
}

func writeHostileLayer(dir string, o HostileOptions, entries ...Entry) error {
	return writeHostile(dir, o, ocispec.ImageConfig{}, entries)
}

// HostileDotDotName: ../../…/CANARY/written-by-dotdot-name.
func HostileDotDotName(dir string, o HostileOptions) error {
	return writeHostileLayer(dir, o, RawFile(Climbing(o.Canary)+"/written-by-dotdot-name", []byte("escaped\n")))
}

// HostileDotDotInsideName: bin/../../…/CANARY/written-by-dotdot-inside-name.
func HostileDotDotInsideName(dir string, o HostileOptions) error {
	return writeHostileLayer(dir, o, RawFile("bin/"+Climbing(o.Canary)+"/written-by-dotdot-inside-name", []byte("escaped\n")))
}

// HostileAbsoluteName: /CANARY/written-by-absolute-name.
func HostileAbsoluteName(dir string, o HostileOptions) error {
	return writeHostileLayer(dir, o, RawFile(path.Join(o.Canary, "written-by-absolute-name"), []byte("escaped\n")))
}

// HostileAbsoluteSymlinkWrite: escape-abs -> /CANARY, then escape-abs/written-through-absolute-symlink.
func HostileAbsoluteSymlinkWrite(dir string, o HostileOptions) error {
	return writeHostileLayer(dir, o,
		RawSymlink("escape-abs", o.Canary),
		RawFile("escape-abs/written-through-absolute-symlink", []byte("escaped\n")))
}

// HostileRelativeSymlinkWrite: escape-rel -> ../../…/CANARY, then
// escape-rel/written-through-relative-symlink.
func HostileRelativeSymlinkWrite(dir string, o HostileOptions) error {
	return writeHostileLayer(dir, o,
		RawSymlink("escape-rel", Climbing(o.Canary)),
		RawFile("escape-rel/written-through-relative-symlink", []byte("escaped\n")))
}

// HostileSymlinkParentMkdir: escape-mkdir -> /CANARY, then
// escape-mkdir/made-through-symlink/file, whose parent directory does not exist yet.
func HostileSymlinkParentMkdir(dir string, o HostileOptions) error {
	return writeHostileLayer(dir, o,
		RawSymlink("escape-mkdir", o.Canary),
		RawFile("escape-mkdir/made-through-symlink/file", []byte("escaped\n")))
}

// HostileSymlinkThenFile: victim-link -> /CANARY/victim, then a regular file victim-link: an
// extractor that opens the name without removing the symlink first overwrites victim.
func HostileSymlinkThenFile(dir string, o HostileOptions) error {
	return writeHostileLayer(dir, o,
		RawSymlink("victim-link", path.Join(o.Canary, "victim")),
		RawFile("victim-link", []byte("overwritten through a symlink\n")))
}

// HostileDirThenSymlink: a directory dir-then-link (mode 0700), then a symlink dir-then-link ->
// /CANARY: an extractor that sets directory modes and times at the end, following symlinks,
// changes the canary.
func HostileDirThenSymlink(dir string, o HostileOptions) error {
	return writeHostileLayer(dir, o,
		RawDir("dir-then-link/", 0o700),
		RawSymlink("dir-then-link", o.Canary))
}

// HostileDotDotHardlink: hardlink-dotdot, a hard link to ../../…/CANARY/victim.
func HostileDotDotHardlink(dir string, o HostileOptions) error {
	return writeHostileLayer(dir, o, RawHardlink("hardlink-dotdot", Climbing(o.Canary)+"/victim"))
}

// HostileDotDotHardlinkClamped: CANARY/victim as a file inside the image (a name without the
// leading slash), then hardlink-dotdot-clamped, a hard link to ../../…/CANARY/victim. An extractor
// that clamps ".." at the root, instead of refusing it, links the image's own file; one that
// resolves it from the layer's directory on the host links the canary's victim.
func HostileDotDotHardlinkClamped(dir string, o HostileOptions) error {
	inside := strings.TrimPrefix(path.Clean(o.Canary), "/")
	return writeHostileLayer(dir, o,
		RawFile(inside+"/victim", []byte("the image's own victim\n")),
		RawHardlink("hardlink-dotdot-clamped", Climbing(o.Canary)+"/victim"))
}

// HostileAbsoluteHardlink: hardlink-absolute, a hard link to /CANARY/victim.
func HostileAbsoluteHardlink(dir string, o HostileOptions) error {
	return writeHostileLayer(dir, o, RawHardlink("hardlink-absolute", path.Join(o.Canary, "victim")))
}

// HostileHardlinkThroughSymlink: hl-escape -> /CANARY, then hardlink-through-symlink, a hard link
// to hl-escape/victim.
func HostileHardlinkThroughSymlink(dir string, o HostileOptions) error {
	return writeHostileLayer(dir, o,
		RawSymlink("hl-escape", o.Canary),
		RawHardlink("hardlink-through-symlink", "hl-escape/victim"))
}

// HostileHardlinkToEscapingSymlink: escape-victim -> /CANARY/victim, then hardlink-to-symlink, a
// hard link to that symlink; an extractor that then sets the link's mode or times through it
// changes victim.
func HostileHardlinkToEscapingSymlink(dir string, o HostileOptions) error {
	e := RawHardlink("hardlink-to-symlink", "escape-victim")
	e.Mode = 0o4777
	return writeHostileLayer(dir, o, RawSymlink("escape-victim", path.Join(o.Canary, "victim")), e)
}

// HostileWhiteoutThroughSymlink: wh-link -> /CANARY, then wh-link/.wh.victim, in one layer.
func HostileWhiteoutThroughSymlink(dir string, o HostileOptions) error {
	return writeHostileLayer(dir, o,
		RawSymlink("wh-link", o.Canary),
		RawFile("wh-link/.wh.victim", nil))
}

// HostileWhiteoutThroughLowerSymlink: wh-lower-link -> /CANARY in one layer, then
// wh-lower-link/.wh.victim in the next (a driver that applies a layer onto a copy of the ones
// below meets the symlink there).
func HostileWhiteoutThroughLowerSymlink(dir string, o HostileOptions) error {
	return writeHostile(dir, o, ocispec.ImageConfig{},
		[]Entry{RawSymlink("wh-lower-link", o.Canary)},
		[]Entry{RawFile("wh-lower-link/.wh.victim", nil)})
}

// HostileOpaqueThroughSymlink: opq-link -> /CANARY, then opq-link/.wh..wh..opq, which an
// extractor turns into an opaque mark (an xattr) on the directory it resolves.
func HostileOpaqueThroughSymlink(dir string, o HostileOptions) error {
	return writeHostileLayer(dir, o,
		RawSymlink("opq-link", o.Canary),
		RawFile("opq-link/.wh..wh..opq", nil))
}

// HostileEtcUser is the config User of HostileEtcSymlinkUser. The base layer's /etc/passwd is
// hidden, so only a passwd file in the canary (put there by the caller) can name it.
const HostileEtcUser = "canaryuser"

// HostileEtcSymlinkUser: a layer that replaces /etc with a symlink to /CANARY, and a config
// User that the image cannot resolve: inside the image /etc/passwd does not exist. A runtime that
// reads the image's passwd on the host without confining symlinks reads CANARY/passwd instead.
func HostileEtcSymlinkUser(dir string, o HostileOptions) error {
	return writeHostile(dir, o, ocispec.ImageConfig{User: HostileEtcUser},
		[]Entry{RawSymlink("etc", o.Canary)})
}
