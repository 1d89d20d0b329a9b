package oci

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kite-runtime/kite/internal/ocischema"
	"github.com/kite-runtime/kite/pkg/poddir"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// bundleSpec is a config.json as engines and runtime-tools write them: no user namespace,
// devpts with gid=5, sysfs, a deny-all device rule, a seccomp profile.
func bundleSpec() *specs.Spec {
	caps := []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	return &specs.Spec{
		Version:  specs.Version,
		Hostname: "h",
		Root:     &specs.Root{Path: "rootfs"},
		Process: &specs.Process{Args: []string{"sh"}, Cwd: "/",
			Capabilities: &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps, Inheritable: caps, Ambient: caps}},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs"},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"newinstance", "gid=5"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"ro", "nosuid"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup"},
		},
		Annotations: map[string]string{"org.example": "1"},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.UTSNamespace}},
			Resources:  &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}},
			Sysctl:     map[string]string{"net.ipv4.ip_forward": "1"},
			Seccomp:    &specs.LinuxSeccomp{DefaultAction: specs.ActAllow},
		},
	}
}

func writeBundle(t *testing.T, s *specs.Spec) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func create(t *testing.T, root string, s *specs.Spec) (*Created, []string, error) {
	t.Helper()
	var warnings []string
	c, err := Create(CreateOptions{
		Root: root, ID: "c1", Bundle: writeBundle(t, s),
		Compile: func(*specs.LinuxSeccomp) ([]byte, error) { return make([]byte, 8), nil },
		Warn:    func(w string) { warnings = append(warnings, w) },
	})
	if c != nil {
		t.Cleanup(func() { c.Lock.Close() })
	}
	return c, warnings, err
}

func TestCreateWritesAPodOfOneApp(t *testing.T) {
	root := t.TempDir()
	s := bundleSpec()
	s.Mounts = append(s.Mounts,
		specs.Mount{Destination: "/data", Type: "bind", Source: "data", Options: []string{"bind"}},
		specs.Mount{Destination: "/more", Source: "more", Options: []string{"rbind", "ro"}})
	c, warnings, err := create(t, root, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("a deny-all device rule warned: %q", warnings)
	}
	var pod specs.Spec
	readJSON(t, c.Dir, poddir.ConfigFile, &pod)
	if !hasNamespace(pod.Linux.Namespaces, specs.UserNamespace) {
		t.Errorf("the pod has no user namespace of kite's: %v", pod.Linux.Namespaces)
	}
	if m := pod.Linux.UIDMappings; len(m) == 0 || m[0].ContainerID != 0 || int(m[0].HostID) != os.Getuid() {
		t.Errorf("uid maps %v: 0 must be the caller", m)
	}
	if pod.Linux.Sysctl["net.ipv4.ip_forward"] != "1" || pod.Hostname != "h" {
		t.Errorf("the pod's config lost the sysctl or hostname: %+v", pod)
	}
	var app specs.Spec
	appDir := filepath.Join(c.Dir, poddir.AppDir(AppName))
	readJSON(t, appDir, poddir.ConfigFile, &app)
	mounts := map[string]specs.Mount{}
	for _, m := range app.Mounts {
		mounts[m.Destination] = m
	}
	if m := mounts["/sys"]; m.Type != "bind" || m.Source != "/sys" || !slices.Contains(m.Options, "ro") {
		t.Errorf("sysfs without a network namespace = %+v, want a read-only bind of the host's", m)
	}
	if m := mounts["/sys/fs/cgroup"]; m.Type != "bind" || !slices.Contains(m.Options, "ro") {
		t.Errorf("cgroup = %+v, want a read-only bind of the host's", m)
	}
	if m := mounts["/dev/null"]; m.Source != "/dev/null" {
		t.Errorf("no default device /dev/null bound from the host: %+v", m)
	}
	for dest, source := range map[string]string{"/data": "data", "/more": "more"} {
		if m := mounts[dest]; m.Source != filepath.Join(c.Pod.OCI.Bundle, source) {
			t.Errorf("the relative bind source of %s is %q, want it in the bundle %s", dest, m.Source, c.Pod.OCI.Bundle)
		}
	}
	var rootfs poddir.Rootfs
	readJSON(t, appDir, poddir.RootfsFile, &rootfs)
	if !filepath.IsAbs(rootfs.Bind) || filepath.Base(rootfs.Bind) != "rootfs" {
		t.Errorf("rootfs.json binds %q, want the bundle's rootfs, absolute", rootfs.Bind)
	}
	if _, err := os.Stat(filepath.Join(appDir, poddir.SeccompFile)); err != nil {
		t.Errorf("no compiled seccomp filter: %v", err)
	}
	var p poddir.Pod
	readJSON(t, c.Dir, poddir.PodFile, &p)
	if p.OCI == nil || p.OCI.ID != "c1" || p.OCI.Annotations["org.example"] != "1" {
		t.Errorf("pod.json's oci section = %+v", p.OCI)
	}
	if status, pid := c.Status(); status != specs.StateCreating || pid != 0 {
		t.Errorf("a container whose lock kite oci create holds is %s (pid %d), want creating", status, pid)
	}
	// Both documents stage1 executes are runtime-spec config.json documents.
	for _, path := range []string{filepath.Join(c.Dir, poddir.ConfigFile), filepath.Join(appDir, poddir.ConfigFile)} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := ocischema.Config(t).Validate(data); err != nil {
			t.Errorf("%s does not match runtime-spec's schema: %v", path, err)
		}
	}
}

