package podfork

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// SysctlNamespace is the namespace whose value of the kernel parameter key a write sets, "" for
// a parameter no namespace has (which a pod cannot set).
func SysctlNamespace(key string) specs.LinuxNamespaceType {
	k := strings.ReplaceAll(key, "/", ".")
	switch {
	case strings.HasPrefix(k, "net."):
		return specs.NetworkNamespace
	case strings.HasPrefix(k, "fs.mqueue."), k == "kernel.sem", strings.HasPrefix(k, "kernel.shm"), strings.HasPrefix(k, "kernel.msg"):
		return specs.IPCNamespace
	}
	return ""
}

// SetSysctl writes kernel parameter key (sysctl(8)'s name, with dots or slashes) through /proc/sys:
// a namespaced parameter takes the value in the namespaces of the calling thread.
func SetSysctl(key, value string) error {
	if key == "" || strings.HasPrefix(key, "/") || strings.Contains(key, "..") || strings.Contains(key, "\x00") {
		return fmt.Errorf("sysctl %q: not a kernel parameter name", key)
	}
	// In a slash-separated name, a dot belongs to a component (net/ipv4/conf/eth0.100/forwarding).
	path := key
	if !strings.Contains(key, "/") {
		path = strings.ReplaceAll(key, ".", "/")
	}
	if err := os.WriteFile(filepath.Join("/proc/sys", path), []byte(value), 0); err != nil {
		return fmt.Errorf("set sysctl %s=%s: %w (only the network and IPC parameters of the pod's namespaces can be set)", key, value, err)
	}
	return nil
}
