package main

import (
	"github.com/urfave/cli/v2"
)

func loginCommands() []*cli.Command {
	authFile := &cli.StringFlag{Name: "authfile", Usage: "credentials `FILE` (default: $REGISTRY_AUTH_FILE, else the containers auth.json podman uses)", EnvVars: []string{"REGISTRY_AUTH_FILE"}}
	return []*cli.Command{
		{
			Name:      "login",
			Usage:     "check and store credentials for a registry",
			ArgsUsage: "REGISTRY",
			Description: `Checks the user name and password with REGISTRY (host[:port]) and stores them
in the containers auth file that podman login writes and kite fetch reads
($XDG_RUNTIME_DIR/containers/auth.json unless --authfile says otherwise).
kite prompts for what is missing only when stdin is a terminal.

Example:
   echo "$TOKEN" | kite login --username ci --password-stdin registry.example:5000`,
			Flags: []cli.Flag{
				authFile,
				&cli.StringFlag{Name: "username", Aliases: []string{"u"}, Usage: "user name"},
				&cli.BoolFlag{Name: "password-stdin", Usage: "read the password from stdin"},
				insecureFlag(),
			},
			OnUsageError: usageError,
			Action: func(c *cli.Context) error {
				args := []string{"login"}
				if c.IsSet("authfile") {
					args = append(args, "--authfile", c.String("authfile"))
				}
				if c.IsSet("username") {
					args = append(args, "--username", c.String("username"))
				}
				if c.Bool("password-stdin") {
					args = append(args, "--password-stdin")
				}
				return execImageHelper(c, append(append(args, "--"), c.Args().Slice()...)...)
			},
		},
		{
			Name:         "logout",
			Usage:        "remove the stored credentials for a registry",
			ArgsUsage:    "REGISTRY | --all",
			Flags:        []cli.Flag{authFile, &cli.BoolFlag{Name: "all", Usage: "remove the credentials of every registry"}},
			OnUsageError: usageError,
			Action: func(c *cli.Context) error {
				args := []string{"logout"}
				if c.IsSet("authfile") {
					args = append(args, "--authfile", c.String("authfile"))
				}
				if c.Bool("all") {
					args = append(args, "--all")
				}
				return execImageHelper(c, append(append(args, "--"), c.Args().Slice()...)...)
			},
		},
	}
}
