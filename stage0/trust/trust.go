// Package trust owns the keys kite trusts to sign registry images, rkt-style: each key is trusted
// for a prefix of image names (a registry, a namespace or a repository). It keeps them as a
// containers-policy.json(5) file, which the image library enforces at every fetch, with copies of
// the keys beside it, and for sigstore keys a registries.d(5) file that tells the image library to
// read the signatures a registry keeps as attachments.
package trust

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/kite-runtime/kite/pkg/poddir"
	"github.com/kite-runtime/kite/stage0/datadir"
	"github.com/kite-runtime/kite/stage0/imagestore"
	"go.podman.io/image/v5/signature"
	"golang.org/x/sys/unix"
)

// Kinds of keys, as the policy's requirement types name them.
const (
	Sigstore = "sigstoreSigned" // a cosign public key (PEM)
	GPG      = "signedBy"       // an OpenPGP public key ring
)

// rootScope is the policy scope of every registry image; --root trusts a key for it.
const rootScope = ""

// registriesFile is kite's registries.d file, in Config.RegistriesDir.
const registriesFile = "kite-trust.yaml"

// Config is the directory with the user's policy (datadir.ConfigDir).
type Config struct{ Dir string }

// Entry is one trusted prefix.
type Entry struct {
	// Prefix is the image name prefix; "" means every registry image.
	Prefix string   `json:"prefix"`
	Kind   string   `json:"type"`
	Keys   []string `json:"keys"`
}

// scopePattern is what kite accepts as a prefix: a registry host (with a dot or a port, or
// localhost), then lowercase repository path components, without tag or digest.
var scopePattern = regexp.MustCompile(`^([a-z0-9-]+\.[a-z0-9.-]+|[a-z0-9.-]+:[0-9]+|localhost)(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)*$`)

// CheckPrefix explains what is wrong with a prefix kite cannot use.
func CheckPrefix(prefix string) error {
	if scopePattern.MatchString(prefix) {
		return nil
	}
	return fmt.Errorf("--prefix %q: give a registry and optionally a repository path, without tag or digest, e.g. registry.example:5000/team or docker.io/library/busybox", prefix)
}

// Add trusts the key in keyFile for images whose names start with prefix ("" for all).
func (c Config) Add(prefix, keyFile string) (*Entry, error) {
	if prefix != rootScope {
		if err := CheckPrefix(prefix); err != nil {
			return nil, err
		}
	}
	key, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	kind, err := keyKind(key)
	if err != nil {
		return nil, fmt.Errorf("read key %s: %w", keyFile, err)
	}
	var added *Entry
	err = c.edit(func(p *policyFile) error {
		copyPath, err := c.saveKey(key)
		if err != nil {
			return err
		}
		added, err = p.add(prefix, kind, copyPath)
		return err
	})
	return added, err
}

// Remove forgets prefix, and the key copies nothing trusts any more.
func (c Config) Remove(prefix string) error {
	return c.edit(func(p *policyFile) error {
		if !p.remove(prefix) {
			return fmt.Errorf("no key is trusted for prefix %q; see kite trust list", prefix)
		}
		return nil
	})
}

// List returns the trusted prefixes.
func (c Config) List() ([]Entry, error) {
	p, err := c.load()
	if err != nil {
		return nil, err
	}
	return p.entries(), nil
}

func keyKind(key []byte) (string, error) {
	if block, _ := pem.Decode(key); block != nil {
		if block.Type != "PUBLIC KEY" {
			return "", fmt.Errorf("it is a PEM %q block; kite trusts public keys (PUBLIC KEY, as in cosign.pub), never private ones", block.Type)
		}
		if _, err := x509.ParsePKIXPublicKey(block.Bytes); err != nil {
			return "", fmt.Errorf("parse the public key: %w", err)
		}
		return Sigstore, nil
	}
	if bytes.Contains(key, []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----")) || len(key) > 0 && key[0]&0x80 != 0 {
		return GPG, nil
	}
	return "", errors.New("it is neither a PEM public key (cosign.pub) nor an OpenPGP public key")
}

// saveKey copies key into the trusted keys directory under its digest, so that the policy does not
// depend on the file the user named staying where it is.
func (c Config) saveKey(key []byte) (string, error) {
	dir := datadir.TrustedKeysDir(c.Dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	sum := sha256.Sum256(key)
	p := filepath.Join(dir, hex.EncodeToString(sum[:])+".pub")
	return p, poddir.WriteFileAtomic(p, key, 0o600)
}

// edit changes the policy under a lock, validates the result as the image library reads it, and
// writes the policy and the registries.d file; key copies nothing refers to any more are removed.
func (c Config) edit(change func(*policyFile) error) error {
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(c.Dir, ".trust.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return os.NewSyscallError("flock", err)
	}
	p, err := c.load()
	if err != nil {
		return err
	}
	if err := change(p); err != nil {
		return err
	}
	data, err := json.MarshalIndent(p.raw, "", "    ")
	if err != nil {
		return err
	}
	if _, err := signature.NewPolicyFromBytes(data); err != nil {
		return fmt.Errorf("the changed policy would be invalid: %w", err)
	}
	if err := os.MkdirAll(datadir.RegistriesDir(c.Dir), 0o700); err != nil {
		return err
	}
	if err := c.writeRegistries(p.entries()); err != nil {
		return err
	}
	if err := poddir.WriteFileAtomic(datadir.PolicyFile(c.Dir), append(data, '\n'), 0o600); err != nil {
		return err
	}
	return c.removeUnusedKeys(p.entries())
}

// writeRegistries tells the image library to read sigstore signatures from the registries of the
// prefixes trusted with sigstore keys. It is JSON, which YAML parsers read as YAML.
func (c Config) writeRegistries(entries []Entry) error {
	type namespace struct {
		UseSigstoreAttachments bool `json:"use-sigstore-attachments"`
	}
	var conf struct {
		DefaultDocker *namespace           `json:"default-docker,omitempty"`
		Docker        map[string]namespace `json:"docker,omitempty"`
	}
	for _, e := range entries {
		switch {
		case e.Kind != Sigstore:
		case e.Prefix == rootScope:
			conf.DefaultDocker = &namespace{UseSigstoreAttachments: true}
		default:
			if conf.Docker == nil {
				conf.Docker = map[string]namespace{}
			}
			conf.Docker[e.Prefix] = namespace{UseSigstoreAttachments: true}
		}
	}
	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return err
	}
	return poddir.WriteFileAtomic(filepath.Join(datadir.RegistriesDir(c.Dir), registriesFile), append(data, '\n'), 0o600)
}

func (c Config) removeUnusedKeys(entries []Entry) error {
	dir := datadir.TrustedKeysDir(c.Dir)
	files, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var used []string
	for _, e := range entries {
		used = append(used, e.Keys...)
	}
	for _, f := range files {
		p := filepath.Join(dir, f.Name())
		if !slices.Contains(used, p) {
			if err := os.Remove(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// load reads the policy file, or starts from kite's built-in policy when there is none.
func (c Config) load() (*policyFile, error) {
	path := datadir.PolicyFile(c.Dir)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if data, err = json.Marshal(imagestore.DefaultPolicy()); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("read signature policy: %w", err)
	}
	p := &policyFile{}
	if err := json.Unmarshal(data, &p.raw); err != nil {
		return nil, fmt.Errorf("parse signature policy %s: %w", path, err)
	}
	return p, nil
}

// describePrefix names a prefix for messages.
func describePrefix(prefix string) string {
	if prefix == rootScope {
		return "every registry image (--root)"
	}
	return strings.TrimSpace(prefix)
}
