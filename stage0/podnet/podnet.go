// Package podnet turns kite's network flags into a pod's network: the mode and helper stage1
// runs (pod.json), the files the pod sees as /etc/resolv.conf, /etc/hosts and /etc/hostname, and
// what each app's config.json gets for them.
package podnet

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"

	"github.com/kite-runtime/kite/pkg/poddir"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Options are the pod's network flags.
type Options struct {
	// Mode is --net: default, host, none, or pasta or slirp4netns (default with that helper).
	Mode         string
	Ports        []string
	DNS          DNS
	HostsEntries []string
	Hostname     string
}

// Plan is the pod's network as kite writes it.
type Plan struct {
	Network poddir.Network
	// Files are the pod's etc files by path in the pod directory; each is bound over the same
	// path in every app.
	Files map[string][]byte
}

// helpers are the programs that give a pod of its own network namespace outbound access and
// published ports, in the order kite looks for them.
var helpers = []string{poddir.HelperPasta, poddir.HelperSlirp4netns}

// New checks opts and makes the plan. exposed is the first app's image's ExposedPorts, and image
// reads a file of its root filesystem (nil when it has none).
func New(opts Options, exposed []string, image func(name string) []byte) (*Plan, error) {
	n := poddir.Network{Mode: opts.Mode}
	switch opts.Mode {
	case poddir.NetDefault, "":
		n.Mode = poddir.NetDefault
		helper, err := findHelper()
		if err != nil {
			return nil, err
		}
		n.Helper = helper
	case poddir.HelperPasta, poddir.HelperSlirp4netns:
		if _, err := exec.LookPath(opts.Mode); err != nil {
			return nil, fmt.Errorf("--net=%s: %s is not installed: %s", opts.Mode, opts.Mode, installHint(opts.Mode))
		}
		n.Mode, n.Helper = poddir.NetDefault, opts.Mode
	case poddir.NetHost, poddir.NetNone:
	default:
		return nil, fmt.Errorf("--net=%s: use default (a network of the pod's own, through pasta or else slirp4netns), pasta or slirp4netns (default, through that one), host or none", opts.Mode)
	}
	for _, v := range opts.Ports {
		p, err := ParsePort(v, exposed)
		if err != nil {
			return nil, err
		}
		n.Ports = append(n.Ports, p)
	}
	if err := uniquePorts(n.Ports); err != nil {
		return nil, err
	}
	if len(n.Ports) > 0 && n.Mode != poddir.NetDefault {
		return nil, fmt.Errorf("--port publishes a port of the pod's own network: with --net=%s there is none to publish from (use --net=default)", n.Mode)
	}
	hostResolv, err := readHostFile("/etc/resolv.conf")
	if err != nil {
		return nil, err
	}
	hostHosts, err := readHostFile("/etc/hosts")
	if err != nil {
		return nil, err
	}
	p := &Plan{Network: n, Files: map[string][]byte{}}
	resolv, err := resolvConf(opts.DNS, n.Mode, hostResolv, dnsForwarder(n.Helper))
	if err != nil {
		return nil, err
	}
	if resolv != nil {
		p.Files[poddir.ResolvConfFile] = resolv
	}
	base := hostsBase(opts.HostsEntries, n.Mode, hostHosts, image("/etc/hosts"))
	if p.Files[poddir.HostsFile], err = hosts(opts.HostsEntries, opts.Hostname, base); err != nil {
		return nil, err
	}
	p.Files[poddir.HostnameFile] = []byte(opts.Hostname + "\n")
	return p, nil
}

// Apply gives an app's config.json the pod's network: a network namespace of the pod's own (but
// with --net=host), where /sys can be mounted fresh, and the pod's etc files.
func (p *Plan) Apply(s *specs.Spec) {
	if p.Network.Mode != poddir.NetHost {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace})
		for i, m := range s.Mounts {
			if m.Destination == "/sys" {
				s.Mounts[i] = specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}}
			}
		}
	}
	names := make([]string, 0, len(p.Files))
	for name := range p.Files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		// A relative source is in the pod directory.
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/" + name, Type: "bind", Source: name, Options: []string{"bind", "nosuid", "nodev", "noexec"}})
	}
}

// Check checks what can only be known where the pod starts: whether /dev/net/tun opens and the
// host ports are free.
func Check(n *poddir.Network) error {
	if n == nil || n.Helper == "" {
		return nil
	}
	if err := checkTun(); err != nil {
		return err
	}
	return CheckPorts(n.Ports)
}

// dnsForwarder is the address where helper answers the pod's DNS queries with the host's first
// resolver: pasta's --dns-forward, slirp4netns's built-in one.
func dnsForwarder(helper string) string {
	switch helper {
	case poddir.HelperPasta:
		return poddir.PastaDNS
	case poddir.HelperSlirp4netns:
		return poddir.Slirp4netnsDNS
	}
	return ""
}

// checkTun opens /dev/net/tun as the helpers will, in the pod's namespaces: a device the user
// may not open fails every pod of its own network.
func checkTun() error {
	f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("a pod of its own network needs /dev/net/tun, which cannot be opened (%w): on most hosts it is mode 0666; as root, run chmod 0666 /dev/net/tun (or load the tun module: modprobe tun), or give the pod the host's network with --net=host", err)
	}
	return f.Close()
}

func findHelper() (string, error) {
	for _, h := range helpers {
		if _, err := exec.LookPath(h); err == nil {
			return h, nil
		}
	}
	return "", errors.New("a pod of its own network needs pasta or slirp4netns, and neither is installed: install pasta (apt-get install passt), or give the pod the host's network with --net=host")
}

func installHint(helper string) string {
	if helper == poddir.HelperSlirp4netns {
		return "install it (apt-get install slirp4netns)"
	}
	return "install it (apt-get install passt)"
}
