package trust

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kite-runtime/kite/stage0/datadir"
	"go.podman.io/image/v5/signature"
)

func writeKey(t *testing.T, dir, name string) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAddListRemove trusts keys for prefixes, and checks the policy the image library reads, the
// registries.d file and the key copies after each step.
func TestAddListRemove(t *testing.T) {
	tmp := t.TempDir()
	c := Config{Dir: filepath.Join(tmp, "config")}
	key1, key2 := writeKey(t, tmp, "one.pub"), writeKey(t, tmp, "two.pub")

	if _, err := c.Add("registry.example:5000/team", key1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Add("registry.example:5000/team", key2); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Add("", key1); err != nil {
		t.Fatal(err)
	}
	entries, err := c.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].Prefix != "" || len(entries[0].Keys) != 1 ||
		entries[1].Prefix != "registry.example:5000/team" || len(entries[1].Keys) != 2 || entries[1].Kind != Sigstore {
		t.Fatalf("entries = %+v, want the root with one key and the team with two sigstore keys", entries)
	}
	// The key copies live in kite's directory, so deleting the user's files changes nothing.
	for _, k := range append(entries[0].Keys, entries[1].Keys...) {
		if !strings.HasPrefix(k, datadir.TrustedKeysDir(c.Dir)) {
			t.Errorf("key %s is not a copy in the trusted keys directory", k)
		}
	}
	if _, err := signature.NewPolicyFromFile(datadir.PolicyFile(c.Dir)); err != nil {
		t.Fatalf("the image library cannot read the policy: %v", err)
	}
	var reg map[string]any
	data, err := os.ReadFile(filepath.Join(datadir.RegistriesDir(c.Dir), registriesFile))
	if err != nil || json.Unmarshal(data, &reg) != nil {
		t.Fatalf("read registries.d file: %v\n%s", err, data)
	}
	if reg["default-docker"] == nil || reg["docker"].(map[string]any)["registry.example:5000/team"] == nil {
		t.Errorf("registries.d = %s, want sigstore attachments for the root and the team", data)
	}

	if err := c.Remove("registry.example:5000/team"); err != nil {
		t.Fatal(err)
	}
	if err := c.Remove("registry.example:5000/team"); err == nil || !strings.Contains(err.Error(), "no key is trusted") {
		t.Errorf("second Remove = %v, want an error", err)
	}
	keys, _ := os.ReadDir(datadir.TrustedKeysDir(c.Dir))
	if len(keys) != 1 {
		t.Errorf("%d key copies left, want the root's only", len(keys))
	}
	// Local images stay accepted without signatures: the built-in policy is the starting point.
	data, _ = os.ReadFile(datadir.PolicyFile(c.Dir))
	if !strings.Contains(string(data), `"oci-archive"`) {
		t.Errorf("policy lost the built-in scopes for local files:\n%s", data)
	}
}

func TestAddRefuses(t *testing.T) {
	tmp := t.TempDir()
	c := Config{Dir: filepath.Join(tmp, "config")}
	key := writeKey(t, tmp, "key.pub")
	private := filepath.Join(tmp, "key.pem")
	os.WriteFile(private, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1}}), 0o600)
	garbage := filepath.Join(tmp, "garbage")
	os.WriteFile(garbage, []byte("hello\n"), 0o600)
	gpg := filepath.Join(tmp, "key.asc")
	os.WriteFile(gpg, []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxx\n-----END PGP PUBLIC KEY BLOCK-----\n"), 0o600)

	if _, err := c.Add("registry.example/app", gpg); err != nil {
		t.Fatalf("trust an OpenPGP key: %v", err)
	}
	for _, tc := range []struct{ prefix, key, want string }{
		{"registry.example/team", private, "never private ones"},
		{"registry.example/team", garbage, "neither a PEM public key"},
		{"registry.example/team", filepath.Join(tmp, "missing"), "read key"},
		{"busybox", key, "give a registry"},
		{"registry.example/app:1", key, "without tag"},
		{"Registry.example/app", key, "give a registry"},
		{"registry.example/app", key, "trusted with OpenPGP keys already"},
	} {
		if _, err := c.Add(tc.prefix, tc.key); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Add(%q, %s) = %v, want an error containing %q", tc.prefix, filepath.Base(tc.key), err, tc.want)
		}
	}
	// A scope written by hand with other requirements is left to the user.
	os.WriteFile(datadir.PolicyFile(c.Dir), []byte(`{"default":[{"type":"reject"}],"transports":{"docker":{"registry.example/x":[{"type":"signedBaseLayer","baseLayerIdentity":{"type":"matchExact"}}]}}}`), 0o600)
	if _, err := c.Add("registry.example/x", key); err == nil || !strings.Contains(err.Error(), "not written by kite trust") {
		t.Errorf("Add over a hand-written scope = %v", err)
	}
}
