// Package datadir owns the layout of kite's data root: where the image store, the records of
// stored images and the pods live. Only stage0 knows this layout; stage1 gets explicit paths.
package datadir

import (
	"fmt"
	"hash/fnv"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
)

// Dir is a data root and the paths below it.
type Dir struct {
	Root string
}

// Default is $XDG_DATA_HOME/kite, falling back to ~/.local/share/kite.
func Default() (string, error) {
	return xdgDir("XDG_DATA_HOME", filepath.Join(".local", "share"), "data directory")
}

// ConfigDir is $XDG_CONFIG_HOME/kite, falling back to ~/.config/kite: the user's signature policy
// and trusted keys.
func ConfigDir() (string, error) {
	return xdgDir("XDG_CONFIG_HOME", ".config", "configuration directory")
}

// PolicyFile is the signature policy in config, a ConfigDir.
func PolicyFile(config string) string { return filepath.Join(config, "policy.json") }

// RegistriesDir is where, in config, kite keeps the registries.d files that say where registries
// keep signatures.
func RegistriesDir(config string) string { return filepath.Join(config, "registries.d") }

// TrustedKeysDir is where, in config, kite keeps copies of the keys the policy trusts.
func TrustedKeysDir(config string) string { return filepath.Join(config, "trusted-keys") }

// xdgDir is $env/kite, or ~/fallback/kite where env is unset. HOME comes from the password
// database when the environment has none, as under a bare systemd unit.
func xdgDir(env, fallback, what string) (string, error) {
	if x := os.Getenv(env); filepath.IsAbs(x) {
		return filepath.Join(x, "kite"), nil
	}
	home := os.Getenv("HOME")
	if !filepath.IsAbs(home) {
		u, err := user.LookupId(strconv.Itoa(os.Getuid()))
		if err != nil || !filepath.IsAbs(u.HomeDir) {
			return "", fmt.Errorf("find the %s: neither %s nor HOME is set and the password database has no home for this user", what, env)
		}
		home = u.HomeDir
	}
	return filepath.Join(home, fallback, "kite"), nil
}

// New returns the layout below root, which must be absolute.
func New(root string) (Dir, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return Dir{}, fmt.Errorf("resolve data directory %s: %w", root, err)
	}
	return Dir{Root: abs}, nil
}

// Storage is the containers/storage graph root.
func (d Dir) Storage() string { return filepath.Join(d.Root, "storage") }

// StorageRun is the containers/storage run root: per-boot state and locks. Each data root has its
// own: stores below different roots share XDG_RUNTIME_DIR but not their state.
func (d Dir) StorageRun() string {
	h := fnv.New64a()
	h.Write([]byte(d.Root))
	return filepath.Join(d.RuntimeDir(), "kite", fmt.Sprintf("storage-%016x", h.Sum64()))
}

// RuntimeDir is XDG_RUNTIME_DIR when there is one, else PrivateRuntimeDir.
func (d Dir) RuntimeDir() string {
	if x := os.Getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(x) {
		if st, err := os.Stat(x); err == nil && st.IsDir() {
			return x
		}
	}
	return d.PrivateRuntimeDir()
}

// PrivateRuntimeDir stands in for XDG_RUNTIME_DIR when the environment has none (no login
// session, as under a bare systemd unit).
func (d Dir) PrivateRuntimeDir() string { return filepath.Join(d.Root, "run") }

// Images holds one record per stored image, named by the digest of the manifest it was fetched by.
func (d Dir) Images() string { return filepath.Join(d.Root, "images") }

// SeccompFilters holds compiled seccomp filters, one file per profile named by its hash.
func (d Dir) SeccompFilters() string { return filepath.Join(d.Root, "seccomp") }

// PodsIn is the directory of pods in the given state.
func (d Dir) PodsIn(state string) string { return filepath.Join(d.Root, "pods", state) }
