package pods

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kite-runtime/kite/stage0/datadir"
	"golang.org/x/sys/unix"
)

// Pod names are unique among the pods that exist: DATA/pods/names/NAME is a symlink to the UUID
// of the pod that has the name, changed only under the flock of DATA/pods/names.

func namesDir(d datadir.Dir) string { return filepath.Join(d.Root, "pods", "names") }

// ValidName checks a pod name: a letter or digit, then letters, digits, '_', '.' and '-', at most
// 128 characters, and not a UUID (names and UUIDs name pods in the same places).
func ValidName(name string) error {
	ok := name != "" && len(name) <= 128 && !validUUID(name)
	for i, c := range name {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != '-') {
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("pod name %q: use a letter or digit, then letters, digits, '_', '.' or '-' (at most 128)", name)
	}
	return nil
}

// withNames runs f holding the lock of the names directory.
func withNames(d datadir.Dir, f func(dir string) error) error {
	dir := namesDir(d)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pod names: %w", err)
	}
	lock, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("pod names: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("pod names: %w", os.NewSyscallError("flock", err))
	}
	return f(dir)
}

// reserveName gives name to pod uuid. A name whose pod is gone, or being removed, is free again.
func reserveName(d datadir.Dir, name, uuid string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	return withNames(d, func(dir string) error {
		link := filepath.Join(dir, name)
		if owner, err := os.Readlink(link); err == nil {
			p, err := Load(d, owner)
			if err == nil && p.State != Garbage {
				return fmt.Errorf("the name %q is taken by pod %s (%s); remove it with kite rm %s, or choose another", name, owner, p.State, name)
			}
			if err := os.Remove(link); err != nil {
				return fmt.Errorf("pod names: %w", err)
			}
		}
		if err := os.Symlink(uuid, link); err != nil {
			return fmt.Errorf("pod names: %w", err)
		}
		return nil
	})
}

// ReleaseName frees name if pod uuid has it.
func ReleaseName(d datadir.Dir, name, uuid string) error {
	return withNames(d, func(dir string) error {
		link := filepath.Join(dir, name)
		if owner, err := os.Readlink(link); err == nil && owner == uuid {
			if err := os.Remove(link); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("pod names: %w", err)
			}
		}
		return nil
	})
}

// byName finds the UUID of the pod named name ("" when none is).
func byName(d datadir.Dir, name string) string {
	owner, err := os.Readlink(filepath.Join(namesDir(d), name))
	if err != nil || !validUUID(owner) {
		return ""
	}
	return owner
}
