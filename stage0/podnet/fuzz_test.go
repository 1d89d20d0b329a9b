package podnet

// Fuzz targets for the network flags' grammars (--port, --hosts-entry, --dns*) and the host's
// resolv.conf parser. `make unit` runs their seeds; `make fuzz` fuzzes each for $(FUZZTIME).

import (
	"bytes"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kite-runtime/kite/pkg/poddir"
)

// FuzzParsePort checks --port against the image's exposed ports (both hostile: the user's flag
// and the image's ExposedPorts): an accepted port has port numbers in 1-65535, a canonical host
// address without a zone, a protocol CheckPorts and the network helpers handle (tcp or udp), an
// address CheckPorts can bind, and writes back in the numeric form to the same port.
func FuzzParsePort(f *testing.F) {
	exposed := "53/udp,80/tcp"
	for _, s := range []string{
		"8080:80", "8080:80/udp", "127.0.0.1:8080:80/tcp", "[::1]:8080:80", "80-tcp:8080", "53-udp:127.0.0.1:5353",
		"8080", "8080:80/sctp", "0:80", "8080:65536", "x:8080:80", "fe80::1%eth0:8080:80", "443-tcp:8443", "80-tcp:http",
		"::1:8080:80", "[::ffff:1.2.3.4]:1:65535/udp", "[1.2.3.4]:80:80", "+80:080", "80-tcp:[::1]:8080", ":80", "80:",
		"1-2-3:4", "80-tcp:1.2.3.4:", "[fe80::1%25lo]:80:80",
	} {
		f.Add(s, exposed)
	}
	f.Add("80-sctp:8080", "80/sctp")
	f.Add("80-:8080", "80/")
	f.Add("x-tcp:8080", "x/tcp")
	f.Fuzz(func(t *testing.T, value, exposedList string) {
		var exposed []string
		if exposedList != "" {
			exposed = strings.Split(exposedList, ",")
		}
		p, err := ParsePort(value, exposed)
		if err != nil {
			if p != (poddir.Port{}) {
				t.Fatalf("ParsePort(%q) failed (%v) but returned %+v", value, err, p)
			}
			return
		}
		if p.HostPort < 1 || p.HostPort > 65535 || p.PodPort < 1 || p.PodPort > 65535 {
			t.Fatalf("ParsePort(%q) = %+v: a port out of range", value, p)
		}
		if p.Protocol != "tcp" && p.Protocol != "udp" {
			t.Fatalf("ParsePort(%q) = %+v: protocol %q", value, p, p.Protocol)
		}
		if p.HostIP != "" {
			a, err := netip.ParseAddr(p.HostIP)
			if err != nil || a.Zone() != "" || a.String() != p.HostIP {
				t.Fatalf("ParsePort(%q) = %+v: host address not canonical (%v)", value, p, err)
			}
		}
		// What CheckPorts binds.
		addr := net.JoinHostPort(p.HostIP, strconv.Itoa(p.HostPort))
		if host, port, err := net.SplitHostPort(addr); err != nil || host != p.HostIP || port != strconv.Itoa(p.HostPort) {
			t.Fatalf("ParsePort(%q) = %+v: CheckPorts would bind %q", value, p, addr)
		}
		numeric := strconv.Itoa(p.HostPort) + ":" + strconv.Itoa(p.PodPort) + "/" + p.Protocol
		if p.HostIP != "" {
			numeric = "[" + p.HostIP + "]:" + numeric
		}
		if p2, err := ParsePort(numeric, nil); err != nil || p2 != p {
			t.Fatalf("ParsePort(%q) = %+v; written as %q it parses to %+v, %v", value, p, numeric, p2, err)
		}
	})
}

