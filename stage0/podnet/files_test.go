package podnet

import (
	"strings"
	"testing"

	"github.com/kite-runtime/kite/pkg/poddir"
)

const hostResolv = `# the host's
search example.org
nameserver 127.0.0.53
nameserver 192.0.2.53
options edns0
`

func TestResolvConf(t *testing.T) {
	for _, c := range []struct {
		name      string
		dns       DNS
		mode      string
		forwarder string
		want      string // the lines after kite's comment
	}{
		{"default: the host's loopback resolver through the forwarder", DNS{}, poddir.NetDefault, "169.254.1.1",
			"search example.org\nnameserver 169.254.1.1\nnameserver 192.0.2.53\noptions edns0\n"},
		{"host network: the host's file", DNS{}, poddir.NetHost, "",
			"search example.org\nnameserver 127.0.0.53\nnameserver 192.0.2.53\noptions edns0\n"},
		{"--dns=host", DNS{Servers: []string{"host"}}, poddir.NetDefault, "169.254.1.1",
			"search example.org\nnameserver 127.0.0.53\nnameserver 192.0.2.53\noptions edns0\n"},
		{"--dns with search, options and domain", DNS{Servers: []string{"10.0.0.1", "2001:db8::1"}, Search: []string{"a.test", "b.test"}, Options: []string{"ndots:2"}, Domain: "a.test"}, poddir.NetDefault, "169.254.1.1",
			"domain a.test\nsearch a.test b.test\nnameserver 10.0.0.1\nnameserver 2001:db8::1\noptions ndots:2\n"},
	} {
		got, err := resolvConf(c.dns, c.mode, []byte(hostResolv), c.forwarder)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		body, ok := strings.CutPrefix(string(got), "# Written by kite for this pod.\n")
		if !ok || body != c.want {
			t.Errorf("%s: got\n%s\nwant\n%s", c.name, got, c.want)
		}
	}
	if got, err := resolvConf(DNS{Servers: []string{"none"}}, poddir.NetDefault, []byte(hostResolv), ""); err != nil || got != nil {
		t.Errorf("--dns=none: %q, %v; want the image's file kept", got, err)
	}
	for _, bad := range []DNS{
		{Servers: []string{"host", "10.0.0.1"}},
		{Servers: []string{"dns.example"}},
		{Servers: []string{"none"}, Search: []string{"a.test"}},
		{Servers: []string{"fe80::1%x\nnameserver 6.6.6.6"}},
		{Search: []string{"a.test\nnameserver 6.6.6.6"}},
		{Options: []string{"ndots:1\rx"}},
		{Domain: "a b"},
	} {
		if _, err := resolvConf(bad, poddir.NetDefault, nil, ""); err == nil {
			t.Errorf("%+v: accepted", bad)
		}
	}
}

func TestHosts(t *testing.T) {
	got, err := hosts([]string{"10.0.0.5=db", "2001:db8::5=db6"}, "kite-1", []byte(defaultHosts))
	if err != nil {
		t.Fatal(err)
	}
	want := defaultHosts + "# Added by kite for this pod.\n127.0.1.1\tkite-1\n10.0.0.5\tdb\n2001:db8::5\tdb6\n"
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if got, _ := hosts(nil, "kite-1", []byte("127.0.0.1 localhost image-host")); !strings.HasPrefix(string(got), "127.0.0.1 localhost image-host\n# Added") {
		t.Errorf("a base without a final newline: %s", got)
	}
	for _, bad := range []string{"db", "10.0.0.5=", "x=db", "10.0.0.5=a b", "10.0.0.5=a\rb", "10.0.0.5=a#b", "fe80::1%x\n10.0.0.1 evil=y", "fe80::1%#=y"} {
		if _, err := hosts([]string{bad}, "kite-1", nil); err == nil {
			t.Errorf("--hosts-entry %q accepted", bad)
		}
	}
}

func TestHostsBase(t *testing.T) {
	host, image := []byte("host\n"), []byte("image\n")
	for _, c := range []struct {
		entries     []string
		mode        string
		image, want []byte
	}{
		{nil, poddir.NetDefault, image, image},
		{nil, poddir.NetDefault, nil, []byte(defaultHosts)},
		{nil, poddir.NetHost, image, host},
		{[]string{"host", "10.0.0.5=db"}, poddir.NetNone, image, host},
	} {
		if got := hostsBase(c.entries, c.mode, host, c.image); string(got) != string(c.want) {
			t.Errorf("%v, %s, image %q: %q, want %q", c.entries, c.mode, c.image, got, c.want)
		}
	}
}
