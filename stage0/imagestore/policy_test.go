package imagestore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"
)

func TestParseInsecureOptions(t *testing.T) {
	for _, tc := range []struct {
		list      string
		wantImage bool
		wantErr   bool
	}{
		{"", false, false},
		{"none", false, false},
		{"image", true, false},
		{"tls,image", true, false},
		{"tls, http", false, false},
		{"all-fetch", true, false},
		{"all", true, false},
		{"all-run", false, false},
		{"imgae", false, true},
		{"image,", false, true},
	} {
		got, err := ParseInsecureOptions(tc.list)
		if (err != nil) != tc.wantErr || err == nil && got.Image != tc.wantImage {
			t.Errorf("ParseInsecureOptions(%q) = %+v, %v; want Image %v, error %v", tc.list, got, err, tc.wantImage, tc.wantErr)
		}
	}
}

// TestLoadPolicy checks which policy decides, by evaluating it on the test layout.
func TestLoadPolicy(t *testing.T) {
	dir := t.TempDir()
	layout := filepath.Join(dir, "layout")
	if err := writeTestLayout(layout, ""); err != nil {
		t.Fatal(err)
	}
	accept := filepath.Join(dir, "accept.json")
	if err := os.WriteFile(accept, []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	reject := filepath.Join(dir, "reject.json")
	if err := os.WriteFile(reject, []byte(`{"default":[{"type":"insecureAcceptAnything"}],"transports":{"oci":{"":[{"type":"reject"}]}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(dir, "broken.json")
	if err := os.WriteFile(broken, []byte(`{"default":[{"type":"nonsense"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	imageRef := "oci:" + layout + ":tag"
	for _, tc := range []struct {
		name       string
		insecure   bool
		path       string
		wantLoad   string // error substring when loading fails
		wantReject string // error substring when the policy rejects; "" if it accepts
	}{
		{name: "insecure ignores the file", insecure: true, path: broken},
		{name: "no file accepts a local layout", path: filepath.Join(dir, "missing.json")},
		{name: "file accepts", path: accept},
		{name: "file rejects", path: reject, wantReject: "is refused by signature policy " + reject + " (scope default of transport oci): Running image oci:"},
		{name: "broken file", path: broken, wantLoad: "load signature policy " + broken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := LoadPolicy(InsecureOptions{Image: tc.insecure}, tc.path)
			if tc.wantLoad != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantLoad) {
					t.Fatalf("LoadPolicy: %v, want %q", err, tc.wantLoad)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			err = evaluate(t, p, imageRef)
			if tc.wantReject == "" && err != nil || tc.wantReject != "" && (err == nil || !strings.Contains(err.Error(), tc.wantReject)) {
				t.Errorf("evaluate: %v, want rejection %q", err, tc.wantReject)
			}
		})
	}
}

// evaluate runs p on imageRef the way Fetch does.
func evaluate(t *testing.T, p *Policy, imageRef string) error {
	ctx := context.Background()
	ref, err := ParseReference(imageRef)
	if err != nil {
		t.Fatal(err)
	}
	src, err := ref.NewImageSource(ctx, &types.SystemContext{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	pc, err := signature.NewPolicyContext(p.Policy)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Destroy()
	allowed, err := pc.IsRunningImageAllowed(ctx, image.UnparsedInstance(src, nil))
	if allowed {
		return nil
	}
	var rejected signature.PolicyRequirementError
	if !errors.As(err, &rejected) {
		t.Fatalf("rejected with %v, not a PolicyRequirementError", err)
	}
	return p.rejection(imageRef, ref, err)
}

// TestRejectionOfRegistryImage checks what the built-in policy says about an unsigned registry
// image: which scope refused it and the kite trust command that would accept it.
func TestRejectionOfRegistryImage(t *testing.T) {
	ref, err := ParseReference("docker://registry.example:5000/team/app:1.2")
	if err != nil {
		t.Fatal(err)
	}
	p := &Policy{Policy: DefaultPolicy()}
	got := p.rejection("docker://registry.example:5000/team/app:1.2", ref, nil).Error()
	for _, want := range []string{
		"docker://registry.example:5000/team/app:1.2 is refused by the built-in policy (scope global default)",
		"kite trust --prefix registry.example:5000/team/app KEYFILE",
		"--insecure-options=image",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("rejection = %q, want it to contain %q", got, want)
		}
	}
	p.Transports["docker"] = signature.PolicyTransportScopes{"registry.example:5000/team": {signature.NewPRReject()}}
	if got := p.scope(ref); got != `"registry.example:5000/team" of transport docker` {
		t.Errorf("scope = %s, want the team namespace", got)
	}
}
