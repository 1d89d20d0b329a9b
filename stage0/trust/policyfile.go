package trust

import (
	"fmt"
	"slices"
	"sort"
)

// policyFile is a containers-policy.json document kept as generic JSON, so that whatever kite does
// not edit survives unchanged.
type policyFile struct{ raw map[string]any }

// dockerScopes returns the policy's scopes of the docker transport, creating them if asked.
func (p *policyFile) dockerScopes(create bool) map[string]any {
	transports, _ := p.raw["transports"].(map[string]any)
	if transports == nil {
		if !create {
			return nil
		}
		transports = map[string]any{}
		p.raw["transports"] = transports
	}
	scopes, _ := transports["docker"].(map[string]any)
	if scopes == nil && create {
		scopes = map[string]any{}
		transports["docker"] = scopes
	}
	return scopes
}

// trusted returns the entry a scope's requirements make, when they are a single key requirement
// (what kite trust writes, and the common hand-written form).
func trusted(prefix string, reqs any) (Entry, bool) {
	list, _ := reqs.([]any)
	if len(list) != 1 {
		return Entry{}, false
	}
	req, _ := list[0].(map[string]any)
	kind, _ := req["type"].(string)
	if kind != Sigstore && kind != GPG {
		return Entry{}, false
	}
	e := Entry{Prefix: prefix, Kind: kind}
	if k, ok := req["keyPath"].(string); ok {
		e.Keys = append(e.Keys, k)
	}
	if ks, ok := req["keyPaths"].([]any); ok {
		for _, k := range ks {
			if s, ok := k.(string); ok {
				e.Keys = append(e.Keys, s)
			}
		}
	}
	return e, len(e.Keys) > 0
}

func (p *policyFile) entries() []Entry {
	var out []Entry
	for prefix, reqs := range p.dockerScopes(false) {
		if e, ok := trusted(prefix, reqs); ok {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Prefix < out[j].Prefix })
	return out
}

// add trusts keyPath, a key of kind, for prefix. A prefix trusted with keys of the same kind gets
// one more (any of them may sign); one that was rejected or accepted without signatures becomes
// signed-only.
func (p *policyFile) add(prefix, kind, keyPath string) (*Entry, error) {
	scopes := p.dockerScopes(true)
	e, ok := trusted(prefix, scopes[prefix])
	switch {
	case ok && e.Kind == kind:
		if !slices.Contains(e.Keys, keyPath) {
			e.Keys = append(e.Keys, keyPath)
		}
	case ok:
		return nil, fmt.Errorf("%s is trusted with %s keys already; a prefix takes keys of one kind (remove it first with kite trust rm --prefix %q)", describePrefix(prefix), kindName(e.Kind), prefix)
	case scopes[prefix] == nil || onlyUnsigned(scopes[prefix]):
		e = Entry{Prefix: prefix, Kind: kind, Keys: []string{keyPath}}
	default:
		return nil, fmt.Errorf("the policy's requirements for %s were not written by kite trust; edit the policy file by hand", describePrefix(prefix))
	}
	// The document holds what encoding/json decodes into an any, so that reading it back in
	// memory works as reading the file does.
	keys := make([]any, len(e.Keys))
	for i, k := range e.Keys {
		keys[i] = k
	}
	req := map[string]any{"type": kind, "keyPaths": keys}
	if kind == GPG {
		req["keyType"] = "GPGKeys"
	}
	scopes[prefix] = []any{req}
	return &e, nil
}

// onlyUnsigned reports whether requirements only reject or accept images, without keys.
func onlyUnsigned(reqs any) bool {
	list, _ := reqs.([]any)
	for _, r := range list {
		req, _ := r.(map[string]any)
		if t := req["type"]; t != "reject" && t != "insecureAcceptAnything" {
			return false
		}
	}
	return true
}

// remove forgets a trusted prefix; it reports false if prefix was not trusted.
func (p *policyFile) remove(prefix string) bool {
	scopes := p.dockerScopes(false)
	if _, ok := trusted(prefix, scopes[prefix]); !ok {
		return false
	}
	delete(scopes, prefix)
	return true
}

func kindName(kind string) string {
	if kind == GPG {
		return "OpenPGP"
	}
	return "sigstore"
}
