package report

// Stream names one of the two outputs of `probe output`.
type Stream byte

const (
	Stdout Stream = 'o'
	Stderr Stream = 'e'
)

// ChunkSize is how many bytes `probe output` writes to one stream before switching to the other.
const ChunkSize = 4096

// lineLen is the length of one pattern line: the stream letter, a space, the line's byte offset
// in 13 decimal digits and a newline. Because every line carries its own offset, a lost,
// duplicated or reordered chunk shows up as a mismatch at the exact offset where it happened.
const lineLen = 16

// Pattern returns bytes [off, off+n) of the stream's pattern: lines "o 0000000000000\n",
// "o 0000000000016\n" ... for Stdout and the same with 'e' for Stderr.
func Pattern(s Stream, off, n int64) []byte {
	out := make([]byte, 0, n)
	var line [lineLen]byte
	line[0], line[1], line[lineLen-1] = byte(s), ' ', '\n'
	for first := off - off%lineLen; first < off+n; first += lineLen {
		// Formatted by hand: fmt.Sprintf per line makes a 100 MB run take seconds.
		v := first
		for i := lineLen - 2; i >= 2; i-- {
			line[i] = byte('0' + v%10)
			v /= 10
		}
		lo, hi := int64(0), int64(lineLen)
		if first < off {
			lo = off - first
		}
		if first+lineLen > off+n {
			hi = off + n - first
		}
		out = append(out, line[lo:hi]...)
	}
	return out
}

// StdoutPattern is everything `probe output n` writes to stdout.
func StdoutPattern(n int64) []byte { return Pattern(Stdout, 0, n) }

// StderrPattern is everything `probe output n` writes to stderr.
func StderrPattern(n int64) []byte { return Pattern(Stderr, 0, n) }
