package imagebuild

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"strconv"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// A raw tar writer for the header-level cases. archive/tar's Writer derives PAX path= and
// linkpath= records and GNU long-name blocks from the header's fields, so it cannot write a PAX
// record that disagrees with the ustar name, or a long name a reader must take from an
// ././@LongLink block: those are exactly what these cases need. Blocks follow POSIX.1-2001
// (ustar, pax 'x' records) and GNU tar's manual ("Basic Tar Format", 'L' and 'K' types).

const blockSize = 512

// rawTar is a tar stream built block by block.
type rawTar struct {
	buf bytes.Buffer
	err error
}

// rawHeader is what one header block says. Name and Linkname must fit their 100-byte fields.
type rawHeader struct {
	Name, Linkname     string
	Type               byte
	Mode               int64
	Size               int64
	Devmajor, Devminor int64
	// GNU writes GNU tar's magic ("ustar  \0") instead of POSIX ustar's ("ustar\0" "00").
	GNU bool
}

// header writes one header block.
func (w *rawTar) header(h rawHeader) {
	if w.err != nil {
		return
	}
	if len(h.Name) > 100 || len(h.Linkname) > 100 {
		w.err = fmt.Errorf("raw tar: name %q or link %q does not fit a header block", h.Name, h.Linkname)
		return
	}
	var b [blockSize]byte
	copy(b[0:100], h.Name)
	octal(b[100:108], h.Mode)
	octal(b[108:116], 0)
	octal(b[116:124], 0)
	octal(b[124:136], h.Size)
	octal(b[136:148], epoch.Unix())
	b[156] = h.Type
	copy(b[157:257], h.Linkname)
	if h.GNU {
		copy(b[257:265], "ustar  \x00")
	} else {
		copy(b[257:263], "ustar\x00")
		copy(b[263:265], "00")
	}
	copy(b[265:297], "root")
	copy(b[297:329], "root")
	octal(b[329:337], h.Devmajor)
	octal(b[337:345], h.Devminor)
	// The checksum is taken with its own field as spaces.
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	w.buf.Write(b[:])
}

// octal writes n as a NUL-terminated octal number filling field.
func octal(field []byte, n int64) {
	copy(field, fmt.Sprintf("%0*o\x00", len(field)-1, n))
}

// data writes content padded to a whole block.
func (w *rawTar) data(content []byte) {
	w.buf.Write(content)
	if pad := len(content) % blockSize; pad != 0 {
		w.buf.Write(make([]byte, blockSize-pad))
	}
}

// file writes a header and the content of a regular file.
func (w *rawTar) file(h rawHeader, content []byte) {
	h.Type, h.Size = tar.TypeReg, int64(len(content))
	w.header(h)
	w.data(content)
}

// pax writes a pax extended header ('x') whose records apply to the next header, in the order
// given (key, value, key, value...).
func (w *rawTar) pax(kv ...string) {
	var recs bytes.Buffer
	for i := 0; i+1 < len(kv); i += 2 {
		recs.WriteString(paxRecord(kv[i], kv[i+1]))
	}
	w.header(rawHeader{Name: "PaxHeaders.0/entry", Type: tar.TypeXHeader, Mode: 0o644, Size: int64(recs.Len())})
	w.data(recs.Bytes())
}

// paxRecord formats "LEN key=value\n", where LEN counts the whole record, its own digits included.
func paxRecord(key, value string) string {
	body := " " + key + "=" + value + "\n"
	n := len(body) + 1
	for len(strconv.Itoa(n))+len(body) != n {
		n = len(strconv.Itoa(n)) + len(body)
	}
	return strconv.Itoa(n) + body
}

// gnuLong writes a GNU ././@LongLink block of type 'L' (the next entry's name) or 'K' (its link
// target), NUL-terminated as GNU tar writes it.
func (w *rawTar) gnuLong(typ byte, value string) {
	content := append([]byte(value), 0)
	w.header(rawHeader{Name: "././@LongLink", Type: typ, Mode: 0o644, Size: int64(len(content)), GNU: true})
	w.data(content)
}

// bytes ends the archive with its two zero blocks.
func (w *rawTar) bytes() ([]byte, error) {
	if w.err != nil {
		return nil, w.err
	}
	w.buf.Write(make([]byte, 2*blockSize))
	return w.buf.Bytes(), nil
}

// writeHostileRaw writes an image of o.Base and the given layers, each an uncompressed tar as it
// is, with config cfg. The layers are first written as placeholders of their own and then
// replaced, so that the layout's manifest, config and index stay consistent.
func writeHostileRaw(dir string, o HostileOptions, cfg ocispec.ImageConfig, raws ...[]byte) error {
	placeholders := make([][]Entry, len(raws))
	for i := range raws {
		placeholders[i] = []Entry{File(fmt.Sprintf("/placeholder-%d", i), 0o644, 0, 0, nil)}
	}
	if err := writeHostile(dir, o, cfg, placeholders...); err != nil {
		return err
	}
	e, err := readLayoutEdit(dir)
	if err != nil {
		return err
	}
	for i, raw := range raws {
		if err := e.replaceLayer(i+1, raw); err != nil {
			return err
		}
	}
	return e.storeAll()
}

// replaceLayer stores raw, gzipped, as layer i of the manifest, with its diff_id in the config.
// The placeholder's blob stays in the layout, unreferenced.
func (e *layoutEdit) replaceLayer(i int, raw []byte) error {
	var compressed bytes.Buffer
	zw := gzip.NewWriter(&compressed)
	if _, err := zw.Write(raw); err != nil {
		return fmt.Errorf("compress layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("compress layer: %w", err)
	}
	desc, err := (&layoutWriter{dir: e.dir}).blob(ocispec.MediaTypeImageLayerGzip, compressed.Bytes())
	if err != nil {
		return err
	}
	e.manifest.Layers[i] = desc
	e.config.RootFS.DiffIDs[i] = digest.FromBytes(raw)
	return nil
}
