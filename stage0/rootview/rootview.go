// Package rootview reads the root filesystem that an image's stored layers make, on the host and
// without mounting it, the way the overlay mount will show it to the pod.
package rootview

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// View is the root filesystem an image's layers (directories, top-most first) make. Paths resolve
// as they will inside the pod: a symlink's target is taken relative to the image's root, never
// the host's, and what an upper layer deletes (whiteouts) or replaces (opaque directories,
// non-directories) hides the layers below. stage0 reads the image's user database through it
// before the pod exists, and checks new layers against the layers below them.
type View []string

// maxSymlinks bounds symlink resolution, as the kernel's own limit does (path_resolution(7)).
const maxSymlinks = 40

// Open opens the regular file at name in the view.
func (v View) Open(name string) (*os.File, error) {
	host, err := v.resolve(name)
	if err != nil {
		return nil, err
	}
	// O_NOFOLLOW: resolve found a regular file, not a link; refuse it if that changed since.
	f, err := os.OpenFile(host, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("open %s in the image: not a regular file", name)
	}
	return f, nil
}

// resolve returns the host path of name in the view, following symlinks inside the image.
func (v View) resolve(name string) (string, error) {
	pending := splitPath(name)
	var resolved []string // components that are directories in the view
	links := 0
	for len(pending) > 0 {
		comp := pending[0]
		pending = pending[1:]
		if comp == ".." {
			if len(resolved) > 0 {
				resolved = resolved[:len(resolved)-1]
			}
			continue
		}
		candidate := append(append([]string{}, resolved...), comp)
		host, st, err := v.entry(candidate)
		if err != nil {
			return "", fmt.Errorf("%s in the image: %w", name, err)
		}
		switch {
		case st.Mode()&fs.ModeSymlink != 0:
			if links++; links > maxSymlinks {
				return "", fmt.Errorf("%s in the image: %w", name, unix.ELOOP)
			}
			target, err := os.Readlink(host)
			if err != nil {
				return "", err
			}
			if strings.HasPrefix(target, "/") {
				resolved = nil
			}
			pending = append(splitPath(target), pending...)
		case len(pending) == 0:
			return host, nil
		case !st.IsDir():
			return "", fmt.Errorf("%s in the image: %w", name, unix.ENOTDIR)
		default:
			resolved = candidate
		}
	}
	return "", fmt.Errorf("%s in the image: is the root directory", name)
}

// Lookup returns the host path and the lstat of the entry at name, without following symlinks, in
// the top-most layer that has it. Each parent of name must be a directory in the view: a caller
// walks a path from the root down.
func (v View) Lookup(name string) (string, os.FileInfo, error) {
	return v.entry(splitPath(name))
}

func (v View) entry(comps []string) (string, os.FileInfo, error) {
	rel := filepath.Join(comps...)
	parent, base := filepath.Dir(rel), filepath.Base(rel)
	for _, layer := range v {
		hidden, err := dirInLayer(layer, parent)
		if err != nil {
			return "", nil, err
		}
		if hidden == parentAbsent {
			continue
		}
		if hidden == parentReplaced {
			break
		}
		if _, err := os.Lstat(filepath.Join(layer, parent, ".wh."+base)); err == nil {
			break
		}
		host := filepath.Join(layer, rel)
		st, err := os.Lstat(host)
		if err == nil {
			// The store keeps a whiteout as a character device 0:0.
			if st.Mode()&fs.ModeCharDevice != 0 {
				if sys, ok := st.Sys().(*unix.Stat_t); ok && sys.Rdev == 0 {
					break
				}
			}
			return host, st, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", nil, err
		}
		if hidden == parentOpaque {
			break
		}
	}
	return "", nil, fs.ErrNotExist
}

// How a layer holds the parent directory of an entry being looked up.
const (
	parentPresent  = iota // a directory whose lower layers show through
	parentAbsent          // not in this layer: look below
	parentOpaque          // a directory that hides the lower layers' entries
	parentReplaced        // something that is not a directory hides the lower layers
)

// dirInLayer reports how layer holds the directory rel, checking each component without following
// symlinks on the host.
func dirInLayer(layer, rel string) (int, error) {
	state := parentPresent
	p := layer
	for _, c := range splitPath(rel) {
		p = filepath.Join(p, c)
		st, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return parentAbsent, nil
		}
		if err != nil {
			return 0, err
		}
		if !st.IsDir() {
			return parentReplaced, nil
		}
		if opaque(p) {
			state = parentOpaque
		}
	}
	return state, nil
}

// opaque reports whether the store marked dir opaque (the overlay driver's xattr, user.* when
// the store runs rootless, trusted.* otherwise).
func opaque(dir string) bool {
	buf := make([]byte, 1)
	for _, attr := range []string{"user.overlay.opaque", "trusted.overlay.opaque"} {
		if n, err := unix.Lgetxattr(dir, attr, buf); err == nil && n == 1 && buf[0] == 'y' {
			return true
		}
	}
	return false
}

// splitPath splits p into its components, keeping ".." (a relative symlink target climbs from the
// link's directory).
func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}
