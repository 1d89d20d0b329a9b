package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// libexecPath finds one of kite's helper binaries: next to kite itself (a build tree), or in
// ../libexec/kite relative to it (an installed PREFIX).
func libexecPath(name string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find %s: %w", name, err)
	}
	self, _ = filepath.EvalSymlinks(self)
	dir := filepath.Dir(self)
	candidates := []string{filepath.Join(dir, name), filepath.Join(dir, "..", "libexec", "kite", name)}
	for _, p := range candidates {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("find %s: not in %s or %s; reinstall kite (make install)", name, candidates[0], candidates[1])
}
