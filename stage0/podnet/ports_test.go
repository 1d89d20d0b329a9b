package podnet

import (
	"net"
	"strings"
	"testing"

	"github.com/kite-runtime/kite/pkg/poddir"
)

func TestParsePort(t *testing.T) {
	exposed := []string{"53/udp", "80/tcp"}
	for _, c := range []struct {
		in   string
		want poddir.Port
	}{
		{"8080:80", poddir.Port{HostPort: 8080, PodPort: 80, Protocol: "tcp"}},
		{"8080:80/udp", poddir.Port{HostPort: 8080, PodPort: 80, Protocol: "udp"}},
		{"127.0.0.1:8080:80/tcp", poddir.Port{HostIP: "127.0.0.1", HostPort: 8080, PodPort: 80, Protocol: "tcp"}},
		{"[::1]:8080:80", poddir.Port{HostIP: "::1", HostPort: 8080, PodPort: 80, Protocol: "tcp"}},
		{"80-tcp:8080", poddir.Port{HostPort: 8080, PodPort: 80, Protocol: "tcp"}},
		{"53-udp:127.0.0.1:5353", poddir.Port{HostIP: "127.0.0.1", HostPort: 5353, PodPort: 53, Protocol: "udp"}},
	} {
		got, err := ParsePort(c.in, exposed)
		if err != nil || got != c.want {
			t.Errorf("ParsePort(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

func TestParsePortRefused(t *testing.T) {
	for _, c := range []struct{ in, says string }{
		{"8080", "no pod port"},
		{"8080:80/sctp", "neither tcp nor udp"},
		{"0:80", "host port"},
		{"8080:65536", "pod port"},
		{"x:8080:80", "not an IP address"},
		{"fe80::1%eth0:8080:80", "not an IP address"},
		{"443-tcp:8443", "exposes no port 443-tcp (it exposes 53-udp, 80-tcp)"},
		{"80-tcp:http", "host port"},
	} {
		_, err := ParsePort(c.in, []string{"53/udp", "80/tcp"})
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("ParsePort(%q) = %v; want an error saying %q", c.in, err, c.says)
		}
	}
	if _, err := ParsePort("80-tcp:8080", nil); err == nil || !strings.Contains(err.Error(), "exposes no ports") {
		t.Errorf("a name with an image that exposes nothing: %v", err)
	}
	if _, err := ParsePort("80-sctp:8080", []string{"80/sctp"}); err == nil || !strings.Contains(err.Error(), "tcp and udp ports only") {
		t.Errorf("a name of an exposed sctp port: %v", err)
	}
}

// TestCheckPorts binds a port of its own on loopback and expects kite to refuse it, for TCP and
// for UDP, then frees it and expects it accepted.
func TestCheckPorts(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	busy := poddir.Port{HostIP: "127.0.0.1", HostPort: port, PodPort: 80, Protocol: "tcp"}
	if err := CheckPorts([]poddir.Port{busy}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("a port in use: %v", err)
	}
	l.Close()
	if err := CheckPorts([]poddir.Port{busy}); err != nil {
		t.Errorf("a free port: %v", err)
	}
	u, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	uport := u.LocalAddr().(*net.UDPAddr).Port
	if err := CheckPorts([]poddir.Port{{HostIP: "127.0.0.1", HostPort: uport, PodPort: 53, Protocol: "udp"}}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("a UDP port in use: %v", err)
	}
}

func TestUniquePorts(t *testing.T) {
	twice := []poddir.Port{{HostPort: 18080, PodPort: 80, Protocol: "tcp"}, {HostPort: 18080, PodPort: 81, Protocol: "tcp"}}
	if err := uniquePorts(twice); err == nil || !strings.Contains(err.Error(), "published twice") {
		t.Errorf("a port given twice: %v", err)
	}
	both := []poddir.Port{{HostPort: 18080, PodPort: 80, Protocol: "tcp"}, {HostPort: 18080, PodPort: 80, Protocol: "udp"}, {HostIP: "127.0.0.1", HostPort: 18080, PodPort: 81, Protocol: "tcp"}}
	if err := uniquePorts(both); err != nil {
		t.Errorf("one port over tcp and udp, and on another address: %v", err)
	}
}
