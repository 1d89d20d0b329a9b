package imagestore

import (
	"errors"
	"fmt"
	"go.podman.io/image/v5/types"
	"io/fs"
	"slices"
	"strings"

	"go.podman.io/image/v5/signature"
)

// InsecureOptions are the checks the user switched off with --insecure-options (rkt's names).
type InsecureOptions struct {
	// Image skips signature verification.
	Image bool
	// Registries lets registries answer over plain HTTP or with TLS certificates that do not
	// verify ("http" and "tls": the image library cannot allow one without the other).
	Registries bool
}

// insecureOptionNames are rkt's --insecure-options values; kite-image acts on those about images
// and accepts the rest so that kite can pass the user's list through unchanged.
var insecureOptionNames = []string{"none", "image", "tls", "ondisk", "http", "pubkey", "capabilities", "paths", "seccomp", "run-all", "all-fetch", "all-run", "all"}

// ParseInsecureOptions parses a comma-separated --insecure-options list.
func ParseInsecureOptions(list string) (InsecureOptions, error) {
	var o InsecureOptions
	if list == "" {
		return o, nil
	}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		switch name {
		case "image":
			o.Image = true
		case "tls", "http":
			o.Registries = true
		case "all-fetch", "all":
			o.Image, o.Registries = true, true
		default:
			if !slices.Contains(insecureOptionNames, name) {
				return o, fmt.Errorf("parse --insecure-options: unknown option %q (valid: %s)", name, strings.Join(insecureOptionNames, ", "))
			}
		}
	}
	return o, nil
}

// Policy is the signature policy a fetch is checked against, and where it came from so a
// rejection can say what to change.
type Policy struct {
	*signature.Policy
	// Source is the policy file, or "" for the built-in policy.
	Source string
	// Insecure is set when the policy accepts everything because the user asked for it.
	Insecure bool
}

// localTransports hold images the user already has as files; the built-in policy accepts them
// as they are, the way a user trusts a file they copied.
var localTransports = []string{"oci", "oci-archive", "docker-archive"}

// DefaultPolicy is the policy kite uses when the user has none: registry images need a signature
// from a key the user trusts (kite trust), images from local files are accepted, and every other
// transport is refused.
func DefaultPolicy() *signature.Policy {
	p := &signature.Policy{
		Default:    signature.PolicyRequirements{signature.NewPRReject()},
		Transports: map[string]signature.PolicyTransportScopes{},
	}
	for _, t := range localTransports {
		p.Transports[t] = signature.PolicyTransportScopes{"": {signature.NewPRInsecureAcceptAnything()}}
	}
	return p
}

// LoadPolicy picks the signature policy: accept anything when the user switched verification off,
// else the policy file at path if there is one, else DefaultPolicy.
func LoadPolicy(insecure InsecureOptions, path string) (*Policy, error) {
	if insecure.Image {
		return &Policy{Policy: &signature.Policy{Default: signature.PolicyRequirements{signature.NewPRInsecureAcceptAnything()}}, Insecure: true}, nil
	}
	p, err := signature.NewPolicyFromFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Policy{Policy: DefaultPolicy()}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load signature policy %s: %w", path, err)
	}
	return &Policy{Policy: p, Source: path}, nil
}

// errRejected marks a fetch the signature policy refused.
var errRejected = errors.New("image not verified")

// rejection explains the policy's refusal of the image ref (which the user called imageRef): the
// scope that decided, and how to trust the image or skip verification.
func (p *Policy) rejection(imageRef string, ref types.ImageReference, err error) error {
	source := "the built-in policy"
	if p.Source != "" {
		source = "signature policy " + p.Source
	}
	reason := "it accepts no image there"
	if err != nil {
		reason = strings.TrimSuffix(err.Error(), ".")
	}
	fix := "run with --insecure-options=image to use it without verification"
	if named := ref.DockerReference(); named != nil && ref.Transport().Name() == "docker" {
		fix = fmt.Sprintf("trust its signer with kite trust --prefix %s KEYFILE, or %s", named.Name(), fix)
	}
	return fmt.Errorf("%w: %s is refused by %s (scope %s): %s; %s", errRejected, imageRef, source, p.scope(ref), reason, fix)
}

// scope names the policy scope that decides about ref, found as the image library finds it: the
// most specific scope of ref's transport, else the transport's default, else the global default.
func (p *Policy) scope(ref types.ImageReference) string {
	t := ref.Transport().Name()
	scopes, ok := p.Transports[t]
	if ok {
		candidates := append([]string{ref.PolicyConfigurationIdentity()}, ref.PolicyConfigurationNamespaces()...)
		for _, c := range candidates {
			if _, ok := scopes[c]; ok {
				return fmt.Sprintf("%q of transport %s", c, t)
			}
		}
		if _, ok := scopes[""]; ok {
			return "default of transport " + t
		}
	}
	return "global default"
}
