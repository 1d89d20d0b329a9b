package podinit

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// setSysctls writes config.json's linux.sysctl before the init pivots, through the host's /proc
// that it still sees: a sysctl of the network or IPC namespace takes the value for the
// container's own namespace (the writer's), and the kernel refuses the others to a user
// namespace's root, which is the error the user gets.
func setSysctls(sysctls map[string]string) error {
	for key, value := range sysctls {
		if key == "" || strings.HasPrefix(key, "/") || strings.Contains(key, "..") || strings.Contains(key, "\x00") {
			return fmt.Errorf("sysctl %q: not a kernel parameter name", key)
		}
		// Names use dots or slashes (sysctl(8)); a dot in a slash-separated name is part of a
		// component (net/ipv4/conf/eth0.100/forwarding).
		path := key
		if !strings.Contains(key, "/") {
			path = strings.ReplaceAll(key, ".", "/")
		}
		if err := os.WriteFile(filepath.Join("/proc/sys", path), []byte(value), 0); err != nil {
			return fmt.Errorf("set sysctl %s=%s: %w (only the network and IPC parameters of the container's own namespaces can be set)", key, value, err)
		}
	}
	return nil
}
