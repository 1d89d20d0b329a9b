//go:build containers_image_openpgp

// This test links containers/image, which builds only with kite's build tags:
//
//	go test -tags containers_image_openpgp,exclude_graphdriver_btrfs ./tests/registry
//
// It proves that Sign makes signatures containers/image's own policy code accepts, with the
// registries.d and policy.json set-up the e2e tests give kite.

package registry

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"
)

// verifier checks images of one registry against a sigstoreSigned policy, with nothing of the
// host's configuration involved.
type verifier struct {
	reg *Registry
	sys *types.SystemContext
	dir string
}

func newVerifier(t *testing.T, reg *Registry) *verifier {
	dir := t.TempDir()
	// Keep the host's registries.conf, auth files and certificates out of the test.
	t.Setenv("HOME", dir)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	t.Setenv("XDG_RUNTIME_DIR", filepath.Join(dir, "run"))
	t.Setenv("CONTAINERS_REGISTRIES_CONF", filepath.Join(dir, "registries.conf"))
	write(t, filepath.Join(dir, "registries.conf"), "")
	// Signatures are read from the registry's sigstore attachments only where registries.d
	// asks for them.
	write(t, filepath.Join(dir, "registries.d", "kite-test.yaml"),
		fmt.Sprintf("docker:\n  %s:\n    use-sigstore-attachments: true\n", reg.Addr()))
	sys := &types.SystemContext{
		// The registry speaks plain HTTP; this lets containers/image fall back to it.
		DockerInsecureSkipTLSVerify: types.OptionalBoolTrue,
		RegistriesDirPath:           filepath.Join(dir, "registries.d"),
		SystemRegistriesConfPath:    filepath.Join(dir, "registries.conf"),
		SystemRegistriesConfDirPath: filepath.Join(dir, "registries.conf.d"),
		AuthFilePath:                filepath.Join(dir, "auth.json"),
		DockerPerHostCertDirPath:    filepath.Join(dir, "certs.d"),
	}
	if reg.opts.Username != "" {
		sys.DockerAuthConfig = &types.DockerAuthConfig{Username: reg.opts.Username, Password: reg.opts.Password}
	}
	return &verifier{reg: reg, sys: sys, dir: dir}
}

// allowed evaluates a policy that admits images of the registry only when signed by key, with the
// default signedIdentity (matchRepoDigestOrExact), and everything else never.
func (v *verifier) allowed(t *testing.T, ref string, key *SigningKey) (bool, error) {
	t.Helper()
	keyPath := filepath.Join(t.TempDir(), "cosign.pub")
	write(t, keyPath, string(key.PublicKeyPEM()))
	policyJSON := fmt.Sprintf(`{
		"default": [{"type": "reject"}],
		"transports": {"docker": {%q: [{"type": "sigstoreSigned", "keyPath": %q}]}}
	}`, v.reg.Addr(), keyPath)
	policy, err := signature.NewPolicyFromBytes([]byte(policyJSON))
	if err != nil {
		t.Fatal(err)
	}
	pc, err := signature.NewPolicyContext(policy)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Destroy()

	ir, err := docker.ParseReference("//" + v.reg.Addr() + "/" + ref)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	src, err := ir.NewImageSource(ctx, v.sys)
	if err != nil {
		t.Fatalf("open %s: %v", ref, err)
	}
	defer src.Close()
	return pc.IsRunningImageAllowed(ctx, image.UnparsedInstance(src, nil))
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestContainersImageAcceptsSignature(t *testing.T) {
	for _, opts := range []Options{{}, {Username: "kite", Password: "s3cret"}} {
		t.Run(fmt.Sprintf("auth=%t", opts.Username != ""), func(t *testing.T) {
			reg := start(t, opts)
			v := newVerifier(t, reg)
			key, err := NewSigningKey()
			if err != nil {
				t.Fatal(err)
			}
			otherKey, err := NewSigningKey()
			if err != nil {
				t.Fatal(err)
			}
			dir := smallLayout(t)
			signed, err := reg.PushLayout(dir, "app", "team/app:1.2")
			if err != nil {
				t.Fatal(err)
			}
			if err := reg.Sign("team/app", signed, reg.Addr()+"/team/app:1.2", key); err != nil {
				t.Fatal(err)
			}
			// The same image under a bare repository identity, which the policy must refuse.
			if _, err := reg.PushLayout(dir, "app", "team/bare:1"); err != nil {
				t.Fatal(err)
			}
			if err := reg.Sign("team/bare", signed, reg.Addr()+"/team/bare", key); err != nil {
				t.Fatal(err)
			}
			if _, err := reg.PushLayout(dir, "app", "team/unsigned:1"); err != nil {
				t.Fatal(err)
			}

			for _, c := range []struct {
				name string
				ref  string
				key  *SigningKey
				want bool
			}{
				{"signed, by tag", "team/app:1.2", key, true},
				{"signed, by digest", "team/app@" + signed, key, true},
				{"another key", "team/app:1.2", otherKey, false},
				{"unsigned", "team/unsigned:1", key, false},
				{"identity without a tag", "team/bare:1", key, false},
			} {
				got, err := v.allowed(t, c.ref, c.key)
				if got != c.want {
					t.Errorf("%s: IsRunningImageAllowed(%s) = %t (%v), want %t", c.name, c.ref, got, err, c.want)
				} else if !got {
					t.Logf("%s: rejected as expected: %v", c.name, err)
				}
			}
		})
	}
}

// A signature whose payload blob is served altered must not verify.
func TestContainersImageRejectsAlteredSignature(t *testing.T) {
	reg := start(t, Options{})
	v := newVerifier(t, reg)
	key, err := NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	d, err := reg.PushLayout(smallLayout(t), "app", "team/app:1.2")
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Sign("team/app", d, reg.Addr()+"/team/app:1.2", key); err != nil {
		t.Fatal(err)
	}
	payload := Payload(reg.Addr()+"/team/app:1.2", d)
	reg.FaultBlob(digest.FromBytes(payload).String(), BlobFault{Corrupt: true})
	if ok, err := v.allowed(t, "team/app:1.2", key); ok {
		t.Error("image allowed with an altered signature payload")
	} else {
		t.Logf("rejected as expected: %v", err)
	}
}
