package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kite-runtime/kite/tests/imagebuild"
)

// A static stand-in for the probe; tests/imagebuild checks image contents in detail.
const fakeProbe = imagebuild.DefaultBusybox

func TestRun(t *testing.T) {
	tmp := t.TempDir()
	out, archive := filepath.Join(tmp, "layout"), filepath.Join(tmp, "images.tar")
	args := []string{"-probe", fakeProbe, "-out", out, "-archive", archive}
	// Twice: the second run replaces the first layout.
	for range 2 {
		var stderr bytes.Buffer
		if err := run(args, &stderr); err != nil {
			t.Fatalf("run: %v\n%s", err, stderr.String())
		}
		if want := "mkimage: wrote busybox, multilayer, user to " + out + "\n"; stderr.String() != want {
			t.Errorf("stderr = %q, want %q", stderr.String(), want)
		}
	}

	var index ocispec.Index
	data, err := os.ReadFile(filepath.Join(out, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &index); err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, m := range index.Manifests {
		tags = append(tags, m.Annotations[ocispec.AnnotationRefName])
	}
	if strings.Join(tags, ",") != "busybox,multilayer,user" {
		t.Errorf("index tags = %v", tags)
	}

	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names := map[string]bool{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names[hdr.Name] = true
	}
	for _, name := range []string{"oci-layout", "index.json", "blobs/sha256/"} {
		if !names[name] {
			t.Errorf("archive has no %s", name)
		}
	}
}

// TestBinary runs the built command, which catches what an in-process run cannot: a package the
// test binary links anyway (go-digest needs crypto/sha256 linked in) and exit statuses.
func TestBinary(t *testing.T) {
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "mkimage")
	// go test puts its own GOROOT/bin first in PATH, so this is the toolchain running the test.
	// No VCS stamp: git refuses a checkout owned by another user, e.g. when run as the test user.
	if out, err := exec.Command("go", "build", "-buildvcs=false", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build mkimage: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-probe", fakeProbe, "-out", filepath.Join(tmp, "a", "layout"), "-archive", filepath.Join(tmp, "b", "images.tar"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mkimage: %v\n%s", err, out)
	}
	for _, c := range []struct {
		args []string
		want int
	}{{nil, 2}, {[]string{"-probe", filepath.Join(tmp, "nope"), "-out", filepath.Join(tmp, "c")}, 1}, {[]string{"-h"}, 0}} {
		err := exec.Command(bin, c.args...).Run()
		var exitErr *exec.ExitError
		code := 0
		if errors.As(err, &exitErr) {
			code = exitErr.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != c.want {
			t.Errorf("mkimage %v exited %d, want %d", c.args, code, c.want)
		}
	}
}

func TestRunErrors(t *testing.T) {
	notLayout := t.TempDir()
	if err := os.WriteFile(filepath.Join(notLayout, "keep"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "layout")
	for _, c := range []struct {
		args  []string
		usage bool
		want  string
	}{
		{[]string{"-out", out}, true, "-probe is required"},
		{[]string{"-probe", fakeProbe}, true, "-out is required"},
		{[]string{"-probe", fakeProbe, "-out", out, "extra"}, true, `unexpected argument "extra"`},
		{[]string{"-nosuchflag"}, true, "flag provided but not defined"},
		{[]string{"-probe", fakeProbe, "-out", notLayout}, false, "refusing to replace"},
		{[]string{"-probe", fakeProbe, "-out", out, "-busybox", filepath.Join(out, "nope")}, false, "apt-get install busybox-static"},
	} {
		var stderr bytes.Buffer
		err := run(c.args, &stderr)
		if err == nil {
			t.Errorf("run %v succeeded", c.args)
			continue
		}
		if errors.Is(err, errUsage) != c.usage {
			t.Errorf("run %v: usage error = %v, want %v", c.args, errors.Is(err, errUsage), c.usage)
		}
		if msg := err.Error() + stderr.String(); !strings.Contains(msg, c.want) {
			t.Errorf("run %v: %q does not say %q", c.args, msg, c.want)
		}
	}
}
