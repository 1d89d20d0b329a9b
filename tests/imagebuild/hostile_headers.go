package imagebuild

import (
	"archive/tar"
	"path"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Header-level hostile cases: names and link targets that only a PAX record or a GNU long-name
// block gives (the ustar name beside them is harmless), writes through a symlink an earlier layer
// made, the root entry itself as a symlink, whiteouts whose names climb, and one name given
// several times with different types.

// headerCases are listed by HostileCases.
func headerCases() []HostileCase {
	return []HostileCase{
		{"pax-path-dotdot", "a harmless ustar name whose PAX path= record climbs to the canary with ../", HostilePAXPathDotDot},
		{"pax-path-absolute", "a harmless ustar name whose PAX path= record is the canary's absolute path", HostilePAXPathAbsolute},
		{"pax-linkpath-hardlink", "a hard link whose PAX linkpath= record climbs to the canary's victim", HostilePAXLinkpathHardlink},
		{"pax-linkpath-symlink-write", "a symlink whose PAX linkpath= record is the canary, then a file written through it", HostilePAXLinkpathSymlinkWrite},
		{"gnu-longname-dotdot", "a GNU ././@LongLink name ('L') climbing to the canary", HostileGNULongNameDotDot},
		{"gnu-longname-absolute", "a GNU ././@LongLink name ('L') that is an absolute path in the canary", HostileGNULongNameAbsolute},
		{"gnu-longlink-hardlink", "a hard link whose GNU ././@LongLink target ('K') climbs to the canary's victim", HostileGNULongLinkHardlink},
		{"gnu-longlink-symlink-write", "a symlink whose GNU ././@LongLink target ('K') climbs to the canary, then a file written through it", HostileGNULongLinkSymlinkWrite},
		{"across-layers-symlink-write", "a symlink to the canary in one layer, a file written through it in the next", HostileAcrossLayersSymlinkWrite},
		{"across-layers-relative-symlink-write", "a symlink climbing to the canary in one layer, a file written through it in the next", HostileAcrossLayersRelativeSymlinkWrite},
		{"across-layers-symlink-mkdir", "a symlink to the canary in one layer, a file whose missing directory lies behind it in the next", HostileAcrossLayersSymlinkMkdir},
		{"across-layers-hardlink", "a symlink to the canary in one layer, a hard link to victim behind it in the next", HostileAcrossLayersHardlink},
		{"across-layers-nested-symlink", "a directory in one layer, a symlink to the canary inside it in the next, a file through both in the third", HostileAcrossLayersNestedSymlink},
		{"root-dot-symlink", "the entry \".\" is a symlink to the canary, then a file below the root", HostileRootDotSymlink},
		{"root-dotslash-symlink", "the entry \"./\" is a symlink to \"..\", then a file below the root", HostileRootDotSlashSymlink},
		{"root-slash-symlink", "the entry \"/\" is a symlink to the canary, then a file below the root", HostileRootSlashSymlink},
		{"whiteout-of-dot", "a whiteout named \".wh..\" (of \".\", the layer's root)", HostileWhiteoutOfDot},
		{"whiteout-of-dotdot", "a whiteout named \".wh...\" (of \"..\", above the layer's root)", HostileWhiteoutOfDotDot},
		{"whiteout-dotdot-inside", "a whiteout a/../../.wh.victim that climbs out through a directory", HostileWhiteoutDotDotInside},
		{"whiteout-climbing", "a whiteout ../../…/CANARY/.wh.victim", HostileWhiteoutClimbing},
		{"opaque-climbing", "an opaque whiteout a/../../…/CANARY/.wh..wh..opq", HostileOpaqueClimbing},
		{"whiteout-dotdot-lower", "a whiteout dir/.wh... (of dir/.., the root) in a layer above one that has dir", HostileWhiteoutDotDotLower},
		{"dup-file-dir", "a file, then a directory of the same name", HostileDupFileDir},
		{"dup-dir-file", "a directory holding a file, then a regular file of the directory's name", HostileDupDirFile},
		{"dup-file-symlink", "a file, then a symlink to the canary's victim of the same name", HostileDupFileSymlink},
		{"dup-symlink-dir", "a symlink to the canary, then a directory of the same name holding a file", HostileDupSymlinkDir},
		{"dup-file-dir-symlink", "a file, a directory and a symlink to the canary of one name, then a file below it", HostileDupFileDirSymlink},
		{"dup-hardlink-file", "a hard link to a file, then a file of the hard link's name", HostileDupHardlinkFile},
	}
}

func rawLayer(build func(w *rawTar)) ([]byte, error) {
	var w rawTar
	build(&w)
	return w.bytes()
}

func writeRawLayer(dir string, o HostileOptions, build func(w *rawTar)) error {
	raw, err := rawLayer(build)
	if err != nil {
		return err
	}
	return writeHostileRaw(dir, o, ocispec.ImageConfig{}, raw)
}

var escaped = []byte("escaped\n")

// HostilePAXPathDotDot: ustar name pax-innocent-dotdot, PAX path=../../…/CANARY/written-by-pax-path.
func HostilePAXPathDotDot(dir string, o HostileOptions) error {
	return writeRawLayer(dir, o, func(w *rawTar) {
		w.pax("path", Climbing(o.Canary)+"/written-by-pax-path")
		w.file(rawHeader{Name: "pax-innocent-dotdot", Mode: 0o644}, escaped)
	})
}

// HostilePAXPathAbsolute: ustar name pax-innocent-absolute, PAX path=/CANARY/written-by-pax-absolute.
func HostilePAXPathAbsolute(dir string, o HostileOptions) error {
	return writeRawLayer(dir, o, func(w *rawTar) {
		w.pax("path", path.Join(o.Canary, "written-by-pax-absolute"))
		w.file(rawHeader{Name: "pax-innocent-absolute", Mode: 0o644}, escaped)
	})
}

// HostilePAXLinkpathHardlink: a hard link pax-hardlink whose ustar target is the harmless
// pax-hardlink-target (a file of the layer) and whose PAX linkpath= climbs to CANARY/victim.
func HostilePAXLinkpathHardlink(dir string, o HostileOptions) error {
	return writeRawLayer(dir, o, func(w *rawTar) {
		w.file(rawHeader{Name: "pax-hardlink-target", Mode: 0o644}, []byte("harmless\n"))
		w.pax("linkpath", Climbing(o.Canary)+"/victim")
		w.header(rawHeader{Name: "pax-hardlink", Linkname: "pax-hardlink-target", Type: tar.TypeLink, Mode: 0o644})
	})
}

// HostilePAXLinkpathSymlinkWrite: a symlink pax-link whose ustar target is "." and whose PAX
// linkpath= is /CANARY, then pax-link/written-through-pax-symlink.
func HostilePAXLinkpathSymlinkWrite(dir string, o HostileOptions) error {
	return writeRawLayer(dir, o, func(w *rawTar) {
		w.pax("linkpath", o.Canary)
		w.header(rawHeader{Name: "pax-link", Linkname: ".", Type: tar.TypeSymlink, Mode: 0o777})
		w.file(rawHeader{Name: "pax-link/written-through-pax-symlink", Mode: 0o644}, escaped)
	})
}

// HostileGNULongNameDotDot: an 'L' block naming ../../…/CANARY/written-by-gnu-longname, before a
// header whose own name is gnu-innocent-dotdot.
func HostileGNULongNameDotDot(dir string, o HostileOptions) error {
	return writeRawLayer(dir, o, func(w *rawTar) {
		w.gnuLong('L', Climbing(o.Canary)+"/written-by-gnu-longname")
		w.file(rawHeader{Name: "gnu-innocent-dotdot", Mode: 0o644, GNU: true}, escaped)
	})
}

// HostileGNULongNameAbsolute: an 'L' block naming /CANARY/<a long directory>/written-by-gnu-
// absolute; the name is longer than a header's field, as GNU tar writes it.
func HostileGNULongNameAbsolute(dir string, o HostileOptions) error {
	long := path.Join(o.Canary, strings.Repeat("d", 120), "written-by-gnu-absolute")
	return writeRawLayer(dir, o, func(w *rawTar) {
		w.gnuLong('L', long)
		w.file(rawHeader{Name: "gnu-innocent-absolute", Mode: 0o644, GNU: true}, escaped)
	})
}

// HostileGNULongLinkHardlink: a hard link gnu-hardlink whose 'K' target climbs to CANARY/victim;
// the header's own target is the harmless gnu-hardlink-target.
func HostileGNULongLinkHardlink(dir string, o HostileOptions) error {
	return writeRawLayer(dir, o, func(w *rawTar) {
		w.file(rawHeader{Name: "gnu-hardlink-target", Mode: 0o644, GNU: true}, []byte("harmless\n"))
		w.gnuLong('K', Climbing(o.Canary)+"/victim")
		w.header(rawHeader{Name: "gnu-hardlink", Linkname: "gnu-hardlink-target", Type: tar.TypeLink, Mode: 0o644, GNU: true})
	})
}

// HostileGNULongLinkSymlinkWrite: a symlink gnu-link whose 'K' target climbs to the canary, then
// gnu-link/written-through-gnu-symlink.
func HostileGNULongLinkSymlinkWrite(dir string, o HostileOptions) error {
	return writeRawLayer(dir, o, func(w *rawTar) {
		w.gnuLong('K', Climbing(o.Canary))
		w.header(rawHeader{Name: "gnu-link", Linkname: ".", Type: tar.TypeSymlink, Mode: 0o777, GNU: true})
		w.file(rawHeader{Name: "gnu-link/written-through-gnu-symlink", Mode: 0o644, GNU: true}, escaped)
	})
}

// HostileAcrossLayersSymlinkWrite: xl-abs -> /CANARY in one layer, then
// xl-abs/written-across-layers in the next.
func HostileAcrossLayersSymlinkWrite(dir string, o HostileOptions) error {
	return writeHostile(dir, o, ocispec.ImageConfig{},
		[]Entry{RawSymlink("xl-abs", o.Canary)},
		[]Entry{RawFile("xl-abs/written-across-layers", escaped)})
}

// HostileAcrossLayersRelativeSymlinkWrite: xl-rel -> ../../…/CANARY in one layer, then
// xl-rel/written-across-layers-relative in the next.
func HostileAcrossLayersRelativeSymlinkWrite(dir string, o HostileOptions) error {
	return writeHostile(dir, o, ocispec.ImageConfig{},
		[]Entry{RawSymlink("xl-rel", Climbing(o.Canary))},
		[]Entry{RawFile("xl-rel/written-across-layers-relative", escaped)})
}

// HostileAcrossLayersSymlinkMkdir: xl-mkdir -> /CANARY in one layer, then
// xl-mkdir/made-across-layers/file in the next, whose directory does not exist.
func HostileAcrossLayersSymlinkMkdir(dir string, o HostileOptions) error {
	return writeHostile(dir, o, ocispec.ImageConfig{},
		[]Entry{RawSymlink("xl-mkdir", o.Canary)},
		[]Entry{RawFile("xl-mkdir/made-across-layers/file", escaped)})
}

// HostileAcrossLayersHardlink: xl-hl -> /CANARY in one layer, then xl-hardlink, a hard link to
// xl-hl/victim, in the next.
func HostileAcrossLayersHardlink(dir string, o HostileOptions) error {
	return writeHostile(dir, o, ocispec.ImageConfig{},
		[]Entry{RawSymlink("xl-hl", o.Canary)},
		[]Entry{RawHardlink("xl-hardlink", "xl-hl/victim")})
}

// HostileAcrossLayersNestedSymlink: a directory xl-nest/ in one layer, xl-nest/inner -> /CANARY
// in the next, and xl-nest/inner/written-through-nested in the third: the symlink is below a
// directory, two layers down.
func HostileAcrossLayersNestedSymlink(dir string, o HostileOptions) error {
	return writeHostile(dir, o, ocispec.ImageConfig{},
		[]Entry{RawDir("xl-nest/", 0o755)},
		[]Entry{RawSymlink("xl-nest/inner", o.Canary)},
		[]Entry{RawFile("xl-nest/inner/written-through-nested", escaped)})
}

// HostileRootDotSymlink: "." -> /CANARY, then written-under-root-dot.
func HostileRootDotSymlink(dir string, o HostileOptions) error {
	return writeHostileLayer(dir, o,
		RawSymlink(".", o.Canary),
		RawFile("written-under-root-dot", escaped))
}

// HostileRootDotSlashSymlink: "./" -> "..", then ./written-under-root-dotslash.
func HostileRootDotSlashSymlink(dir string, o HostileOptions) error {
	return writeHostileLayer(dir, o,
		RawSymlink("./", ".."),
		RawFile("./written-under-root-dotslash", escaped))
}

// HostileRootSlashSymlink: "/" -> /CANARY, then written-under-root-slash.
func HostileRootSlashSymlink(dir string, o HostileOptions) error {
	return writeHostileLayer(dir, o,
		RawSymlink("/", o.Canary),
		RawFile("written-under-root-slash", escaped))
}

// HostileWhiteoutOfDot: .wh.. deletes "." of the layer's root: an extractor that joins the name
// onto the directory removes the directory itself.
func HostileWhiteoutOfDot(dir string, o HostileOptions) error {
	return writeHostileLayer(dir, o, RawFile(".wh..", nil))
}

// HostileWhiteoutOfDotDot: .wh... deletes "..": joined onto the layer's root, that is the
// directory holding every layer of the store.
func HostileWhiteoutOfDotDot(dir string, o HostileOptions) error {
	return writeHostileLayer(dir, o, RawFile(".wh...", nil))
}

// HostileWhiteoutDotDotInside: a directory wh-a/, then wh-a/../../.wh.victim.
func HostileWhiteoutDotDotInside(dir string, o HostileOptions) error {
	return writeHostileLayer(dir, o,
		RawDir("wh-a/", 0o755),
		RawFile("wh-a/../../.wh.victim", nil))
}

// HostileWhiteoutClimbing: ../../…/CANARY/.wh.victim.
func HostileWhiteoutClimbing(dir string, o HostileOptions) error {
	return writeHostileLayer(dir, o, RawFile(Climbing(o.Canary)+"/.wh.victim", nil))
}

// HostileOpaqueClimbing: a directory opq-a/, then opq-a/../../…/CANARY/.wh..wh..opq.
func HostileOpaqueClimbing(dir string, o HostileOptions) error {
	return writeHostileLayer(dir, o,
		RawDir("opq-a/", 0o755),
		RawFile("opq-a/"+Climbing(o.Canary)+"/.wh..wh..opq", nil))
}

// HostileWhiteoutDotDotLower: wh-dir/ with a file in one layer, then wh-dir/.wh... (a whiteout of
// wh-dir/.., the root) in the next.
func HostileWhiteoutDotDotLower(dir string, o HostileOptions) error {
	return writeHostile(dir, o, ocispec.ImageConfig{},
		[]Entry{RawDir("wh-dir/", 0o755), RawFile("wh-dir/file", []byte("lower\n"))},
		[]Entry{RawFile("wh-dir/.wh...", nil)})
}

// HostileDupFileDir: dup-fd a file, then dup-fd/ a directory.
func HostileDupFileDir(dir string, o HostileOptions) error {
	return writeHostileLayer(dir, o, RawFile("dup-fd", []byte("first a file\n")), RawDir("dup-fd/", 0o755))
}

// HostileDupDirFile: dup-df/ with dup-df/inner, then dup-df a file.
func HostileDupDirFile(dir string, o HostileOptions) error {
	return writeHostileLayer(dir, o,
		RawDir("dup-df/", 0o755),
		RawFile("dup-df/inner", []byte("inside the directory\n")),
		RawFile("dup-df", []byte("then a file\n")))
}

// HostileDupFileSymlink: dup-fs a file, then dup-fs -> /CANARY/victim: an extractor that applies
// the file's metadata after the symlink replaced it changes victim.
func HostileDupFileSymlink(dir string, o HostileOptions) error {
	return writeHostileLayer(dir, o,
		RawFile("dup-fs", []byte("first a file\n")),
		RawSymlink("dup-fs", path.Join(o.Canary, "victim")))
}

// HostileDupSymlinkDir: dup-sd -> /CANARY, then dup-sd/ a directory and dup-sd/written-dup-dir.
func HostileDupSymlinkDir(dir string, o HostileOptions) error {
	return writeHostileLayer(dir, o,
		RawSymlink("dup-sd", o.Canary),
		RawDir("dup-sd/", 0o700),
		RawFile("dup-sd/written-dup-dir", escaped))
}

// HostileDupFileDirSymlink: dup-fds a file, a directory, a symlink to /CANARY, then
// dup-fds/written-dup-three.
func HostileDupFileDirSymlink(dir string, o HostileOptions) error {
	return writeHostileLayer(dir, o,
		RawFile("dup-fds", []byte("a file\n")),
		RawDir("dup-fds/", 0o755),
		RawSymlink("dup-fds", o.Canary),
		RawFile("dup-fds/written-dup-three", escaped))
}

// HostileDupHardlinkFile: dup-target a file, dup-hl a hard link to it, then dup-hl a file: an
// extractor that writes the file through the existing link changes dup-target too.
func HostileDupHardlinkFile(dir string, o HostileOptions) error {
	return writeHostileLayer(dir, o,
		RawFile("dup-target", []byte("the target\n")),
		RawHardlink("dup-hl", "dup-target"),
		RawFile("dup-hl", []byte("written through the hard link\n")))
}
