package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// hostileTable collects one line per hostile case and transport: printed at the end of the test
// (t.Log, and stdout so that make hardening's output shows it) and, with KITE_HARDENING_DIR set,
// appended to $KITE_HARDENING_DIR/hostile.tsv as each case ends.
type hostileTable struct {
	// flavor follows the transport's name for the rootful run (" (root, vfs)").
	flavor string
	mu     sync.Mutex
	lines  []string
}

func (h *hostileTable) add(t *testing.T, name, transport string, row hostileRow) {
	t.Helper()
	transport += h.flavor
	h.mu.Lock()
	h.lines = append(h.lines, fmt.Sprintf("%-40s %-22s %s", name, transport, row.outcome))
	h.mu.Unlock()
	dir := os.Getenv("KITE_HARDENING_DIR")
	if dir == "" {
		return
	}
	clean := strings.NewReplacer("\t", " ", "\n", " ")
	line := strings.Join([]string{name, transport, row.outcome, clean.Replace(row.detail)}, "\t") + "\n"
	f, err := os.OpenFile(filepath.Join(dir, "hostile.tsv"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Errorf("record the case in the hardening results: %v", err)
		return
	}
	defer f.Close()
	if _, err := f.WriteString(line); err != nil {
		t.Errorf("record the case in the hardening results: %v", err)
	}
}

func (h *hostileTable) print(t *testing.T) {
	h.mu.Lock()
	defer h.mu.Unlock()
	counts := map[string]int{}
	for _, l := range h.lines {
		f := strings.Fields(l)
		counts[f[len(f)-1]]++
	}
	out := fmt.Sprintf("hostile images%s: %d runs: %d refused, %d contained, %d ESCAPED, %d unexpected\n%s\n",
		h.flavor, len(h.lines), counts["refused"], counts["contained"], counts["ESCAPED"], counts["unexpected"], strings.Join(h.lines, "\n"))
	t.Log("\n" + out)
	fmt.Print(out)
}
