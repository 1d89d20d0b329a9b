package podnet

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"strings"
	"unicode"

	"github.com/kite-runtime/kite/pkg/poddir"
)

// Names flags take that are not lists of addresses.
const (
	fromHost = "host"
	noFile   = "none"
)

// DNS is what the pod's /etc/resolv.conf says: --dns, --dns-search, --dns-opt, --dns-domain.
type DNS struct {
	// Servers are nameserver addresses, or one of "host" (the host's resolv.conf) and "none"
	// (the image's own file, untouched).
	Servers []string
	Search  []string
	Options []string
	Domain  string
}

// resolvConf returns the pod's /etc/resolv.conf, or nil when the image keeps its own. host is
// the host's resolv.conf; forwarder, when not empty, is the address where the network helper
// answers DNS for the host's resolvers, for when those are on the host's loopback.
func resolvConf(d DNS, mode string, host []byte, forwarder string) ([]byte, error) {
	special := slices.ContainsFunc(d.Servers, func(s string) bool { return s == fromHost || s == noFile })
	if special && len(d.Servers) > 1 {
		return nil, fmt.Errorf("--dns %s: give host, none, or addresses, not several of these", strings.Join(d.Servers, ","))
	}
	if len(d.Servers) == 1 && d.Servers[0] == noFile {
		if len(d.Search) > 0 || len(d.Options) > 0 || d.Domain != "" {
			return nil, fmt.Errorf("--dns=none keeps the image's resolv.conf: --dns-search, --dns-opt and --dns-domain have nothing to change")
		}
		return nil, nil
	}
	hostConf := parseResolvConf(host)
	conf := resolv{}
	switch {
	case len(d.Servers) == 1 && d.Servers[0] == fromHost, len(d.Servers) == 0 && mode == poddir.NetHost:
		conf = hostConf
	case len(d.Servers) == 0:
		// The pod's own network namespace has its own loopback: a resolver on the host's is
		// reached through the helper's forwarder.
		conf.search, conf.options, conf.domain = hostConf.search, hostConf.options, hostConf.domain
		for _, s := range hostConf.servers {
			if a, err := netip.ParseAddr(s); err == nil && !a.IsLoopback() {
				conf.servers = append(conf.servers, s)
			}
		}
		if len(conf.servers) < len(hostConf.servers) && forwarder != "" {
			conf.servers = append([]string{forwarder}, conf.servers...)
		}
	default:
		for _, s := range d.Servers {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("--dns %s: not an IP address; give addresses, host or none", s)
			}
			conf.servers = append(conf.servers, a.String())
		}
		conf.search, conf.options, conf.domain = hostConf.search, hostConf.options, hostConf.domain
	}
	// Each value becomes a word of a line of resolv.conf: a separator in one would split it, and
	// a newline would add lines (a nameserver) of the user's making.
	for _, v := range slices.Concat(conf.servers, d.Search, d.Options, []string{d.Domain}) {
		if !oneWord(v) {
			return nil, fmt.Errorf("--dns, --dns-search, --dns-opt, --dns-domain: %q holds a space, a control character or a newline; give one word per value (use commas between values)", v)
		}
	}
	if d.Search != nil {
		conf.search = d.Search
	}
	if d.Options != nil {
		conf.options = d.Options
	}
	if d.Domain != "" {
		conf.domain = d.Domain
	}
	return conf.bytes(), nil
}

type resolv struct {
	servers, search, options []string
	domain                   string
}

func parseResolvConf(data []byte) resolv {
	var r resolv
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			r.servers = append(r.servers, f[1])
		case "search":
			r.search = f[1:]
		case "options":
			r.options = append(r.options, f[1:]...)
		case "domain":
			r.domain = f[1]
		}
	}
	return r
}

func (r resolv) bytes() []byte {
	var b bytes.Buffer
	b.WriteString("# Written by kite for this pod.\n")
	if r.domain != "" {
		fmt.Fprintf(&b, "domain %s\n", r.domain)
	}
	if len(r.search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(r.search, " "))
	}
	for _, s := range r.servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(r.options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(r.options, " "))
	}
	return b.Bytes()
}

// oneWord reports whether s reads as one field in resolv.conf and /etc/hosts: no space and no
// control character (resolvers differ in which of \r, \v and \f they split at).
func oneWord(s string) bool {
	return !strings.ContainsFunc(s, func(c rune) bool { return unicode.IsSpace(c) || unicode.IsControl(c) })
}

// defaultHosts is /etc/hosts for an image that has none.
const defaultHosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"

// hosts returns the pod's /etc/hosts: base, then the pod's hostname on 127.0.1.1 and each
// IP=HOSTNAME entry ("host" entries choose the base; see hostsBase).
func hosts(entries []string, hostname string, base []byte) ([]byte, error) {
	var b bytes.Buffer
	b.Write(base)
	if len(base) > 0 && base[len(base)-1] != '\n' {
		b.WriteByte('\n')
	}
	b.WriteString("# Added by kite for this pod.\n")
	fmt.Fprintf(&b, "127.0.1.1\t%s\n", hostname)
	for _, e := range entries {
		if e == fromHost {
			continue
		}
		ip, name, ok := strings.Cut(e, "=")
		a, err := netip.ParseAddr(ip)
		// The address (its IPv6 zone may hold anything) and the name must each stay one field of
		// the line, and not start a comment.
		if !ok || err != nil || name == "" || !oneWord(name) || !oneWord(a.String()) || strings.Contains(e, "#") {
			return nil, fmt.Errorf("--hosts-entry %s: use IP=HOSTNAME (10.0.0.5=db), or host for the host's /etc/hosts", e)
		}
		fmt.Fprintf(&b, "%s\t%s\n", a, name)
	}
	return b.Bytes(), nil
}

// hostsBase is what the pod's /etc/hosts starts from: the host's with --hosts-entry=host or the
// host's network, else the image's (nil when it has none), else a file of localhost alone.
func hostsBase(entries []string, mode string, host, image []byte) []byte {
	switch {
	case mode == poddir.NetHost || slices.Contains(entries, fromHost):
		return host
	case image != nil:
		return image
	}
	return []byte(defaultHosts)
}

// readHostFile reads one of the host's /etc files; a missing one reads as empty.
func readHostFile(name string) ([]byte, error) {
	data, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return data, err
}
