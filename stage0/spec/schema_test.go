package spec

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kite-runtime/kite/internal/ocischema"
	"github.com/kite-runtime/kite/pkg/poddir"
	"github.com/kite-runtime/kite/stage0/imageindex"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// schemaImage is an image record as kite-image writes one: a user database, an Entrypoint and
// Cmd, an environment and working directory, and the id maps of a store filled by a user with a
// subordinate range.
func schemaImage(t *testing.T) *imageindex.Record {
	t.Helper()
	maps := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 65536}}
	return &imageindex.Record{
		ID: "0123abcd", Name: "localhost/app:latest", Driver: "overlay",
		Config: imageindex.ImageConfig{
			Entrypoint: []string{"/bin/app"}, Cmd: []string{"--serve"},
			Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"}, WorkingDir: "/srv",
		},
		Layers: []imageindex.Layer{layer(t, map[string]string{"etc/passwd": passwd, "etc/group": group})},
		UIDMap: maps, GIDMap: maps,
	}
}

// encodeConfig encodes s as the pod directory holds it (poddir.CreateJSON), and returns the bytes.
func encodeConfig(t *testing.T, s *specs.Spec) []byte {
	t.Helper()
	dir := t.TempDir()
	if err := poddir.CreateJSON(dir, poddir.ConfigFile, s); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, poddir.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// must returns v of a parser that must accept its input: the inputs are the test's own.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestConfigMatchesSchema generates an app's config.json for a range of run options through
// Generate, as kite run does, and validates each against the runtime-spec schema.
func TestConfigMatchesSchema(t *testing.T) {
	schema := ocischema.Config(t)
	hostDir := t.TempDir()
	hostFile := filepath.Join(hostDir, "file")
	if err := os.WriteFile(hostFile, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Volumes as --volume and --mount give them, through their parsers.
	volume := func(s string, n int) (Volume, *MountPoint) {
		v, m, err := ParseVolume(s, n)
		if err != nil {
			t.Fatal(err)
		}
		return v, m
	}
	data, _ := volume("data,kind=host,source="+hostDir+",readOnly=true", 0)
	logs, _ := volume("logs,kind=host,source="+hostDir+",recursive=false", 1)
	cache, _ := volume("cache,kind=empty,mode=1777,uid=1000,gid=1000", 2)
	short, shortMount := volume(hostFile+":/etc/app.conf:ro", 3)
	mounts := []MountPoint{
		must(ParseMount("volume=data,target=/data")),
		must(ParseMount("volume=logs,target=/var/log/app/")),
		must(ParseMount("volume=cache,target=/cache")),
		must(ParseMount("volume=cache,target=/also/cache")),
		*shortMount,
	}
	vols := []Volume{data, logs, cache, short}
	rlimits := []specs.POSIXRlimit{
		must(ParseUlimit("nofile=1024:4096")),
		must(ParseUlimit("core=unlimited")),
		must(ParseUlimit("stack=8388608:unlimited")),
		must(ParseUlimit("nproc=-1")),
	}
	memory := must(ParseMemory("512m"))
	cpu := must(ParseCPU("1.5"))
	milli := must(ParseCPU("250m"))
	oom := -500
	maxOOM := 1000

	hasMount := func(dest string) func(*specs.Spec) bool {
		return func(s *specs.Spec) bool {
			return slices.ContainsFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == dest })
		}
	}
	for _, tc := range []struct {
		name  string
		image func(*imageindex.Record)
		opts  Options
		// present checks that the document has what the case is about, so that a case cannot
		// pass by validating a document without it.
		present func(*specs.Spec) bool
	}{
		{name: "default", opts: Options{Hostname: "kite-0123abcd"},
			present: func(s *specs.Spec) bool {
				return s.Linux.Seccomp != nil && s.Linux.Seccomp.DefaultAction == specs.ActErrno
			}},
		{name: "no hostname", opts: Options{}},
		{name: "image user and group", image: func(r *imageindex.Record) { r.Config.User = "kiteuser:kitegroup" },
			present: func(s *specs.Spec) bool { return s.Process.User.UID == 1000 && s.Process.User.GID == 2000 }},
		{name: "image without Cmd, args given", image: func(r *imageindex.Record) { r.Config.Entrypoint, r.Config.Cmd = nil, nil },
			opts: Options{Args: []string{"/bin/sh", "-c", "true"}}},
		{name: "exec replaces entrypoint", opts: Options{Exec: "/bin/id"}},
		{name: "empty args drop cmd", opts: Options{Args: []string{}}},
		{name: "single id mapping", image: func(r *imageindex.Record) {
			r.UIDMap = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}
			r.GIDMap = r.UIDMap
		}},

		// seccomp
		{name: "seccomp unconfined", opts: Options{NoSeccomp: true},
			present: func(s *specs.Spec) bool { return s.Linux.Seccomp == nil }},
		{name: "seccomp retain listed calls", opts: Options{Seccomp: "mode=retain,errno=ENOSYS,execve,exit_group,read,write,brk,mmap"},
			present: func(s *specs.Spec) bool { return s.Linux.Seccomp.DefaultErrnoRet != nil }},
		{name: "seccomp retain kite default-allow", opts: Options{Seccomp: "mode=retain,@kite/default-allow"}},
		{name: "seccomp retain docker default-allow", opts: Options{Seccomp: "mode=retain,errno=EACCES,@docker/default-allow"}},
		{name: "seccomp retain all", opts: Options{Seccomp: "mode=retain,@all"},
			present: func(s *specs.Spec) bool { return s.Linux.Seccomp.DefaultAction == specs.ActAllow }},
		{name: "seccomp remove", opts: Options{Seccomp: "mode=remove,errno=ENOSYS,@kite/default-deny,ptrace,getppid"},
			present: func(s *specs.Spec) bool { return s.Linux.Seccomp.Syscalls[0].ErrnoRet != nil }},
		{name: "seccomp default, non-root user", opts: Options{User: "kiteuser"}},

		// capabilities
		{name: "caps added", opts: Options{CapsRetain: []string{"sys_admin", "CAP_NET_ADMIN", "cap_sys_ptrace"}},
			present: func(s *specs.Spec) bool { return slices.Contains(s.Process.Capabilities.Effective, "CAP_SYS_ADMIN") }},
		{name: "caps dropped", opts: Options{CapsRemove: []string{"net_raw", "CAP_CHOWN"}}},
		{name: "caps added and dropped", opts: Options{CapsRetain: []string{"sys_time"}, CapsRemove: []string{"setfcap"}}},
		{name: "caps all retained", opts: Options{CapsRetain: []string{"all"}}},
		{name: "caps all removed", opts: Options{CapsRemove: []string{"all"}},
			present: func(s *specs.Spec) bool { return len(s.Process.Capabilities.Bounding) == 0 }},
		{name: "insecure capabilities", opts: Options{AllCapabilities: true}},
		{name: "insecure capabilities, paths and seccomp", opts: Options{AllCapabilities: true, UnmaskedPaths: true, NoSeccomp: true},
			present: func(s *specs.Spec) bool { return s.Linux.MaskedPaths == nil }},
		{name: "new privileges allowed", opts: Options{AllowNewPrivileges: true},
			present: func(s *specs.Spec) bool { return !s.Process.NoNewPrivileges }},

		// identity, environment, working directory
		{name: "user by name", opts: Options{User: "kiteuser"},
			present: func(s *specs.Spec) bool { return len(s.Process.User.AdditionalGids) > 0 }},
		{name: "user and group by name", opts: Options{User: "kiteuser", Group: "kitegroup"}},
		{name: "user and group by number, supplementary gids", opts: Options{User: "4242", Group: "4343", SupplementaryGIDs: []uint32{5, 4343, 100}}},
		{name: "environment", opts: Options{
			Inherited: []string{"TERM=xterm", "LANG=en_US.UTF-8"}, EnvFile: []string{"A=from-file", "EMPTY="},
			SetEnv: []string{"A=from-flag", "HOME=/data", "container=other"}, Hostname: "web"},
			present: func(s *specs.Spec) bool { return slices.Contains(s.Process.Env, "A=from-flag") }},
		{name: "working dir", opts: Options{WorkingDir: "/var/lib/app"},
			present: func(s *specs.Spec) bool { return s.Process.Cwd == "/var/lib/app" }},
		{name: "image without working dir", image: func(r *imageindex.Record) { r.Config.WorkingDir = "" }},

		// filesystem
		{name: "read-only root", opts: Options{ReadonlyRootfs: true},
			present: func(s *specs.Spec) bool { return s.Root.Readonly && hasMount("/run")(s) }},
		{name: "volumes host and empty", opts: Options{Volumes: vols, MountPoints: mounts},
			present: func(s *specs.Spec) bool {
				return hasMount("/data")(s) && hasMount("/cache")(s) && hasMount("/etc/app.conf")(s)
			}},
		{name: "volumes on a read-only root", opts: Options{Volumes: vols, MountPoints: mounts, ReadonlyRootfs: true}},

		// limits
		{name: "memory limit", opts: Options{Memory: memory},
			present: func(s *specs.Spec) bool { return s.Linux.Resources != nil && s.Linux.Resources.Memory != nil }},
		{name: "cpu limit", opts: Options{CPUQuota: cpu},
			present: func(s *specs.Spec) bool { return s.Linux.Resources != nil && s.Linux.Resources.CPU != nil }},
		{name: "pids limit", opts: Options{PidsLimit: 64},
			present: func(s *specs.Spec) bool { return s.Linux.Resources != nil && s.Linux.Resources.Pids != nil }},
		{name: "all limits", opts: Options{Memory: must(ParseMemory("8g")), CPUQuota: milli, PidsLimit: 1}},
		{name: "rlimits and oom score", opts: Options{Rlimits: rlimits, OOMScoreAdj: &oom},
			present: func(s *specs.Spec) bool { return len(s.Process.Rlimits) == 4 && s.Process.OOMScoreAdj != nil }},
		{name: "oom score at its maximum", opts: Options{OOMScoreAdj: &maxOOM}},

		// most of it at once
		{name: "combined", opts: Options{
			Exec: "/bin/sh", Args: []string{"-c", "exec app"}, Hostname: "a.b-c.example", User: "kiteuser", Group: "kitegroup",
			SupplementaryGIDs: []uint32{0}, SetEnv: []string{"X=1"}, WorkingDir: "/work", Volumes: vols, MountPoints: mounts,
			ReadonlyRootfs: true, CapsRetain: []string{"net_admin"}, CapsRemove: []string{"mknod"},
			Seccomp: "mode=remove,errno=EPERM,@kite/default-deny", Rlimits: rlimits, OOMScoreAdj: &oom,
			Memory: memory, CPUQuota: cpu, PidsLimit: 4096,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := schemaImage(t)
			if tc.image != nil {
				tc.image(rec)
			}
			c, err := Generate(rec, tc.opts)
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			if tc.present != nil && !tc.present(c.Spec) {
				t.Fatalf("the document lacks what the case is about; the case no longer covers it")
			}
			if err := schema.Validate(encodeConfig(t, c.Spec)); err != nil {
				t.Errorf("config.json does not match the runtime-spec schema (%s):\n%v", schema.Dir, err)
			}
		})
	}
}

