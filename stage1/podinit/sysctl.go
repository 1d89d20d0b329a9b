package podinit

import (
	"slices"

	"github.com/kite-runtime/kite/pkg/podfork"
)

// setSysctls writes config.json's linux.sysctl before the init pivots, through the host's /proc
// that it still sees: a parameter of the network or IPC namespace takes the value for the pod's
// own namespace (the writer's), and the kernel refuses the others to a user namespace's root,
// which is the error the user gets. The parameters of a namespace the pod joined by path were
// set by kite, which has the privilege over it that the init lacks.
func setSysctls(c *podConfig) error {
	for key, value := range c.Linux.Sysctl {
		ns := podfork.SysctlNamespace(key)
		if ns != "" && slices.ContainsFunc(c.Linux.Namespaces, func(n podNamespace) bool { return n.Type == string(ns) && n.Path != "" }) {
			continue
		}
		if err := podfork.SetSysctl(key, value); err != nil {
			return err
		}
	}
	return nil
}
