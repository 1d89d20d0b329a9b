package oci

// Fuzz targets for kite oci's reading of a bundle's config.json (through Create, which checks it
// and writes the container's directory) and for container IDs. `make unit` runs their seeds;
// `make fuzz` fuzzes each for $(FUZZTIME).

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kite-runtime/kite/pkg/poddir"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// FuzzCreate creates a container from any config.json (in a bundle with a rootfs directory) and
// checks what Create promises: a refused bundle leaves nothing in the root; an accepted one gives
// a directory whose documents read back, a pod with a mount and a user namespace of its own and
// paths only for network and ipc namespaces (each type once), an app whose mounts all have
// absolute destinations, and a root filesystem that is an absolute directory.
func FuzzCreate(f *testing.F) {
	seed := func(edit func(*specs.Spec)) {
		s := bundleSpec()
		if edit != nil {
			edit(s)
		}
		data, err := json.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	seed(nil)
	seed(func(s *specs.Spec) { s.Process.Capabilities.Bounding = []string{"CAP_FLY"} })
	seed(func(s *specs.Spec) { s.Linux.MaskedPaths = []string{"proc/kcore"} })
	seed(func(s *specs.Spec) { s.Root.Path = "nowhere" })
	seed(func(s *specs.Spec) { s.Root.Path = "/" })
	seed(func(s *specs.Spec) { s.Version = "2.0.0" })
	seed(func(s *specs.Spec) { s.Linux.Namespaces[0].Path = "/proc/1/ns/pid" })
	seed(func(s *specs.Spec) { s.Linux.Namespaces = s.Linux.Namespaces[:2] })
	seed(func(s *specs.Spec) { s.Linux.Namespaces = s.Linux.Namespaces[:1] })
	seed(func(s *specs.Spec) { s.Linux.Namespaces = append(s.Linux.Namespaces, s.Linux.Namespaces[0]) })
	seed(func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/proc/self/ns/net"})
	})
	seed(func(s *specs.Spec) { s.Process.Cwd = "tmp" })
	seed(func(s *specs.Spec) { s.Process.Terminal = true })
	seed(func(s *specs.Spec) { s.Process = nil })
	seed(func(s *specs.Spec) { s.Process.Args = nil })
	seed(func(s *specs.Spec) { s.Linux.RootfsPropagation = "sideways" })
	seed(func(s *specs.Spec) { s.Linux = nil; s.Hostname = "" })
	seed(func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "../../etc", Type: "bind", Source: "/etc"}, specs.Mount{Destination: "dev", Type: "tmpfs"},
			specs.Mount{Destination: "/dev/mqueue", Type: "mqueue"}, specs.Mount{Destination: "/x", Type: "cgroup2", Options: []string{"nosuid"}})
	})
	seed(func(s *specs.Spec) {
		s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/null", Type: "c", Major: 1, Minor: 3}, {Path: "/dev/zero", Type: "b", Major: 1, Minor: 5}}
	})
	seed(func(s *specs.Spec) {
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	})
	seed(func(s *specs.Spec) {
		five := int64(5)
		s.Linux.Resources = &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &five}, BlockIO: &specs.LinuxBlockIO{}, CPU: &specs.LinuxCPU{Cpus: "0"}}
	})
	f.Add([]byte(`{"ociVersion":"1.0.0","root":{"path":"rootfs"},"linux":{"namespaces":[{"type":"mount"}]}}`))
	f.Add([]byte(`{"ociVersion":"1.","root":{"path":"rootfs"},"linux":{"namespaces":[{"type":"mount"},{"type":"time"}]}}`))
	f.Add([]byte(`{"ociVersion":"1.0.0","root":{"path":"rootfs"},"linux":{"namespaces":[{"type":"mount"}],"maskedPaths":["/a"],"readonlyPaths":["b"]}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, config []byte) {
		bundle := t.TempDir()
		if err := os.Mkdir(filepath.Join(bundle, "rootfs"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bundle, "config.json"), config, 0o644); err != nil {
			t.Fatal(err)
		}
		root := filepath.Join(t.TempDir(), "root")
		c, err := Create(CreateOptions{
			Root: root, ID: "c1", Bundle: bundle,
			Compile: func(*specs.LinuxSeccomp) ([]byte, error) { return make([]byte, 8), nil },
			Warn:    func(string) {},
		})
		if err != nil {
			if entries, _ := os.ReadDir(root); len(entries) != 0 {
				t.Fatalf("a refused config.json (%v) left %d entries in the root", err, len(entries))
			}
			return
		}
		defer c.Lock.Close()
		var pod poddir.Pod
		var podSpec, app specs.Spec
		var rootfs poddir.Rootfs
		appDir := filepath.Join(c.Dir, poddir.AppDir(AppName))
		for _, doc := range []struct {
			dir, name string
			v         any
		}{{c.Dir, poddir.PodFile, &pod}, {c.Dir, poddir.ConfigFile, &podSpec}, {appDir, poddir.ConfigFile, &app}, {appDir, poddir.RootfsFile, &rootfs}} {
			if err := poddir.ReadJSON(doc.dir, doc.name, doc.v); err != nil {
				t.Fatalf("config.json %q: %v", config, err)
			}
		}
		if pod.OCI == nil || pod.OCI.ID != "c1" || len(pod.Apps) != 1 || pod.Apps[0].Name != AppName {
			t.Fatalf("config.json %q: pod.json %+v", config, pod)
		}
		if podSpec.Linux == nil {
			t.Fatalf("config.json %q: the pod's config.json has no linux section", config)
		}
		var types []specs.LinuxNamespaceType
		for _, ns := range podSpec.Linux.Namespaces {
			if slices.Contains(types, ns.Type) {
				t.Fatalf("config.json %q: namespace %s twice in the pod's", config, ns.Type)
			}
			types = append(types, ns.Type)
			if ns.Path != "" && ns.Type != specs.NetworkNamespace && ns.Type != specs.IPCNamespace {
				t.Fatalf("config.json %q: the pod joins a %s namespace at %s", config, ns.Type, ns.Path)
			}
			if (ns.Type == specs.MountNamespace || ns.Type == specs.UserNamespace) && ns.Path != "" {
				t.Fatalf("config.json %q: the pod's %s namespace is not its own", config, ns.Type)
			}
		}
		if !slices.Contains(types, specs.MountNamespace) || !slices.Contains(types, specs.UserNamespace) {
			t.Fatalf("config.json %q: the pod's namespaces %v lack mount or user", config, types)
		}
		if len(podSpec.Linux.UIDMappings) == 0 || len(podSpec.Linux.GIDMappings) == 0 {
			t.Fatalf("config.json %q: the pod has no id maps", config)
		}
		for _, m := range app.Mounts {
			if !filepath.IsAbs(m.Destination) {
				t.Fatalf("config.json %q: the app mounts at %q", config, m.Destination)
			}
		}
		if rootfs.Overlay != nil || !filepath.IsAbs(rootfs.Bind) {
			t.Fatalf("config.json %q: rootfs.json %+v", config, rootfs)
		}
		if st, err := os.Stat(rootfs.Bind); err != nil || !st.IsDir() {
			t.Fatalf("config.json %q: the root filesystem %s is not a directory", config, rootfs.Bind)
		}
		if app.Process != nil && (len(app.Process.Args) == 0 || !filepath.IsAbs(app.Process.Cwd)) {
			t.Fatalf("config.json %q: the app's process %+v", config, app.Process)
		}
	})
}

// FuzzCheckID checks container IDs: an accepted ID names one directory directly under the root.
func FuzzCheckID(f *testing.F) {
	for _, id := range []string{"c1", "", ".", "..", "a/b", "a b", strings.Repeat("x", 1025), "...", "a+b_c.d-e", "-", "c1\n", "é"} {
		f.Add(id)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if CheckID(id) != nil {
			return
		}
		root := "/run/kite-oci"
		if dir := filepath.Join(root, id); filepath.Dir(dir) != root || filepath.Base(dir) != id || strings.ContainsAny(id, "/\x00\n") {
			t.Fatalf("CheckID accepted %q, which names %s", id, dir)
		}
	})
}
