// Package deps checks what kite's binaries link. kite-stage1 stays resident beside every app and
// kite is on the path of every `kite run`: neither may pull in the image, registry, TLS or storage
// code that only kite-image needs (their package inits alone cost milliseconds per run).
package deps

import (
	"os/exec"
	"strings"
	"testing"
)

var forbidden = map[string][]string{
	"./cmd/kite-stage1": {"go.podman.io/", "github.com/containers/", "crypto/tls", "net/http", "github.com/urfave/cli"},
	// kite also stays free of the packages whose initialisers cost most of its start: image-spec's
	// digest regular expressions and the FIPS random generator behind crypto/rand.
	"./cmd/kite": {"go.podman.io/", "github.com/containers/", "crypto/tls", "net/http", "github.com/opencontainers/go-digest", "crypto/rand"},
}

func TestLinkedPackages(t *testing.T) {
	for pkg, banned := range forbidden {
		cmd := exec.Command("go", "list", "-deps", "-tags", "containers_image_openpgp,exclude_graphdriver_btrfs", pkg)
		cmd.Dir = "../.."
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 10 {
			t.Fatalf("go list -deps %s listed only %d packages; the check would prove nothing", pkg, len(deps))
		}
		for _, d := range deps {
			for _, b := range banned {
				if strings.HasPrefix(d, b) {
					t.Errorf("%s links %s (nothing under %s may be linked)", pkg, d, b)
				}
			}
		}
	}
}
