package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/kite-runtime/kite/stage0/pods"
	"github.com/urfave/cli/v2"
)

func generateCommand() *cli.Command {
	return &cli.Command{
		Name:  "generate",
		Usage: "write configuration for other programs",
		Subcommands: []*cli.Command{{
			Name:      "systemd",
			Usage:     "print a systemd unit that runs a pod",
			ArgsUsage: "[RUN FLAGS] IMAGE [-- ARGS...]",
			Description: `Prints a service unit whose ExecStart is kite run with the flags and image
given, as this kite would run them. Install it as a user unit:

   kite generate systemd --name web IMAGE > ~/.config/systemd/user/kite-web.service
   systemctl --user daemon-reload && systemctl --user enable --now kite-web

or, with --system, as a system unit (add User= to run it rootless as that user)
in /etc/systemd/system. The pod is named --name (default: the image's name),
saves its UUID in the unit's runtime directory for ExecStop, is removed when
it ends (--rm), and tells systemd it is ready once its apps run
(--sd-notify=started), or when the app says so (--sd-notify=container, for
apps that speak sd_notify). Restart=on-failure restarts it when it fails.`,
			Flags: append(runFlags(),
				&cli.BoolFlag{Name: "system", Usage: "a system unit (WantedBy=multi-user.target) rather than a user unit (WantedBy=default.target)"},
				&cli.StringFlag{Name: "description", Usage: "the unit's `TEXT` Description"},
			),
			OnUsageError:           usageError,
			UseShortOptionHandling: true,
			SkipFlagParsing:        false,
			Action:                 generateSystemdAction,
		}},
	}
}

// unitRunFlags are run flags the unit sets itself.
var unitRunFlags = []string{"rm", "uuid-file-save", "name", "sd-notify", "tty", "t", "interactive", "i"}

func generateSystemdAction(c *cli.Context) error {
	if !c.Args().Present() {
		return errors.New("generate systemd: no image given: kite generate systemd [RUN FLAGS] IMAGE [-- ARGS...]")
	}
	for _, f := range []string{"tty", "interactive"} {
		if c.Bool(f) {
			return fmt.Errorf("generate systemd: --%s: a service has no terminal", f)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	image := c.Args().First()
	name := c.String("name")
	if name == "" {
		name = unitName(image)
	}
	if err := pods.ValidName(name); err != nil {
		return fmt.Errorf("generate systemd: %w; give one with --name", err)
	}
	notify := c.String("sd-notify")
	if notify == "" {
		notify = notifyStarted
	}
	if notify != notifyStarted && notify != notifyContainer {
		return fmt.Errorf("generate systemd: --sd-notify=%q: a unit uses started or container", notify)
	}
	uuidFile := "%t/kite-" + name + ".uuid"
	global := globalArgs(c)
	start := append([]string{self}, global...)
	start = append(start, "run", "--rm", "--name", name, "--uuid-file-save", uuidFile, "--sd-notify="+notify)
	start = append(start, setFlags(c, append(unitRunFlags, "system", "description"))...)
	start = append(start, c.Args().Slice()...)
	stop := append(append([]string{self}, global...), "stop", "--uuid-file", uuidFile)
	cleanup := append(append([]string{self}, global...), "rm", name)
	description := c.String("description")
	if description == "" {
		description = "kite pod " + name + " (" + image + ")"
	}
	wanted := "default.target"
	if c.Bool("system") {
		wanted = "multi-user.target"
	}
	fmt.Printf(`# Written by kite generate systemd.
[Unit]
Description=%s
Wants=network-online.target
After=network-online.target

[Service]
Type=notify
NotifyAccess=main
# A pod of this name left by a kite that was killed.
ExecStartPre=-%s
ExecStart=%s
ExecStop=%s
KillMode=mixed
# kite run exits 128+15 when ExecStop's SIGTERM ends the app: a clean stop.
SuccessExitStatus=143
Restart=on-failure
TimeoutStopSec=30

[Install]
WantedBy=%s
`, escapeUnitText(description), unitCommand(cleanup, ""), unitCommand(start, uuidFile), unitCommand(stop, uuidFile), wanted)
	return nil
}

// unitCommand writes args as a systemd command line (systemd.service(5), "Command lines"): each
// argument quoted when it needs to be, $ and % doubled so that systemd takes them as they are,
// but for the argument specifier, which holds a specifier (%t) on purpose.
func unitCommand(args []string, specifier string) string {
	var out []string
	for _, a := range args {
		if a != specifier {
			a = strings.ReplaceAll(a, "%", "%%")
		}
		a = strings.ReplaceAll(a, "$", "$$")
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\;") {
			a = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`).Replace(a) + `"`
		}
		out = append(out, a)
	}
	return strings.Join(out, " ")
}

// escapeUnitText makes s one line of a unit's text setting, with its % taken as they are.
func escapeUnitText(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\n", " "), "%", "%%")
}

// unitName is a pod name made of an image reference's last part.
func unitName(image string) string {
	name := image
	if i := strings.LastIndexAny(name, "/:"); i >= 0 && i < len(name)-1 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '-'
	}, name)
	return strings.Trim(name, "-.")
}

// globalArgs are the global flags kite was given (before the command) that the unit's commands
// need; those given to the command itself are setFlags'. c is generate systemd's context: its
// parent, generate's, defines none of these flags, so its lookups reach kite's global ones.
func globalArgs(c *cli.Context) []string {
	parent := c.Lineage()[1]
	var out []string
	for _, f := range []string{"dir", "storage-driver", "insecure-options"} {
		if parent.IsSet(f) && parent.String(f) != "" {
			out = append(out, "--"+f+"="+parent.String(f))
		}
	}
	return out
}

// setFlags lists the run flags the user gave, as --NAME=VALUE (-N=VALUE for a one-letter
// name), leaving out skip.
func setFlags(c *cli.Context, skip []string) []string {
	var out []string
	for _, f := range c.Command.Flags {
		name := f.Names()[0]
		if !c.IsSet(name) || slices.Contains(skip, name) {
			continue
		}
		flag := "--" + name + "="
		if len(name) == 1 {
			flag = "-" + name + "="
		}
		switch f.(type) {
		case *cli.StringSliceFlag:
			for _, item := range c.StringSlice(name) {
				out = append(out, flag+item)
			}
		case *cli.BoolFlag:
			out = append(out, fmt.Sprintf("%s%t", flag, c.Bool(name)))
		default:
			out = append(out, fmt.Sprintf("%s%v", flag, c.Value(name)))
		}
	}
	return out
}