// FuzzHosts checks /etc/hosts with --hosts-entry values (newline-separated here): the base is
// kept, the pod's hostname and each entry add one line, and each added line reads back, split at
// whitespace as the resolver splits it, as exactly the entry's address and name.
func FuzzHosts(f *testing.F) {
	for _, e := range []string{
		"10.0.0.5=db", "host", "::1=six", "10.0.0.5=db\n10.0.0.6=cache", "10.0.0.5", "=db", "10.0.0.5=", "x=db",
		"10.0.0.5=a b", "10.0.0.5=a#b", "fe80::1%eth0=z", "::ffff:10.0.0.1=m", "10.0.0.5=a=b", "10.0.0.5=a\rb", "::%#x=y",
	} {
		f.Add(e, []byte(defaultHosts))
	}
	f.Add("10.0.0.5=db", []byte("127.0.0.1 localhost"))
	f.Add("10.0.0.5=db", []byte(nil))
	f.Fuzz(func(t *testing.T, list string, base []byte) {
		entries := strings.Split(list, "\n")
		out, err := hosts(entries, "kite-host", base)
		if err != nil {
			return
		}
		if !bytes.HasPrefix(out, base) || !bytes.HasSuffix(out, []byte("\n")) {
			t.Fatalf("hosts(%q) does not keep the base or end a line:\n%s", entries, out)
		}
		_, added, ok := bytes.Cut(out[len(base):], []byte("# Added by kite for this pod.\n"))
		if !ok {
			t.Fatalf("hosts(%q) has no kite section:\n%s", entries, out)
		}
		lines := strings.Split(strings.TrimSuffix(string(added), "\n"), "\n")
		want := [][]string{{"127.0.1.1", "kite-host"}}
		for _, e := range entries {
			if e == fromHost {
				continue
			}
			ip, name, _ := strings.Cut(e, "=")
			want = append(want, []string{netip.MustParseAddr(ip).String(), name})
		}
		if len(lines) != len(want) {
			t.Fatalf("hosts(%q) added %d lines, want %d:\n%s", entries, len(lines), len(want), added)
		}
		for i, line := range lines {
			// glibc splits hosts lines at spaces and tabs; \r, \v and \f end a field as well in
			// other resolvers (musl's isspace); a # starts a comment.
			line, _, _ = strings.Cut(line, "#")
			got := strings.FieldsFunc(line, func(c rune) bool { return strings.ContainsRune(" \t\r\v\f", c) })
			if !slices.Equal(got, want[i]) {
				t.Fatalf("hosts(%q): line %q reads as %q, want %q", entries, line, got, want[i])
			}
		}
	})
}

// FuzzResolvConf checks the host's resolv.conf parser and the pod's resolv.conf: a parsed file
// writes back to a file that parses to the same, and the pod's file names exactly the
// nameservers the flags give (canonical addresses), whatever the host's file holds.
func FuzzResolvConf(f *testing.F) {
	host := []byte("# comment\nnameserver 10.0.0.2\nnameserver 127.0.0.53\nsearch a.example b.example\noptions ndots:2 edns0\noptions rotate\ndomain example\n")
	f.Add(host, "", "", "", "", poddir.NetDefault)
	f.Add(host, "1.1.1.1,::1", "x.example", "ndots:1", "d.example", poddir.NetDefault)
	f.Add(host, "host", "", "", "", poddir.NetDefault)
	f.Add(host, "none", "", "", "", poddir.NetDefault)
	f.Add(host, "none", "x", "", "", poddir.NetDefault)
	f.Add(host, "host,1.1.1.1", "", "", "", poddir.NetDefault)
	f.Add(host, "not-an-ip", "", "", "", poddir.NetHost)
	f.Add([]byte("nameserver\nsearch\n;nameserver 1.1.1.1\nnameserver ::1%lo\n\r\n"), "", "", "", "", poddir.NetHost)
	f.Add([]byte("nameserver 1.1.1.1\r\noptions\ta  b\n"), "::ffff:1.2.3.4", "", "", "", poddir.NetNone)
	f.Add(host, "1.1.1.1", "x\nnameserver 6.6.6.6", "", "", poddir.NetDefault)
	f.Add(host, "fe80::1%eth0,::%\nnameserver 6.6.6.6", "", "", "", poddir.NetDefault)
	f.Fuzz(func(t *testing.T, hostConf []byte, servers, search, options, domain, mode string) {
		parsed := parseResolvConf(hostConf)
		if again := parseResolvConf(parsed.bytes()); !sameResolv(again, parsed) {
			t.Fatalf("parseResolvConf(%q) = %+v; written back it parses to %+v", hostConf, parsed, again)
		}
		d := DNS{Domain: domain}
		if servers != "" {
			d.Servers = strings.Split(servers, ",")
		}
		if search != "" {
			d.Search = strings.Split(search, ",")
		}
		if options != "" {
			d.Options = strings.Split(options, ",")
		}
		out, err := resolvConf(d, mode, hostConf, poddir.PastaDNS)
		if err != nil || out == nil {
			return
		}
		if len(d.Servers) == 0 || d.Servers[0] == fromHost {
			return
		}
		var want []string
		for _, s := range d.Servers {
			want = append(want, netip.MustParseAddr(s).String())
		}
		if got := parseResolvConf(out).servers; !slices.Equal(got, want) {
			t.Fatalf("resolvConf(%+v) names the servers %q, want %q:\n%s", d, got, want, out)
		}
	})
}

func sameResolv(a, b resolv) bool {
	return slices.Equal(a.servers, b.servers) && slices.Equal(a.search, b.search) && slices.Equal(a.options, b.options) && a.domain == b.domain
}
