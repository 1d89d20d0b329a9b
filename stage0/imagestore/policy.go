package imagestore

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"go.podman.io/image/v5/signature"
)

// InsecureOptions are the checks the user switched off with --insecure-options (rkt's names).
type InsecureOptions struct {
	// Image skips signature verification.
	Image bool
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
		case "image", "all-fetch", "all":
			o.Image = true
		default:
			known := false
			for _, n := range insecureOptionNames {
				known = known || n == name
			}
			if !known {
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

// LoadPolicy picks the signature policy: accept anything when the user switched verification off,
// else the policy file at path if there is one, else a policy that rejects every image: kite
// verifies images by default, like rkt.
func LoadPolicy(insecure InsecureOptions, path string) (*Policy, error) {
	if insecure.Image {
		return &Policy{Policy: &signature.Policy{Default: signature.PolicyRequirements{signature.NewPRInsecureAcceptAnything()}}, Insecure: true}, nil
	}
	p, err := signature.NewPolicyFromFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Policy{Policy: &signature.Policy{Default: signature.PolicyRequirements{signature.NewPRReject()}}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load signature policy %s: %w", path, err)
	}
	return &Policy{Policy: p, Source: path}, nil
}

// rejection explains a policy's refusal of imageRef and how to proceed.
func (p *Policy) rejection(imageRef string, err error) error {
	if p.Source == "" {
		return fmt.Errorf("image %s is not verified: no signature policy accepts it; run with --insecure-options=image to use it without verification", imageRef)
	}
	return fmt.Errorf("image %s is not verified: signature policy %s rejects it: %s; run with --insecure-options=image to use it without verification", imageRef, p.Source, strings.TrimSuffix(err.Error(), "."))
}
