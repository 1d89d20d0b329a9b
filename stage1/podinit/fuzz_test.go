package podinit

// Fuzz target for the pod's init's decoding of the pod's and an app's config.json (the parts it
// applies). `make unit` runs its seeds; `make fuzz` fuzzes it for $(FUZZTIME).

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kite-runtime/kite/pkg/poddir"
)

// FuzzDecodeConfig reads any config.json as the init does, as the pod's (podConfig) and as an
// app's (appConfig): no panic, an error only when the file is not JSON of that shape, and the
// pod has a network namespace of its own exactly when a network namespace without a path is
// listed.
func FuzzDecodeConfig(f *testing.F) {
	for _, s := range []string{
		`{"ociVersion":"1.2.0","hostname":"h","annotations":{"org.kite-runtime.preserve-fds":"2"},"linux":{"namespaces":[{"type":"pid"},{"type":"network"},{"type":"mount"}],"sysctl":{"net.ipv4.ip_forward":"1"}}}`,
		`{"linux":{"namespaces":[{"type":"network","path":"/proc/1/ns/net"}]}}`,
		`{"process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}},"root":{"path":"rootfs","readonly":true},"mounts":[{"destination":"/data","type":"bind","source":"volumes/data","options":["rbind"]}],"linux":{"maskedPaths":["/proc/kcore"],"readonlyPaths":["/proc/sys"],"seccomp":{"defaultAction":"SCMP_ACT_ERRNO"},"rootfsPropagation":"rslave"}}`,
		`{"linux":{"seccomp":null}}`, `{"linux":null}`, `null`, `{"process":{"args":"sh"}}`, `{"linux":{"namespaces":[{"type":"network"},{"type":"network","path":"x"}]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, poddir.ConfigFile), data, 0o644); err != nil {
			t.Fatal(err)
		}
		var pod podConfig
		if err := poddir.ReadJSON(dir, poddir.ConfigFile, &pod); err == nil {
			own := false
			for _, ns := range pod.Linux.Namespaces {
				own = own || ns.Type == "network" && ns.Path == ""
			}
			if pod.ownNetwork() != own {
				t.Fatalf("config.json %q: ownNetwork = %v", data, pod.ownNetwork())
			}
		}
		var app appConfig
		if err := poddir.ReadJSON(dir, poddir.ConfigFile, &app); err != nil {
			return
		}
		if app.name != "" || app.filter != nil || app.console != nil {
			t.Fatalf("config.json %q set the init's own fields of appConfig", data)
		}
	})
}
