package podnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/kite-runtime/kite/pkg/poddir"
)

// ParsePort parses a --port value: [HOSTIP:]HOSTPORT:PODPORT[/tcp|udp], or, as in rkt,
// NAME:[HOSTIP:]HOSTPORT where NAME is one of the image's exposed ports written PORT-PROTOCOL
// (80-tcp for the image's 80/tcp). exposed is the image's ExposedPorts ("80/tcp", "53/udp").
func ParsePort(value string, exposed []string) (poddir.Port, error) {
	bad := func(why string) (poddir.Port, error) {
		return poddir.Port{}, fmt.Errorf("--port %s: %s; use [HOSTIP:]HOSTPORT:PODPORT[/tcp|udp], e.g. 8080:80 or 127.0.0.1:8080:80/udp, or NAME:HOSTPORT with NAME an exposed port of the image (80-tcp)", value, why)
	}
	if name, rest, ok := strings.Cut(value, ":"); ok && strings.Contains(name, "-") {
		return parseNamedPort(value, name, rest, exposed)
	}
	spec, proto, hasProto := strings.Cut(value, "/")
	if !hasProto {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" {
		return bad(fmt.Sprintf("protocol %q is neither tcp nor udp", proto))
	}
	i := strings.LastIndex(spec, ":")
	if i < 0 {
		return bad("no pod port")
	}
	hostPart, podPart := spec[:i], spec[i+1:]
	hostIP, hostPort, err := splitHost(hostPart)
	if err != nil {
		return bad(err.Error())
	}
	p := poddir.Port{HostIP: hostIP, Protocol: proto}
	if p.HostPort, err = portNumber(hostPort); err != nil {
		return bad("host port: " + err.Error())
	}
	if p.PodPort, err = portNumber(podPart); err != nil {
		return bad("pod port: " + err.Error())
	}
	return p, nil
}

// parseNamedPort parses NAME:[HOSTIP:]HOSTPORT.
func parseNamedPort(value, name, rest string, exposed []string) (poddir.Port, error) {
	num, proto, _ := strings.Cut(name, "-")
	if !slices.Contains(exposed, num+"/"+proto) {
		names := make([]string, len(exposed))
		for i, e := range exposed {
			names[i] = strings.Replace(e, "/", "-", 1)
		}
		if len(names) == 0 {
			return poddir.Port{}, fmt.Errorf("--port %s: the image exposes no ports, so %s names none; give the pod port as a number: HOSTPORT:PODPORT", value, name)
		}
		return poddir.Port{}, fmt.Errorf("--port %s: the image exposes no port %s (it exposes %s)", value, name, strings.Join(names, ", "))
	}
	// The image's ExposedPorts may name any protocol; the network helpers forward tcp and udp.
	if proto != "tcp" && proto != "udp" {
		return poddir.Port{}, fmt.Errorf("--port %s: the image exposes %s/%s, but kite publishes tcp and udp ports only", value, num, proto)
	}
	hostIP, hostPort, err := splitHost(rest)
	if err != nil {
		return poddir.Port{}, fmt.Errorf("--port %s: %w", value, err)
	}
	p := poddir.Port{HostIP: hostIP, Protocol: proto}
	if p.HostPort, err = portNumber(hostPort); err != nil {
		return poddir.Port{}, fmt.Errorf("--port %s: host port: %w", value, err)
	}
	if p.PodPort, err = portNumber(num); err != nil {
		return poddir.Port{}, fmt.Errorf("--port %s: exposed port: %w", value, err)
	}
	return p, nil
}

// splitHost splits [HOSTIP:]HOSTPORT; an IPv6 address is written in brackets ([::1]:8080).
func splitHost(s string) (ip, port string, err error) {
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return "", s, nil
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(s[:i], "["), "]")
	a, err := netip.ParseAddr(addr)
	if err != nil || a.Zone() != "" {
		return "", "", fmt.Errorf("host address %q is not an IP address", s[:i])
	}
	return a.String(), s[i+1:], nil
}

func portNumber(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port number (1-65535)", s)
	}
	return n, nil
}

// uniquePorts refuses a host address, port and protocol given twice: what kite prepare can tell
// before the pod is written.
func uniquePorts(ports []poddir.Port) error {
	seen := map[poddir.Port]bool{}
	for _, p := range ports {
		key := poddir.Port{HostIP: p.HostIP, HostPort: p.HostPort, Protocol: p.Protocol}
		if seen[key] {
			return fmt.Errorf("--port: host port %s/%s is published twice", net.JoinHostPort(p.HostIP, strconv.Itoa(p.HostPort)), p.Protocol)
		}
		seen[key] = true
	}
	return nil
}

// CheckPorts binds each host port for an instant, so that a port in use or one the user may
// not bind fails the run before a pod exists, with what to do about it.
func CheckPorts(ports []poddir.Port) error {
	for _, p := range ports {
		addr := net.JoinHostPort(p.HostIP, strconv.Itoa(p.HostPort))
		var err error
		if p.Protocol == "udp" {
			var c net.PacketConn
			if c, err = net.ListenPacket("udp", addr); err == nil {
				c.Close()
			}
		} else {
			var l net.Listener
			if l, err = net.Listen("tcp", addr); err == nil {
				l.Close()
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, syscall.EADDRINUSE):
			return fmt.Errorf("--port: host port %d/%s is in use: stop what listens there (ss -lnp sport = :%d) or publish another port", p.HostPort, p.Protocol, p.HostPort)
		case errors.Is(err, syscall.EACCES):
			return fmt.Errorf("--port: host port %d/%s is privileged: only ports from %s up may be bound by a user; publish one of those (--port 8080:%d) or lower the limit (sysctl net.ipv4.ip_unprivileged_port_start=%d)", p.HostPort, p.Protocol, unprivilegedPortStart(), p.PodPort, p.HostPort)
		case errors.Is(err, syscall.EADDRNOTAVAIL):
			return fmt.Errorf("--port: host address %s is not an address of this host", p.HostIP)
		default:
			return fmt.Errorf("--port: host port %s/%s: %w", addr, p.Protocol, err)
		}
	}
	return nil
}

func unprivilegedPortStart() string {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		return "1024"
	}
	return strings.TrimSpace(string(data))
}