func TestCreateDropsAnUnmappedDevptsGroup(t *testing.T) {
	single := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}
	got := mappedGIDOption([]string{"newinstance", "gid=5", "mode=0620"}, single)
	if strings.Join(got, ",") != "newinstance,mode=0620" {
		t.Errorf("with gid 5 unmapped: %v", got)
	}
	ranges := append(single, specs.LinuxIDMapping{ContainerID: 1, HostID: 100000, Size: 65536})
	if got := mappedGIDOption([]string{"gid=5"}, ranges); len(got) != 1 {
		t.Errorf("with gid 5 mapped, the option was dropped: %v", got)
	}
}

func TestCreateWarnsAboutResourcesItLeavesOut(t *testing.T) {
	s := bundleSpec()
	limit, weight := int64(1<<20), uint16(10)
	s.Linux.Resources = &specs.LinuxResources{
		Memory:  &specs.LinuxMemory{Limit: &limit},
		BlockIO: &specs.LinuxBlockIO{Weight: &weight},
		Devices: []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}},
	}
	c, warnings, err := create(t, t.TempDir(), s)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "blockIO") || !strings.Contains(warnings[0], "devices") {
		t.Errorf("warnings = %q, want one naming blockIO and devices", warnings)
	}
	if c.Spec.Linux.Resources.Memory == nil || *c.Spec.Linux.Resources.Memory.Limit != limit {
		t.Errorf("the memory limit was not kept for the pod's cgroup: %+v", c.Spec.Linux.Resources)
	}
}

func TestCreateRefuses(t *testing.T) {
	cases := map[string]struct {
		edit func(*specs.Spec)
		want string
	}{
		"unknown capability":                {func(s *specs.Spec) { s.Process.Capabilities.Bounding = []string{"CAP_FLY"} }, "CAP_FLY"},
		"relative masked path":              {func(s *specs.Spec) { s.Linux.MaskedPaths = []string{"proc/kcore"} }, "proc/kcore"},
		"missing root":                      {func(s *specs.Spec) { s.Root.Path = "nowhere" }, "root.path"},
		"ociVersion 2":                      {func(s *specs.Spec) { s.Version = "2.0.0" }, "ociVersion"},
		"pid namespace path":                {func(s *specs.Spec) { s.Linux.Namespaces[0].Path = "/proc/1/ns/pid" }, "joins only network and ipc"},
		"hostname without uts":              {func(s *specs.Spec) { s.Linux.Namespaces = s.Linux.Namespaces[:2] }, "uts"},
		"no mount namespace":                {func(s *specs.Spec) { s.Linux.Namespaces = s.Linux.Namespaces[:1] }, "mount"},
		"relative cwd":                      {func(s *specs.Spec) { s.Process.Cwd = "tmp" }, "process.cwd"},
		"terminal without a console socket": {func(s *specs.Spec) { s.Process.Terminal = true }, "--console-socket"},
		"rootfs propagation":                {func(s *specs.Spec) { s.Linux.RootfsPropagation = "sideways" }, "rootfsPropagation"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			s := bundleSpec()
			tc.edit(s)
			_, _, err := create(t, root, s)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Create = %v, want an error naming %q", err, tc.want)
			}
			if entries, _ := os.ReadDir(root); len(entries) != 0 {
				t.Errorf("a refused container left %d entries in the root", len(entries))
			}
		})
	}
}

func TestCreateWithSecurityModules(t *testing.T) {
	dir := t.TempDir()
	enabled := filepath.Join(dir, "apparmor")
	defer func(a, s string) { apparmorEnabled, selinuxEnabled = a, s }(apparmorEnabled, selinuxEnabled)
	apparmorEnabled, selinuxEnabled = enabled, filepath.Join(dir, "selinux-enforce")
	s := bundleSpec()
	s.Process.ApparmorProfile = "p"
	s.Linux.MountLabel = "system_u:object_r:l:s0"
	// Neither module enabled: left out, with a warning for each.
	_, warnings, err := create(t, t.TempDir(), s)
	if err != nil || len(warnings) != 2 || !strings.Contains(warnings[0], "AppArmor") || !strings.Contains(warnings[1], "SELinux") {
		t.Fatalf("Create = %v, warnings %q: want both left out with a warning", err, warnings)
	}
	// AppArmor enabled: kite cannot apply the profile, and refuses.
	if err := os.WriteFile(enabled, []byte("Y\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := create(t, t.TempDir(), s); err == nil || !strings.Contains(err.Error(), "apparmorProfile") {
		t.Fatalf("with AppArmor enabled, Create = %v, want a refusal", err)
	}
}

func TestCreateRefusesATakenID(t *testing.T) {
	root := t.TempDir()
	if _, _, err := create(t, root, bundleSpec()); err != nil {
		t.Fatal(err)
	}
	_, _, err := create(t, root, bundleSpec())
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("a second create of c1 = %v, want already exists", err)
	}
	if _, err := Load(root, "c1"); err != nil {
		t.Errorf("the first container is gone: %v", err)
	}
}

func TestCheckID(t *testing.T) {
	for _, id := range []string{"", ".", "..", "a/b", "a b", strings.Repeat("x", 1025)} {
		if CheckID(id) == nil {
			t.Errorf("CheckID(%q) accepted it", id)
		}
	}
	for _, id := range []string{"c1", "0b5f-44.x_y+z"} {
		if err := CheckID(id); err != nil {
			t.Errorf("CheckID(%q) = %v", id, err)
		}
	}
}

func readJSON(t *testing.T, dir, name string, v any) {
	t.Helper()
	if err := poddir.ReadJSON(dir, name, v); err != nil {
		t.Fatal(err)
	}
}

func hasNamespace(nss []specs.LinuxNamespace, typ specs.LinuxNamespaceType) bool {
	for _, ns := range nss {
		if ns.Type == typ {
			return true
		}
	}
	return false
}
