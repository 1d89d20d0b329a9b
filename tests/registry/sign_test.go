package registry

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestPayloadFormat(t *testing.T) {
	got := string(Payload("127.0.0.1:5000/team/app:1.2", "sha256:abc"))
	want := `{"critical":{"identity":{"docker-reference":"127.0.0.1:5000/team/app:1.2"},` +
		`"image":{"docker-manifest-digest":"sha256:abc"},"type":"cosign container image signature"},"optional":null}`
	if got != want {
		t.Errorf("Payload =\n%s\nwant\n%s", got, want)
	}
}

// TestSignAttachment checks the signature image's shape here; verify_test.go has containers/image
// accept it.
func TestSignAttachment(t *testing.T) {
	reg := start(t, Options{})
	d, _ := pushed(t, reg)
	key, err := NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	identity := reg.Addr() + "/team/app:1.2"
	if err := reg.Sign("team/app", d, identity, key); err != nil {
		t.Fatal(err)
	}
	// A second signature is added beside the first, as cosign does.
	if err := reg.Sign("team/app", d, identity, other); err != nil {
		t.Fatal(err)
	}

	tag := "sha256-" + strings.TrimPrefix(d, "sha256:") + ".sig"
	resp, body, err := get(t, reg, http.MethodGet, "/v2/team/app/manifests/"+tag, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", tag, resp.Status, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != ocispec.MediaTypeImageManifest {
		t.Errorf("signature manifest Content-Type %q", ct)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Layers) != 2 {
		t.Fatalf("signature manifest has %d layers, want 2", len(m.Layers))
	}
	var config ocispec.Image
	_, cb, _ := get(t, reg, http.MethodGet, "/v2/team/app/blobs/"+m.Config.Digest.String(), nil)
	if err := json.Unmarshal(cb, &config); err != nil || len(config.RootFS.DiffIDs) != 2 {
		t.Errorf("signature config %s: %v", cb, err)
	}
	for i, k := range []*SigningKey{key, other} {
		l := m.Layers[i]
		if l.MediaType != SignatureMediaType {
			t.Errorf("layer %d media type %q", i, l.MediaType)
		}
		_, payload, _ := get(t, reg, http.MethodGet, "/v2/team/app/blobs/"+l.Digest.String(), nil)
		if digest.FromBytes(payload) != l.Digest || string(payload) != string(Payload(identity, d)) {
			t.Errorf("layer %d payload %s", i, payload)
		}
		sig, err := base64.StdEncoding.DecodeString(l.Annotations[SignatureAnnotation])
		if err != nil {
			t.Fatalf("layer %d signature annotation: %v", i, err)
		}
		sum := sha256.Sum256(payload)
		if !ecdsa.VerifyASN1(publicKey(t, k), sum[:], sig) {
			t.Errorf("layer %d signature does not verify with its key", i)
		}
	}
}

// publicKey reads the key back from PublicKeyPEM, as a verifier would.
func publicKey(t *testing.T, k *SigningKey) *ecdsa.PublicKey {
	t.Helper()
	block, rest := pem.Decode(k.PublicKeyPEM())
	if block == nil || block.Type != "PUBLIC KEY" || len(rest) != 0 {
		t.Fatalf("PublicKeyPEM is not one PUBLIC KEY block: %q", k.PublicKeyPEM())
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return pub.(*ecdsa.PublicKey)
}
