package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestPodDirectory checks the stage0 → stage1 contract a finished pod leaves behind in
// DATA/pods/run/<uuid>/ (docs/architecture.md, "The pod directory").
func TestPodDirectory(t *testing.T) {
	dir := sharedDir(t, "busybox")
	cases := []struct {
		name   string
		app    []string
		code   int
		signal string
	}{
		{"exit 7", []string{"sh", "-c", "exit 7"}, 7, ""},
		{"killed", []string{"sh", "-c", "kill -KILL $$"}, 137, "SIGKILL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ref := layoutRef("busybox")
			pod := runNewPod(t, dir, ref, c.code, c.app...)
			uuid := filepath.Base(pod)

			var podJSON struct {
				SchemaVersion int    `json:"schemaVersion"`
				UUID          string `json:"uuid"`
				Hostname      string `json:"hostname"`
				ExitPolicy    string `json:"exitPolicy"`
				Apps          []struct {
					Name           string `json:"name"`
					Image          string `json:"image"`
					ImageID        string `json:"imageID"`
					ManifestDigest string `json:"manifestDigest"`
				} `json:"apps"`
			}
			decodeFile(t, pod, "pod.json", &podJSON)
			if podJSON.UUID != uuid || podJSON.ExitPolicy != "any-failure" {
				t.Errorf("pod.json: uuid = %q, exit policy %q, want the directory's name %q and any-failure", podJSON.UUID, podJSON.ExitPolicy, uuid)
			}
			if len(podJSON.Apps) != 1 || podJSON.Apps[0].Image != ref || podJSON.Apps[0].ImageID == "" || podJSON.Apps[0].Name == "" ||
				!strings.HasPrefix(podJSON.Apps[0].ManifestDigest, "sha256:") {
				t.Fatalf("pod.json: apps = %+v, want one named app with image %q, an image ID and a sha256 manifest digest", podJSON.Apps, ref)
			}

			// The pod's config.json: what its apps share.
			var spec specs.Spec
			decodeStrict(t, pod, "config.json", &spec)
			if !strings.HasPrefix(spec.Version, "1.") {
				t.Errorf("config.json: ociVersion = %q, want 1.x", spec.Version)
			}
			if podJSON.Hostname != spec.Hostname {
				t.Errorf("pod.json: hostname %q, config.json: %q", podJSON.Hostname, spec.Hostname)
			}
			if spec.Linux == nil || len(spec.Linux.UIDMappings) == 0 || len(spec.Linux.GIDMappings) == 0 {
				t.Errorf("config.json: no uid or gid mappings in linux: %+v", spec.Linux)
			} else {
				var ns []specs.LinuxNamespaceType
				for _, n := range spec.Linux.Namespaces {
					ns = append(ns, n.Type)
				}
				for _, want := range []specs.LinuxNamespaceType{specs.UserNamespace, specs.MountNamespace, specs.PIDNamespace} {
					if !slices.Contains(ns, want) {
						t.Errorf("config.json: namespaces %v lack %s", ns, want)
					}
				}
			}

			// The app's own directory: its config.json and rootfs.json.
			app := filepath.Join(pod, "apps", podJSON.Apps[0].Name)
			var appSpec specs.Spec
			decodeStrict(t, app, "config.json", &appSpec)
			if appSpec.Process == nil || !slices.Equal(appSpec.Process.Args, c.app) {
				t.Errorf("the app's config.json: process = %+v, want args %q", appSpec.Process, c.app)
			}
			if appSpec.Root == nil || appSpec.Root.Path == "" {
				t.Errorf("the app's config.json: no root.path")
			}
			var rootfs struct {
				Overlay *struct {
					Home  string   `json:"home"`
					Lower []string `json:"lower"`
					Upper string   `json:"upper"`
					Work  string   `json:"work"`
				} `json:"overlay"`
			}
			decodeFile(t, app, "rootfs.json", &rootfs)
			if o := rootfs.Overlay; o == nil || o.Home == "" || len(o.Lower) == 0 ||
				!strings.HasPrefix(o.Upper, app+"/") || !strings.HasPrefix(o.Work, app+"/") {
				t.Errorf("rootfs.json: overlay = %+v, want the store's layers and upper/work dirs in %s", o, app)
			}

			var exit map[string]any
			decodeFile(t, pod, "exit-status", &exit)
			if code, _ := exit["code"].(float64); int(code) != c.code {
				t.Errorf("exit-status = %v, want code %d", exit, c.code)
			}
			if sig, _ := exit["signal"].(string); sig != c.signal {
				t.Errorf("exit-status = %v, want signal %q", exit, c.signal)
			}
			if apps, _ := exit["apps"].([]any); len(apps) != 1 {
				t.Errorf("exit-status = %v, want one app's ending", exit)
			}
		})
	}
}

// runNewPod runs the app, expects exit status code and returns the one pod directory the run
// added to DATA/pods/run.
func runNewPod(t *testing.T, dir, ref string, code int, app ...string) string {
	t.Helper()
	runDir := filepath.Join(dir, "pods", "run")
	before := dirNames(t, runDir)
	wantCode(t, runImage(t, dir, ref, app...), code, strings.Join(app, " "))
	var added []string
	for _, n := range dirNames(t, runDir) {
		if !slices.Contains(before, n) {
			added = append(added, n)
		}
	}
	if len(added) != 1 {
		t.Fatalf("the run added %d pods to %s, want 1: %q", len(added), runDir, added)
	}
	return filepath.Join(runDir, added[0])
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func decodeFile(t *testing.T, dir, name string, v any) {
	t.Helper()
	if err := json.Unmarshal(readFile(t, filepath.Join(dir, name)), v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// decodeStrict decodes a file that must hold nothing but the fields of v.
func decodeStrict(t *testing.T, dir, name string, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(readFile(t, filepath.Join(dir, name))))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s is not a valid OCI runtime-spec document: %v", name, err)
	}
}
