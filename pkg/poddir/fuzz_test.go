package poddir

// Fuzz targets for the pod directory's documents as stage0 and stage1 read them back (pod.json,
// rootfs.json, exit-status) and for the preserve-fds annotation of config.json. `make unit` runs
// their seeds; `make fuzz` fuzzes each for $(FUZZTIME).

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// roundTrip decodes data as file name into a new T with ReadJSON; when that succeeds, the
// document written back with WriteJSON must read back to the same document, written the same.
func roundTrip[T any](t *testing.T, name string, data []byte) (*T, bool) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	var v T
	if err := ReadJSON(dir, name, &v); err != nil {
		return nil, false
	}
	first, err := encode(name, &v)
	if err != nil {
		// Only what JSON cannot write (none of these documents has such a field) fails here.
		t.Fatalf("%s %q decodes but does not encode: %v", name, data, err)
	}
	if err := WriteJSON(dir, name, &v); err != nil {
		t.Fatal(err)
	}
	var again T
	if err := ReadJSON(dir, name, &again); err != nil {
		t.Fatalf("%s %q decodes, but written back it does not: %v", name, data, err)
	}
	second, _ := encode(name, &again)
	if !bytes.Equal(first, second) {
		t.Fatalf("%s %q does not round-trip:\n%s\n%s", name, data, first, second)
	}
	return &v, true
}

// FuzzReadPod checks reading pod.json: no panic, and what decodes writes back to the same.
func FuzzReadPod(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":1,"uuid":"0123abcd-0000-4000-8000-000000000000","name":"web","hostname":"h","created":"2026-01-02T03:04:05.123456789Z","apps":[{"name":"app","image":"oci:/x:y","imageID":"abc","manifestDigest":"sha256:00"}],"exitPolicy":"all","network":{"mode":"default","helper":"pasta","ports":[{"hostIP":"::1","hostPort":8080,"podPort":80,"protocol":"tcp"}]},"oci":{"id":"c1","bundle":"/b","annotations":{"a":"b"},"hooks":{"prestart":[{"path":"/bin/true","args":["true"],"timeout":3}]},"consoleSocket":"/s"}}`))
	f.Add([]byte(`{"created":"2026-01-02T03:04:05+02:00"}`))
	f.Add([]byte(`{"created":"0000-01-01T00:00:00Z","apps":null,"network":null}`))
	f.Add([]byte(`{"apps":[{}],"oci":{"hooks":{}}}`))
	f.Add([]byte(`{"uuid":"\u0000\ud800"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"created":"9999-12-31T23:59:59.999999999-23:59"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		roundTrip[Pod](t, PodFile, data)
	})
}

// FuzzReadRootfs checks reading rootfs.json: no panic, and what decodes writes back to the same.
func FuzzReadRootfs(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":1,"overlay":{"home":"/s/overlay","lower":["l/A","l/B"],"upper":"/p/upper","work":"/p/work","userxattr":true},"emptyVolumes":[{"dir":"volumes/cache","mode":488,"uid":1000,"gid":1000}]}`))
	f.Add([]byte(`{"schemaVersion":1,"bind":"/s/vfs/dir/x"}`))
	f.Add([]byte(`{"emptyVolumes":[{"mode":4294967296}]}`))
	f.Add([]byte(`{"overlay":{"lower":null}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		roundTrip[Rootfs](t, RootfsFile, data)
	})
}

// FuzzReadExitStatus checks reading exit-status: no panic, and what decodes writes back to the
// same.
func FuzzReadExitStatus(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":1,"finished":"2026-01-02T03:04:05Z","code":137,"signal":"KILL","apps":[{"name":"a","code":137,"signal":"KILL"},{"name":"b","code":0}]}`))
	f.Add([]byte(`{"code":-1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		roundTrip[ExitStatus](t, ExitStatusFile, data)
	})
}

// FuzzPreservedFDs checks the preserve-fds annotation: a count is never negative, is the number
// written, and leaves 3+count (the first descriptor kite closes, and the app's descriptor count)
// an int that did not overflow.
func FuzzPreservedFDs(f *testing.F) {
	for _, s := range []string{"0", "2", "-1", "x", "", "+3", "007", "9223372036854775808", "9223372036854775807", "2147483647", " 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		n, err := PreservedFDs(map[string]string{PreserveFDsAnnotation: v})
		if err != nil {
			return
		}
		if want, err := strconv.Atoi(v); n < 0 || err != nil || n != want {
			t.Fatalf("PreservedFDs(%q) = %d", v, n)
		}
		if 3+n-1 > math.MaxInt32 {
			t.Fatalf("PreservedFDs(%q) = %d: descriptors beyond the largest there can be", v, n)
		}
	})
}
