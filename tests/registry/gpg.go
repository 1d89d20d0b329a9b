package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
)

// GPGKey is an OpenPGP key that signs images the way `skopeo standalone-sign` and podman do:
// "simple signing" signatures, kept beside the registry in a lookaside directory.
type GPGKey struct{ entity *openpgp.Entity }

// NewGPGKey makes a signing key.
func NewGPGKey() (*GPGKey, error) {
	e, err := openpgp.NewEntity("kite test signer", "", "signer@kite.invalid", nil)
	if err != nil {
		return nil, err
	}
	return &GPGKey{entity: e}, nil
}

// PublicKeyArmored is the public key, ASCII-armored (gpg --armor --export).
func (k *GPGKey) PublicKeyArmored() ([]byte, error) {
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		return nil, err
	}
	if err := k.entity.Serialize(w); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// SignToLookaside writes a signature of the image with manifestDigest, claiming
// dockerReference, where a registries.d "lookaside: file://DIR" makes containers/image look:
// DIR/REPOSITORY-PATH@sha256=HEX/signature-1.
func (k *GPGKey) SignToLookaside(dir, repoPath, manifestDigest, dockerReference string) error {
	payload, err := json.Marshal(map[string]any{
		"critical": map[string]any{
			"type":     "atomic container signature",
			"image":    map[string]string{"docker-manifest-digest": manifestDigest},
			"identity": map[string]string{"docker-reference": dockerReference},
		},
		"optional": map[string]any{},
	})
	if err != nil {
		return err
	}
	var signed bytes.Buffer
	w, err := openpgp.Sign(&signed, k.entity, nil, nil)
	if err != nil {
		return err
	}
	if _, err := w.Write(payload); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	sigDir := filepath.Join(dir, repoPath+"@"+strings.Replace(manifestDigest, ":", "=", 1))
	if err := os.MkdirAll(sigDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(sigDir, "signature-1"), signed.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write the signature: %w", err)
	}
	return nil
}
