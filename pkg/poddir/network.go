package poddir

// The pod's etc files, written by kite in the pod directory and bound over the same paths in
// every app (/etc/hosts, ...).
const (
	HostsFile      = "etc/hosts"
	HostnameFile   = "etc/hostname"
	ResolvConfFile = "etc/resolv.conf"
)

// Network modes (--net).
const (
	NetDefault = "default" // a network namespace of the pod's own, with a helper for outbound access and published ports
	NetHost    = "host"    // the caller's network namespace
	NetNone    = "none"    // a network namespace of the pod's own with loopback only
)

// The programs that connect a pod's own network namespace to the host's network.
const (
	HelperPasta       = "pasta"
	HelperSlirp4netns = "slirp4netns"
)

// Slirp4netnsDNS is where slirp4netns answers the pod's DNS queries with the host's resolver.
const Slirp4netnsDNS = "10.0.2.3"

// PastaDNS is the address where pasta answers the pod's DNS queries with the host's first
// resolver (its --dns-forward): link-local, so that it is no address of the host's networks.
const PastaDNS = "169.254.1.1"

// Network is the pod's network, in pod.json. config.json has the network namespace; this is what
// stage1 does beside it.
type Network struct {
	Mode string `json:"mode"`
	// Helper is the program (looked up in PATH) the monitor runs for the pod's life in default
	// mode: HelperPasta or HelperSlirp4netns.
	Helper string `json:"helper,omitempty"`
	Ports  []Port `json:"ports,omitempty"`
}

// Port is a pod port published on the host.
type Port struct {
	HostIP   string `json:"hostIP,omitempty"` // empty: every address of the host
	HostPort int    `json:"hostPort"`
	PodPort  int    `json:"podPort"`
	Protocol string `json:"protocol"` // tcp or udp
}
