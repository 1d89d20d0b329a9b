package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestOCIProgramName runs kite oci through its other name, the link kite-oci, as engines that
// expect a runc-like program do: it reads and acts on the same --root.
func TestOCIProgramName(t *testing.T) {
	e := newOCIEnv(t)
	link := filepath.Join(binDir, "kite-oci")
	if target, err := os.Readlink(link); err != nil || target != "kite" {
		t.Fatalf("%s: want a link to kite, got %q, %v", link, target, err)
	}
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(link, args...).Output()
		if err != nil {
			t.Fatalf("kite-oci %s: %v", strings.Join(args, " "), err)
		}
		return string(out)
	}
	var f struct {
		OCIVersionMax string   `json:"ociVersionMax"`
		Hooks         []string `json:"hooks"`
	}
	if err := json.Unmarshal([]byte(run("features")), &f); err != nil {
		t.Fatal(err)
	}
	if f.OCIVersionMax != specs.Version || len(f.Hooks) != 6 {
		t.Errorf("kite-oci features: %+v", f)
	}
	e.create(t, "c1", e.bundle(t, e.spec(t, "true")))
	if got := lines(run("--root", e.root, "list", "-q")); !slices.Equal(got, []string{"c1"}) {
		t.Errorf("kite-oci list -q = %q, want [c1]", got)
	}
	var st specs.State
	if err := json.Unmarshal([]byte(run("--root", e.root, "state", "c1")), &st); err != nil || st.Status != specs.StateCreated {
		t.Errorf("kite-oci state c1: %+v, %v", st, err)
	}
	run("--root", e.root, "start", "c1")
	e.waitStatus(t, "c1", specs.StateStopped)
	run("--root", e.root, "delete", "c1")
	e.wantNothingLeft(t, "after kite-oci delete")

	// kite oci spec does not overwrite a config.json.
	bundle := e.bundle(t, e.spec(t, "true"))
	before := readFile(t, filepath.Join(bundle, "config.json"))
	wantFailure(t, kite(t, e.data, "oci", "spec", "--bundle", bundle), "kite oci spec where config.json exists", "exists")
	if after := readFile(t, filepath.Join(bundle, "config.json")); string(after) != string(before) {
		t.Errorf("kite oci spec changed the existing config.json")
	}
}

// TestOCIRootAndLog checks where kite oci keeps its state and how it logs errors: the default
// root is $XDG_RUNTIME_DIR/kite-oci; a relative --root and --bundle are taken from the working
// directory; --log collects error messages, as text or JSON.
func TestOCIRootAndLog(t *testing.T) {
	e := newOCIEnv(t)
	b := e.bundle(t, e.spec(t, "true"))
	xdg := filepath.Join(e.dir, "xdg")
	o := &options{env: []string{"XDG_RUNTIME_DIR=" + xdg}}
	stdout, stderr := createFile(t, filepath.Join(e.dir, "d1.stdout")), createFile(t, filepath.Join(e.dir, "d1.stderr"))
	wantCode(t, kiteWith(t, e.data, &options{env: o.env, stdout: stdout, stderr: stderr}, "oci", "create", "--bundle", b, "d1"), 0, "kite oci create without --root")
	if names, err := os.ReadDir(filepath.Join(xdg, "kite-oci")); err != nil || len(names) != 1 || names[0].Name() != "d1" {
		t.Errorf("$XDG_RUNTIME_DIR/kite-oci holds %v, %v; want d1", names, err)
	}
	if r := kiteWith(t, e.data, o, "oci", "list", "-q"); r.Code != 0 || r.Stdout != "d1\n" {
		t.Errorf("kite oci list -q without --root: %s", r)
	}
	wantCode(t, kiteWith(t, e.data, o, "oci", "delete", "--force", "d1"), 0, "kite oci delete --force without --root")

	// Relative paths, from the working directory.
	cmd := exec.Command(filepath.Join(binDir, "kite"), "--dir", e.data, "oci", "--root", "relroot", "create", "--bundle", filepath.Base(b), "--pid-file", "r1.pid", "r1")
	cmd.Dir = e.dir
	cmd.Stdout, cmd.Stderr = createFile(t, filepath.Join(e.dir, "r1.stdout")), createFile(t, filepath.Join(e.dir, "r1.stderr"))
	if err := cmd.Run(); err != nil {
		t.Fatalf("kite oci create with a relative --root and --bundle: %v: %s", err, readFile(t, filepath.Join(e.dir, "r1.stderr")))
	}
	rel := &ociEnv{dir: e.dir, data: e.data, root: filepath.Join(e.dir, "relroot")}
	t.Cleanup(rel.deleteAll)
	st := rel.state(t, "r1")
	if st.Bundle != b || strconv.Itoa(st.Pid) != string(readFile(t, filepath.Join(e.dir, "r1.pid"))) {
		t.Errorf("state %+v; want bundle %s and the pid in r1.pid", st, b)
	}
	rel.start(t, "r1")
	rel.waitStatus(t, "r1", specs.StateStopped)
	wantCode(t, rel.oci(t, "delete", "r1"), 0, "kite oci delete")

	for _, format := range []string{"text", "json"} {
		log := filepath.Join(e.dir, "log."+format)
		r := e.oci(t, "--log", log, "--log-format", format, "state", "nosuch")
		wantFailure(t, r, "kite oci state of no container", "nosuch")
		got := string(readFile(t, log))
		if !strings.Contains(got, "container nosuch: no such container") {
			t.Errorf("--log-format %s: the log holds %q, want the error", format, got)
		}
		if format == "json" {
			var entry struct{ Level, Msg string }
			if err := json.Unmarshal([]byte(got), &entry); err != nil || entry.Level != "error" || !strings.Contains(entry.Msg, "no such container") {
				t.Errorf("--log-format json: %q (%v), want a JSON line of level error", got, err)
			}
		}
	}
}
