package main

import (
	"github.com/urfave/cli/v2"
)

func trustCommand() *cli.Command {
	prefixFlags := []cli.Flag{
		&cli.StringFlag{Name: "prefix", Usage: "trust the key for images whose names start with `PREFIX`: a registry, a namespace or a repository (e.g. registry.example:5000/team)"},
		&cli.BoolFlag{Name: "root", Usage: "trust the key for every registry image"},
	}
	scope := func(c *cli.Context) []string {
		if c.Bool("root") {
			return []string{"--root"}
		}
		return []string{"--prefix", c.String("prefix")}
	}
	return &cli.Command{
		Name:      "trust",
		Usage:     "trust a key to sign registry images",
		ArgsUsage: "(--prefix PREFIX | --root) KEYFILE",
		Description: `kite fetches a registry image only when it carries a signature by a key you
trust for its name (or with --insecure-options=image). kite trust adds a key:
a cosign public key (cosign.pub, PEM), whose signatures registries keep as
sigstore attachments, or an OpenPGP public key. kite keeps a copy of the key
and writes the trust into its signature policy, a containers-policy.json(5)
file at $XDG_CONFIG_HOME/kite/policy.json that you may also edit by hand;
sigstore attachments are enabled in $XDG_CONFIG_HOME/kite/registries.d, which
kite reads instead of the containers registries.d once it exists.

Several keys trusted for one prefix are alternatives: a signature by any of
them is enough. The most specific prefix that matches an image decides.

Examples:
   kite trust --prefix registry.example:5000/team ./cosign.pub
   kite trust list
   kite trust rm --prefix registry.example:5000/team`,
		Flags:        prefixFlags,
		OnUsageError: usageError,
		Action: func(c *cli.Context) error {
			return execImageHelper(c, append(append([]string{"trust", "add"}, scope(c)...), c.Args().Slice()...)...)
		},
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "list the trusted prefixes and their keys",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "format", Value: "table", Usage: "table or json"},
					&cli.BoolFlag{Name: "no-legend", Usage: "omit the header line"},
				},
				OnUsageError: usageError,
				Action: func(c *cli.Context) error {
					args := []string{"trust", "list", "--format", c.String("format")}
					if c.Bool("no-legend") {
						args = append(args, "--no-legend")
					}
					return execImageHelper(c, append(args, c.Args().Slice()...)...)
				},
			},
			{
				Name:         "rm",
				Usage:        "stop trusting the keys of a prefix",
				ArgsUsage:    "(--prefix PREFIX | --root)",
				Flags:        prefixFlags,
				OnUsageError: usageError,
				Action: func(c *cli.Context) error {
					return execImageHelper(c, append(append([]string{"trust", "rm"}, scope(c)...), c.Args().Slice()...)...)
				},
			},
		},
	}
}
