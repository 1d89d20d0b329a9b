package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/kite-runtime/kite/tests/probe/report"
)

// outputSize is how much `probe output` writes to each stream: enough to fill any pipe buffer
// many times over, so a runtime that copied the streams would have to keep both flowing.
const outputSize = 1 << 20

// TestOutputPassedThrough checks that the app's stdout and stderr reach kite's caller unchanged,
// byte for byte and each on its own stream, whether they are pipes or regular files.
func TestOutputPassedThrough(t *testing.T) {
	dir := sharedDir(t, "busybox")
	args := runArgs(layoutRef("busybox"), "probe", "output", fmt.Sprint(outputSize))
	wantOut, wantErr := report.StdoutPattern(outputSize), report.StderrPattern(outputSize)

	t.Run("pipes", func(t *testing.T) {
		r := kite(t, dir, args...)
		wantCode(t, r, 0, "probe output")
		compareStream(t, "stdout", []byte(r.Stdout), wantOut)
		compareStream(t, "stderr", []byte(r.Stderr), wantErr)
	})
	t.Run("files", func(t *testing.T) {
		tmp := newScratchDir(t, "output-")
		outF, errF := createFile(t, filepath.Join(tmp, "stdout")), createFile(t, filepath.Join(tmp, "stderr"))
		r := kiteWith(t, dir, &options{stdout: outF, stderr: errF}, args...)
		wantCode(t, r, 0, "probe output")
		compareStream(t, "stdout", readFile(t, outF.Name()), wantOut)
		compareStream(t, "stderr", readFile(t, errF.Name()), wantErr)
	})
}

// compareStream reports the first offset where got and want differ.
func compareStream(t *testing.T, name string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	excerpt := func(b []byte) []byte { return b[i:min(len(b), i+48)] }
	t.Errorf("%s: %d bytes, want %d; first difference at offset %d: got %q, want %q",
		name, len(got), len(want), i, excerpt(got), excerpt(want))
}

func createFile(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