// TestSchemaRejectsBrokenConfig checks that the schema check can fail: a generated config.json
// passes, and the same document broken in one place each time does not, with the place named.
func TestSchemaRejectsBrokenConfig(t *testing.T) {
	schema := ocischema.Config(t)
	c, err := Generate(schemaImage(t), Options{
		Hostname: "kite-0123abcd", Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 1024}}, PidsLimit: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	good := encodeConfig(t, c.Spec)
	if err := schema.Validate(good); err != nil {
		t.Fatalf("the unbroken document is rejected: %v", err)
	}
	decode := func() map[string]any {
		d := json.NewDecoder(bytes.NewReader(good))
		d.UseNumber()
		var doc map[string]any
		if err := d.Decode(&doc); err != nil {
			t.Fatal(err)
		}
		return doc
	}
	obj := func(v any) map[string]any { return v.(map[string]any) }
	first := func(v any) map[string]any { return v.([]any)[0].(map[string]any) }
	for _, tc := range []struct {
		name   string
		mutate func(doc map[string]any)
		// where is the JSON pointer the error must name.
		where string
	}{
		{"no ociVersion", func(d map[string]any) { delete(d, "ociVersion") }, "ociVersion"},
		{"ociVersion not a string", func(d map[string]any) { d["ociVersion"] = 1 }, "/ociVersion"},
		{"no process cwd", func(d map[string]any) { delete(obj(d["process"]), "cwd") }, "/process"},
		{"negative uid", func(d map[string]any) { obj(obj(d["process"])["user"])["uid"] = -1 }, "/process/user/uid"},
		{"uid as a string", func(d map[string]any) { obj(obj(d["process"])["user"])["uid"] = "0" }, "/process/user/uid"},
		{"args not strings", func(d map[string]any) { obj(d["process"])["args"] = []any{"/bin/app", 7} }, "/process/args/1"},
		{"rlimit type without RLIMIT_", func(d map[string]any) { first(obj(d["process"])["rlimits"])["type"] = "NOFILE" }, "/process/rlimits/0/type"},
		{"no root path", func(d map[string]any) { delete(obj(d["root"]), "path") }, "/root"},
		{"mount without destination", func(d map[string]any) { delete(first(d["mounts"]), "destination") }, "/mounts/0"},
		{"unknown namespace", func(d map[string]any) { first(obj(d["linux"])["namespaces"])["type"] = "bogus" }, "/linux/namespaces/0/type"},
		{"id mapping without size", func(d map[string]any) { delete(first(obj(d["linux"])["uidMappings"]), "size") }, "/linux/uidMappings/0"},
		{"unknown seccomp action", func(d map[string]any) { obj(obj(d["linux"])["seccomp"])["defaultAction"] = "SCMP_ACT_MAYBE" }, "/linux/seccomp/defaultAction"},
		{"pids limit not a number", func(d map[string]any) { obj(obj(obj(d["linux"])["resources"])["pids"])["limit"] = "10" }, "/linux/resources/pids/limit"},
		{"annotations not strings", func(d map[string]any) { obj(d["annotations"])["n"] = 1 }, "/annotations/n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := decode()
			tc.mutate(doc)
			broken, err := json.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			err = schema.Validate(broken)
			if err == nil {
				t.Fatal("the broken document was accepted")
			}
			if !strings.Contains(err.Error(), tc.where) {
				t.Errorf("the error does not name %s:\n%v", tc.where, err)
			}
		})
	}
}
