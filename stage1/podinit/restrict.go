package podinit

import (
	"fmt"
	"os"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// restrictApp limits what the app can gain, in init itself before the app is forked: the app
// inherits init's bounding set, its empty inheritable and ambient sets and no_new_privs. Init
// keeps its own permitted capabilities, which the bounding set does not reduce and which it needs
// to signal and reap the app; it never execs again, so the dropped bounding set costs it nothing.
//
// The exec of the app then does the rest (capabilities(7), "Transformation of capabilities during
// execve"): a root app's permitted and effective sets become the bounding set; any other app's
// are empty. stage0 writes config.json to match; anything else it asks for, init refuses.
func restrictApp(p *specs.Process) error {
	if c := p.Capabilities; c != nil {
		if len(c.Ambient) > 0 || len(c.Inheritable) > 0 {
			return fmt.Errorf("config.json asks for inheritable or ambient capabilities, which kite does not grant")
		}
		if err := limitBounding(c.Bounding); err != nil {
			return err
		}
		if err := capability.ResetAmbient(); err != nil {
			return fmt.Errorf("clear the ambient capabilities: %w", err)
		}
		self, err := capability.NewPid2(0)
		if err == nil {
			err = self.Load()
		}
		if err == nil {
			self.Clear(capability.INHERITABLE)
			err = self.Apply(capability.CAPS)
		}
		if err != nil {
			return fmt.Errorf("clear the inheritable capabilities: %w", err)
		}
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return os.NewSyscallError("prctl(PR_SET_NO_NEW_PRIVS)", err)
		}
	}
	return nil
}

// limitBounding drops from the bounding set every capability the kernel has that keep does not
// name (OCI names, CAP_CHOWN).
func limitBounding(keep []string) error {
	kept := map[string]bool{}
	for _, name := range keep {
		kept[strings.ToUpper(name)] = true
	}
	last, err := capability.LastCap()
	if err != nil {
		return fmt.Errorf("find the kernel's capabilities: %w", err)
	}
	var drop []capability.Cap
	for c := capability.Cap(0); c <= last; c++ {
		if !kept["CAP_"+strings.ToUpper(c.String())] {
			drop = append(drop, c)
		}
	}
	if err := capability.DropBound(drop...); err != nil {
		return fmt.Errorf("limit the bounding capability set: %w", err)
	}
	return nil
}
