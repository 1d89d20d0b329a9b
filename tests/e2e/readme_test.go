package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeScript runs the script example of README.md as it is written, with IMAGE a test
// image and KITE_DIR a fresh data directory.
func TestReadmeScript(t *testing.T) {
	readme := string(readFile(t, filepath.Join(filepath.Dir(binDir), "README.md")))
	const marker = "<!-- tests/e2e/readme_test.go runs the next block with bash -->\n```sh\n"
	start := strings.Index(readme, marker)
	if start < 0 {
		t.Fatal("README.md has no tested script block")
	}
	script := readme[start+len(marker):]
	script = script[:strings.Index(script, "```")]
	if _, err := exec.LookPath("jq"); err != nil {
		needHost(t, "jq is not installed (apt-get install jq)")
	}
	dir := newDataDir(t)
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Env = mergeEnv(os.Environ(), []string{
		"PATH=" + binDir + ":" + os.Getenv("PATH"), "KITE_DIR=" + dir, "IMAGE=" + layoutRef("busybox"),
		"TMPDIR=" + newScratchDir(t, "readme-"),
	})
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the README's script: %v\n%s", err, out)
	}
	// The pod's exit status, the one failed pod's UUID from kite rm, and no pod left.
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 || lines[0] != "3" || len(lines[1]) != 36 || strings.TrimSpace(lines[2]) != "0" {
		t.Errorf("the README's script printed %q, want the exit status 3, the removed pod's UUID and 0 pods", lines)
	}
}
