package main

import (
	"io"
	"slices"

	"github.com/kite-runtime/kite/pkg/poddir"
	"github.com/kite-runtime/kite/stage0/imageindex"
	"github.com/kite-runtime/kite/stage0/podnet"
	"github.com/kite-runtime/kite/stage0/rootview"
	"github.com/urfave/cli/v2"
)

// networkFlags are the flags of the pod's network.
func networkFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "net", Value: poddir.NetDefault, Usage: "the pod's network `MODE`: default (its own, with outbound access and --port through pasta, or slirp4netns without pasta), pasta or slirp4netns (default through that one), host (the caller's) or none (loopback only)"},
		&cli.StringSliceFlag{Name: "port", Usage: "publish a pod port on the host: `[HOSTIP:]HOSTPORT:PODPORT[/tcp|udp]`, or NAME:HOSTPORT for an exposed port of the image (80-tcp:8080); repeatable"},
		&cli.StringSliceFlag{Name: "p", Usage: "same as --port `PORT`"},
		&cli.StringSliceFlag{Name: "dns", Usage: "nameserver `IP` of the pod's /etc/resolv.conf (repeatable); host copies the host's file, none keeps the image's"},
		&cli.StringSliceFlag{Name: "dns-search", Usage: "search `DOMAIN` of /etc/resolv.conf (repeatable)"},
		&cli.StringSliceFlag{Name: "dns-opt", Usage: "`OPTION` of /etc/resolv.conf (ndots:2; repeatable)"},
		&cli.StringFlag{Name: "dns-domain", Usage: "`DOMAIN` of /etc/resolv.conf"},
		&cli.StringSliceFlag{Name: "hosts-entry", Usage: "add `IP=HOSTNAME` to the pod's /etc/hosts (repeatable); host starts from the host's /etc/hosts"},
	}
}

// podNetwork makes the pod's network from c's flags, for a pod whose first app runs rec.
func podNetwork(c *cli.Context, rec *imageindex.Record, hostname string) (*podnet.Plan, error) {
	var exposed []string
	for p := range rec.Config.ExposedPorts {
		exposed = append(exposed, p)
	}
	slices.Sort(exposed)
	view := make(rootview.View, len(rec.Layers))
	for i, l := range rec.Layers {
		view[i] = l.Dir
	}
	image := func(name string) []byte {
		f, err := view.Open(name)
		if err != nil {
			return nil
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, 1<<20))
		if err != nil {
			return nil
		}
		return data
	}
	return podnet.New(podnet.Options{
		Mode:  c.String("net"),
		Ports: append(c.StringSlice("port"), c.StringSlice("p")...),
		DNS: podnet.DNS{
			Servers: c.StringSlice("dns"), Search: c.StringSlice("dns-search"),
			Options: c.StringSlice("dns-opt"), Domain: c.String("dns-domain"),
		},
		HostsEntries: c.StringSlice("hosts-entry"),
		Hostname:     hostname,
	}, exposed, image)
}
