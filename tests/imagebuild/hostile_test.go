package imagebuild

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const testCanary = "/nonexistent/kite-canary"

// layoutFaults lists every way the one image of the layout in dir is inconsistent or unusual:
// blobs whose content does not match their digest or size, diff_ids that are not the layers'
// digests, a platform other than this machine's, and layers with external URLs. It also returns the image's layers, decoded.
func layoutFaults(t *testing.T, dir string) ([]string, [][]tarEntry) {
	t.Helper()
	var faults []string
	blob := func(what string, d ocispec.Descriptor) []byte {
		data, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", d.Digest.Encoded()))
		if err != nil {
			t.Fatal(err)
		}
		if digest.FromBytes(data) != d.Digest {
			faults = append(faults, what+" digest")
		}
		if int64(len(data)) != d.Size {
			faults = append(faults, what+" size")
		}
		return data
	}
	decode := func(data []byte, v any) {
		if err := json.Unmarshal(data, v); err != nil {
			t.Fatal(err)
		}
	}
	var index ocispec.Index
	readJSON(t, filepath.Join(dir, ocispec.ImageIndexFile), &index)
	if len(index.Manifests) != 1 {
		t.Fatalf("%d images, want 1", len(index.Manifests))
	}
	top := index.Manifests[0]
	var m ocispec.Manifest
	decode(blob("manifest", top), &m)
	var c ocispec.Image
	decode(blob("config", m.Config), &c)
	if c.OS != "linux" || c.Architecture != runtime.GOARCH {
		faults = append(faults, "config platform")
	}
	if p := top.Platform; p == nil || p.OS != c.OS || p.Architecture != c.Architecture {
		t.Errorf("index platform %+v, config %s/%s", p, c.OS, c.Architecture)
	}
	if len(c.RootFS.DiffIDs) != len(m.Layers) {
		faults = append(faults, "diff_id count")
	}
	var layers [][]tarEntry
	for i, ld := range m.Layers {
		data := blob(fmt.Sprintf("layer %d", i), ld)
		if len(ld.URLs) > 0 {
			faults = append(faults, fmt.Sprintf("layer %d urls", i))
		}
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		if i < len(c.RootFS.DiffIDs) && digest.FromBytes(raw) != c.RootFS.DiffIDs[i] {
			faults = append(faults, fmt.Sprintf("layer %d diff_id", i))
		}
		layers = append(layers, readTar(t, bytes.NewReader(raw)))
	}
	return faults, layers
}

// TestHostileCases writes the hostile images of hostile.go and tamper.go and checks that each is
// broken in exactly the way its case says, and in no other (hostile_families_test.go checks the
// other families).
func TestHostileCases(t *testing.T) {
	base := []Entry{Dir("/bin", 0o755, 0, 0), File("/bin/true", 0o755, 0, 0, []byte("#!/bin/sh\n"))}
	wantFaults := map[string][]string{
		"layer-digest-mismatch":    {"layer 1 digest", "layer 1 diff_id"}, // other content: its diff_id differs too
		"config-digest-mismatch":   {"config digest"},
		"manifest-digest-mismatch": {"manifest digest"},
		"layer-size-short":         {"layer 1 size"},
		"layer-size-long":          {"layer 1 size"},
		"diff-id-mismatch":         {"layer 1 diff_id"},
		"diff-id-missing":          {"diff_id count"},
		"platform-windows":         {"config platform"},
		"platform-s390x":           {"config platform"},
		"layer-external-url":       {"layer 1 urls"},
	}
	seen := map[string]bool{}
	for _, c := range append(baseTarCases(), layoutCases()...) {
		t.Run(c.Name, func(t *testing.T) {
			if seen[c.Name] || c.Problem == "" {
				t.Fatalf("case name %q used twice or problem missing", c.Name)
			}
			seen[c.Name] = true
			dir := filepath.Join(t.TempDir(), "layout")
			if err := c.Write(dir, HostileOptions{Base: base, Canary: testCanary, URL: "http://127.0.0.1:9"}); err != nil {
				t.Fatal(err)
			}
			faults, layers := layoutFaults(t, dir)
			if want := wantFaults[c.Name]; !slices.Equal(faults, want) {
				t.Errorf("faults %q, want %q", faults, want)
			}
			if len(layers) < 2 {
				t.Fatalf("%d layers, want the base and at least one more", len(layers))
			}
			if _, ok := wantFaults[c.Name]; ok {
				return
			}
			// A tar-level case aims at the canary, by its name verbatim or climbing to it.
			aims := false
			for _, layer := range layers[1:] {
				for _, e := range layer {
					for _, s := range []string{e.hdr.Name, e.hdr.Linkname} {
						if strings.Contains(s, strings.TrimPrefix(testCanary, "/")) {
							aims = true
						}
					}
				}
			}
			if !aims {
				t.Errorf("no entry names the canary %s", testCanary)
			}
		})
	}
}

// TestHostileNamesVerbatim checks that the hostile entries reach the tar headers uncleaned.
func TestHostileNamesVerbatim(t *testing.T) {
	base := []Entry{Dir("/bin", 0o755, 0, 0)}
	for _, c := range []struct {
		write          func(string, HostileOptions) error
		name, linkname string
		typ            byte
	}{
		{HostileDotDotName, Climbing(testCanary) + "/written-by-dotdot-name", "", tar.TypeReg},
		{HostileDotDotInsideName, "bin/" + Climbing(testCanary) + "/written-by-dotdot-inside-name", "", tar.TypeReg},
		{HostileAbsoluteName, testCanary + "/written-by-absolute-name", "", tar.TypeReg},
		{HostileRelativeSymlinkWrite, "escape-rel", Climbing(testCanary), tar.TypeSymlink},
		{HostileDotDotHardlink, "hardlink-dotdot", Climbing(testCanary) + "/victim", tar.TypeLink},
		{HostileAbsoluteHardlink, "hardlink-absolute", testCanary + "/victim", tar.TypeLink},
		{HostileWhiteoutThroughSymlink, "wh-link/.wh.victim", "", tar.TypeReg},
	} {
		dir := filepath.Join(t.TempDir(), "layout")
		if err := c.write(dir, HostileOptions{Base: base, Canary: testCanary}); err != nil {
			t.Fatal(err)
		}
		_, layers := layoutFaults(t, dir)
		e, ok := find(layers[len(layers)-1], c.name)
		if !ok || e.hdr.Linkname != c.linkname || e.hdr.Typeflag != c.typ {
			t.Errorf("no entry %q (type %c) -> %q in %+v", c.name, c.typ, c.linkname, layers[len(layers)-1])
		}
	}
	if !strings.HasPrefix(Climbing("/tmp/x/"), "../../") || !strings.HasSuffix(Climbing("/tmp/x/"), "/tmp/x") {
		t.Errorf("Climbing(/tmp/x/) = %q", Climbing("/tmp/x/"))
	}
	if err := HostileDotDotName(t.TempDir(), HostileOptions{Canary: "relative"}); err == nil {
		t.Error("a relative canary was accepted")
	}
}
