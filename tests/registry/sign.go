package registry

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The cosign conventions containers/image reads (docker/docker_client.go, signature/internal/
// sigstore_payload.go, internal/signature/sigstore.go in go.podman.io/image/v5).
const (
	// SignatureMediaType is the media type of a signature layer: its blob is the payload.
	SignatureMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	// SignatureAnnotation holds the base64 of the payload's ECDSA-SHA256 signature (ASN.1 DER).
	SignatureAnnotation = "dev.cosignproject.cosign/signature"
	// signatureType is the payload's critical.type.
	signatureType = "cosign container image signature"
)

// SigningKey is an ECDSA P-256 key pair, the kind `cosign generate-key-pair` makes.
type SigningKey struct {
	priv *ecdsa.PrivateKey
}

// NewSigningKey generates a new key.
func NewSigningKey() (*SigningKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	return &SigningKey{priv: priv}, nil
}

// PublicKeyPEM is the public key as a PKIX "PUBLIC KEY" PEM block, the form of cosign.pub and of
// the keyPath file of a sigstoreSigned policy.
func (k *SigningKey) PublicKeyPEM() []byte {
	der, err := x509.MarshalPKIXPublicKey(&k.priv.PublicKey)
	if err != nil {
		// A P-256 public key always marshals; failing here is a bug in this package.
		panic(fmt.Sprintf("marshal P-256 public key: %v", err))
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// sign returns the base64 ECDSA-SHA256 signature of payload, as cosign stores it.
func (k *SigningKey) sign(payload []byte) (string, error) {
	sum := sha256.Sum256(payload)
	sig, err := ecdsa.SignASN1(rand.Reader, k.priv, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign payload: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// simpleSigning is the cosign payload. Fields are in the order cosign writes them; "optional" is
// null, as cosign writes it without annotations.
type simpleSigning struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
	Optional map[string]any `json:"optional"`
}

// Payload returns the cosign "simple signing" payload that vouches for the manifest with digest
// manifestDigest under the name dockerReference.
//
// With the default signedIdentity of a sigstoreSigned policy (matchRepoDigestOrExact),
// containers/image accepts the payload only if dockerReference names a tag or a digest: for a
// pull by tag it must equal the pulled reference ("127.0.0.1:PORT/team/app:1.2"), for a pull by
// digest any tag or digest of the same repository will do. A bare repository never matches.
func Payload(dockerReference, manifestDigest string) []byte {
	var p simpleSigning
	p.Critical.Identity.DockerReference = dockerReference
	p.Critical.Image.DockerManifestDigest = manifestDigest
	p.Critical.Type = signatureType
	b, err := json.Marshal(p)
	if err != nil {
		panic(fmt.Sprintf("encode signature payload: %v", err)) // only strings: cannot fail
	}
	return b
}

// Sign signs the manifest manifestDigest of repo for dockerReference (see Payload) with key and
// attaches the signature where containers/image looks for it.
func (r *Registry) Sign(repo, manifestDigest, dockerReference string, key *SigningKey) error {
	return r.AttachSignature(repo, manifestDigest, Payload(dockerReference, manifestDigest), key)
}

// AttachSignature signs payload with key and adds it as a signature of the manifest attachTo
// (a digest) of repo: a layer of the OCI manifest tagged "sha256-HEX.sig" in repo, which is
// created or, as cosign does, extended when it exists. The payload is signed as given, so hostile
// tests can attach a signature whose payload names another image.
func (r *Registry) AttachSignature(repo, attachTo string, payload []byte, key *SigningKey) error {
	target, err := digest.Parse(attachTo)
	if err != nil {
		return fmt.Errorf("attach signature: %w", err)
	}
	tag := strings.Replace(target.String(), ":", "-", 1) + ".sig"
	sig, err := key.sign(payload)
	if err != nil {
		return err
	}
	payloadDigest, err := r.PutBlob(repo, payload)
	if err != nil {
		return err
	}
	m, diffIDs, err := r.signatureManifest(repo, tag)
	if err != nil {
		return err
	}
	m.Layers = append(m.Layers, ocispec.Descriptor{
		MediaType:   SignatureMediaType,
		Digest:      digest.Digest(payloadDigest),
		Size:        int64(len(payload)),
		Annotations: map[string]string{SignatureAnnotation: sig},
	})
	// The config is an image config whose layers are the payloads, uncompressed, as cosign's is;
	// containers/image never reads it, but a registry or tool that checks configs may.
	config, err := json.Marshal(ocispec.Image{
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: append(diffIDs, digest.Digest(payloadDigest))},
	})
	if err != nil {
		return fmt.Errorf("encode signature config: %w", err)
	}
	configDigest, err := r.PutBlob(repo, config)
	if err != nil {
		return err
	}
	m.Config = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.Digest(configDigest), Size: int64(len(config))}
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode signature manifest: %w", err)
	}
	// containers/image refuses a signature manifest served with any other Content-Type.
	_, err = r.PutManifest(repo, tag, ocispec.MediaTypeImageManifest, data)
	return err
}

// signatureManifest returns the signature manifest tagged tag in repo, or a new empty one, and
// the payload digests its layers carry.
func (r *Registry) signatureManifest(repo, tag string) (ocispec.Manifest, []digest.Digest, error) {
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest}
	resp, err := r.do(http.MethodGet, "/v2/"+repo+"/manifests/"+tag, "", nil)
	if err != nil {
		return m, nil, fmt.Errorf("read signatures %s:%s: %w", repo, tag, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotFound:
		return m, nil, nil
	case http.StatusOK:
	default:
		return m, nil, fmt.Errorf("read signatures %s:%s: %s: %s", repo, tag, resp.Status, readSome(resp.Body))
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return m, nil, fmt.Errorf("read signatures %s:%s: %w", repo, tag, err)
	}
	var diffIDs []digest.Digest
	for _, l := range m.Layers {
		diffIDs = append(diffIDs, l.Digest)
	}
	return m, diffIDs, nil
}
