package pods

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kite-runtime/kite/internal/ocischema"
	"github.com/kite-runtime/kite/pkg/poddir"
	"github.com/kite-runtime/kite/stage0/datadir"
	"github.com/kite-runtime/kite/stage0/imageindex"
	"github.com/kite-runtime/kite/stage0/podnet"
	"github.com/kite-runtime/kite/stage0/spec"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// schemaImage is a stored image as kite-image records one, with one overlay layer that holds a
// user database and an /etc/hosts.
func schemaImage(t *testing.T, home, name string, cfg imageindex.ImageConfig) *imageindex.Record {
	t.Helper()
	layer := filepath.Join(home, name, "diff")
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nweb:x:1000:1000:web:/home/web:/bin/sh\n",
		"etc/group":  "root:x:0:\nweb:x:1000:\nlog:x:2000:web\n",
		"etc/hosts":  "127.0.0.1 localhost\n",
	}
	for p, content := range files {
		if err := os.MkdirAll(filepath.Join(layer, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(layer, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	maps := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 65536}}
	return &imageindex.Record{
		ID: name + "-id", Name: "localhost/" + name + ":latest", Driver: "overlay", OverlayHome: home,
		ManifestDigest: "sha256:0000000000000000000000000000000000000000000000000000000000000000",
		Config:         cfg,
		Layers:         []imageindex.Layer{{ID: name + "-layer", Dir: layer, Link: "l/" + name}},
		UIDMap:         maps, GIDMap: maps,
	}
}

// fakeHelpers puts stand-ins for pasta and slirp4netns first on PATH: podnet only looks them up
// when it plans a pod's own network; nothing runs them here.
func fakeHelpers(t *testing.T) {
	dir := t.TempDir()
	for _, h := range []string{poddir.HelperPasta, poddir.HelperSlirp4netns} {
		if err := os.WriteFile(filepath.Join(dir, h), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

type schemaApp struct {
	name string
	rec  *imageindex.Record
	opts spec.Options
}

// schemaPod is a pod as kite run or kite prepare makes one.
type schemaPod struct {
	name string
	apps []schemaApp
	net  podnet.Options
	// vols are the pod's volumes; every app gets them, with its own mount points (opts).
	vols []spec.Volume
	// hostname is --hostname; "" is kite's default, from the pod's UUID.
	hostname string
	// first changes the first app's config.json as cmd/kite does after generating it.
	first    func(*specs.Spec)
	contents Contents
}

// create writes the pod the way createPod in cmd/kite does: each app's config.json through
// spec.Generate, the pod's network through podnet, and the pod directory through Create.
func (p schemaPod) create(t *testing.T) *Locked {
	t.Helper()
	id, err := New()
	if err != nil {
		t.Fatal(err)
	}
	hostname := p.hostname
	if hostname == "" {
		hostname = "kite-" + ShortID(id)
	}
	c := p.contents
	for _, a := range p.apps {
		opts := a.opts
		opts.Hostname, opts.Volumes = hostname, p.vols
		cfg, err := spec.Generate(a.rec, opts)
		if err != nil {
			t.Fatalf("app %s: %v", a.name, err)
		}
		app := App{Name: a.name, ImageRef: "oci:/layout:" + a.name, Image: a.rec, Spec: cfg.Spec, EmptyVolumes: cfg.EmptyVolumes}
		if cfg.Spec.Linux.Seccomp != nil {
			// Compiling needs kite-image; what is validated here is config.json.
			app.SeccompFilter = []byte("not BPF: the filter is not under test")
		}
		c.Apps = append(c.Apps, app)
	}
	netOpts := p.net
	netOpts.Hostname = hostname
	// As cmd/kite's podNetwork: the first image's exposed ports and files.
	first := p.apps[0].rec
	var exposed []string
	for port := range first.Config.ExposedPorts {
		exposed = append(exposed, port)
	}
	slices.Sort(exposed)
	image := func(name string) []byte {
		data, _ := os.ReadFile(filepath.Join(first.Layers[0].Dir, name))
		return data
	}
	plan, err := podnet.New(netOpts, exposed, image)
	if err != nil {
		t.Fatalf("network: %v", err)
	}
	for _, app := range c.Apps {
		plan.Apply(app.Spec)
	}
	if p.first != nil {
		p.first(c.Apps[0].Spec)
	}
	c.Network, c.Files = &plan.Network, plan.Files
	l, err := Create(datadir.Dir{Root: t.TempDir()}, id, c)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// TestPodConfigsMatchSchema writes pods of one and several apps, with each network mode, and
// validates every config.json in the pod directory, the pod's and each app's, against the
// runtime-spec schema.
func TestPodConfigsMatchSchema(t *testing.T) {
	schema := ocischema.Config(t)
	fakeHelpers(t)
	home := t.TempDir()
	web := schemaImage(t, home, "web", imageindex.ImageConfig{
		Entrypoint: []string{"/bin/web"}, Cmd: []string{"--port", "80"}, Env: []string{"LANG=C.UTF-8"},
		WorkingDir: "/srv", User: "web", ExposedPorts: map[string]struct{}{"80/tcp": {}},
	})
	db := schemaImage(t, home, "db", imageindex.ImageConfig{Cmd: []string{"/bin/db"}})
	hostDir := t.TempDir()
	data, _, err := spec.ParseVolume("data,kind=host,source="+hostDir+",readOnly=true", 0)
	if err != nil {
		t.Fatal(err)
	}
	shared, _, err := spec.ParseVolume("shared,kind=empty,mode=1777", 1)
	if err != nil {
		t.Fatal(err)
	}
	nofile, err := spec.ParseUlimit("nofile=1024:unlimited")
	if err != nil {
		t.Fatal(err)
	}
	memory, err := spec.ParseMemory("1g")
	if err != nil {
		t.Fatal(err)
	}
	cpu, err := spec.ParseCPU("500m")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []schemaPod{
		{name: "one app, default network", apps: []schemaApp{{"web", web, spec.Options{}}}},
		{name: "one app, default network with a published port and dns",
			apps: []schemaApp{{"web", web, spec.Options{}}},
			net: podnet.Options{Mode: poddir.NetDefault, Ports: []string{"8080:80", "127.0.0.1:5353:53/udp"},
				DNS: podnet.DNS{Servers: []string{"192.0.2.53"}, Search: []string{"example.test"}}, HostsEntries: []string{"192.0.2.1=gw"}}},
		{name: "one app, slirp4netns", apps: []schemaApp{{"web", web, spec.Options{}}}, net: podnet.Options{Mode: poddir.HelperSlirp4netns}},
		{name: "one app, host network", apps: []schemaApp{{"web", web, spec.Options{}}}, net: podnet.Options{Mode: poddir.NetHost}},
		{name: "one app, no network", apps: []schemaApp{{"web", web, spec.Options{}}}, net: podnet.Options{Mode: poddir.NetNone}},
		{name: "named, prepared, removed on exit", hostname: "web.example",
			apps:     []schemaApp{{"web", web, spec.Options{NoSeccomp: true}}},
			contents: Contents{Name: "webpod", Prepare: true, RemoveOnExit: true, ExitPolicy: poddir.ExitAll}},
		{name: "limits", apps: []schemaApp{{"web", web, spec.Options{Memory: memory, CPUQuota: cpu, PidsLimit: 100}}}},
		// cmd/kite's withTerminal (kite run -t): a terminal sized like the caller's.
		{name: "terminal", apps: []schemaApp{{"web", web, spec.Options{}}}, first: func(s *specs.Spec) {
			s.Process.Terminal = true
			s.Process.ConsoleSize = &specs.Box{Height: 24, Width: 80}
		}},
		// kite prepare -t: a terminal, sized when the pod runs.
		{name: "terminal, prepared", apps: []schemaApp{{"web", web, spec.Options{}}}, contents: Contents{Prepare: true},
			first: func(s *specs.Spec) { s.Process.Terminal = true }},
		// cmd/kite's passDescriptors and notifyInApp (--preserve-fds, socket activation and
		// --sd-notify=container): an annotation the pod's config.json shares, the environment
		// and the notify socket's mount.
		{name: "annotations, descriptors and sd_notify", apps: []schemaApp{{"web", web, spec.Options{}}}, first: func(s *specs.Spec) {
			s.Annotations[poddir.PreserveFDsAnnotation] = "2"
			s.Process.Env = append(s.Process.Env, "LISTEN_FDS=2", "LISTEN_FDNAMES=http:https", "NOTIFY_SOCKET="+poddir.AppNotifySocket)
			s.Mounts = append(s.Mounts, specs.Mount{Destination: poddir.AppNotifyDir, Type: "bind", Source: poddir.NotifyDir,
				Options: []string{"bind", "ro", "nosuid", "nodev", "noexec"}})
		}},
		{name: "several apps", vols: []spec.Volume{data, shared},
			apps: []schemaApp{
				{"web", web, spec.Options{
					Args: []string{"--port", "8080"}, ReadonlyRootfs: true, CapsRemove: []string{"all"},
					Seccomp: "mode=retain,@kite/default-allow", Rlimits: []specs.POSIXRlimit{nofile},
					MountPoints: []spec.MountPoint{{Volume: "shared", Target: "/run/shared"}, {Volume: "data", Target: "/data"}},
				}},
				{"db", db, spec.Options{
					User: "0", Group: "2000", SetEnv: []string{"DB=1"}, WorkingDir: "/var/lib/db", CapsRetain: []string{"sys_nice"},
					MountPoints: []spec.MountPoint{{Volume: "shared", Target: "/shared"}},
				}},
				{"sidecar", db, spec.Options{Exec: "/bin/sh", Args: []string{"-c", "sleep 1"}, NoSeccomp: true, UnmaskedPaths: true}},
			},
			net:      podnet.Options{Mode: poddir.NetDefault, Ports: []string{"80-tcp:8080"}},
			contents: Contents{ExitPolicy: poddir.ExitAny}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := tc.create(t)
			docs := []string{poddir.ConfigFile}
			for _, a := range tc.apps {
				docs = append(docs, filepath.Join(poddir.AppDir(a.name), poddir.ConfigFile))
			}
			for _, doc := range docs {
				data, err := os.ReadFile(filepath.Join(l.Dir, doc))
				if err != nil {
					t.Fatal(err)
				}
				if err := schema.Validate(data); err != nil {
					t.Errorf("%s does not match the runtime-spec schema (%s):\n%v", doc, schema.Dir, err)
				}
			}
		})
	}
}

// TestPodConfigCoversNetworkModes checks that the network cases above differ where they should:
// a pod of its own network has a network namespace and sysfs, one of the host's has neither.
func TestPodConfigCoversNetworkModes(t *testing.T) {
	fakeHelpers(t)
	rec := schemaImage(t, t.TempDir(), "web", imageindex.ImageConfig{Cmd: []string{"/bin/web"}})
	for mode, own := range map[string]bool{poddir.NetDefault: true, poddir.NetNone: true, poddir.NetHost: false} {
		l := schemaPod{apps: []schemaApp{{"web", rec, spec.Options{}}}, net: podnet.Options{Mode: mode}}.create(t)
		for _, doc := range []string{poddir.ConfigFile, filepath.Join(poddir.AppDir("web"), poddir.ConfigFile)} {
			var s specs.Spec
			if err := poddir.ReadJSON(l.Dir, doc, &s); err != nil {
				t.Fatal(err)
			}
			hasNet := slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.NetworkNamespace })
			if hasNet != own {
				t.Errorf("--net=%s: %s has a network namespace: %v, want %v", mode, doc, hasNet, own)
			}
		}
		var app specs.Spec
		if err := poddir.ReadJSON(filepath.Join(l.Dir, poddir.AppDir("web")), poddir.ConfigFile, &app); err != nil {
			t.Fatal(err)
		}
		sysfs := slices.ContainsFunc(app.Mounts, func(m specs.Mount) bool { return m.Destination == "/sys" && m.Type == "sysfs" })
		if sysfs != own {
			t.Errorf("--net=%s: /sys is sysfs: %v, want %v (%s)", mode, sysfs, own, fmt.Sprint(app.Mounts))
		}
	}
}

// TestPodSchemaRejectsBrokenConfig checks that the check above can fail: the pod's config.json,
// with an unknown namespace type, is rejected.
func TestPodSchemaRejectsBrokenConfig(t *testing.T) {
	schema := ocischema.Config(t)
	rec := schemaImage(t, t.TempDir(), "web", imageindex.ImageConfig{Cmd: []string{"/bin/web"}})
	l := schemaPod{apps: []schemaApp{{"web", rec, spec.Options{}}}, net: podnet.Options{Mode: poddir.NetHost}}.create(t)
	data, err := os.ReadFile(filepath.Join(l.Dir, poddir.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.Validate(data); err != nil {
		t.Fatalf("the unbroken document is rejected: %v", err)
	}
	broken := bytes.Replace(data, []byte(`"type": "user"`), []byte(`"type": "users"`), 1)
	if bytes.Equal(broken, data) {
		t.Fatalf("the pod's config.json has no user namespace to break:\n%s", data)
	}
	err = schema.Validate(broken)
	if err == nil || !strings.Contains(err.Error(), "/linux/namespaces/0/type") {
		t.Errorf("a namespace of type users was not rejected at /linux/namespaces/0/type: %v", err)
	}
}
