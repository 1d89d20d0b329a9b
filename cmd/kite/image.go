package main

import (
	"time"

	"github.com/urfave/cli/v2"
)

// defaultImageGrace is how long kite image gc keeps an unused image.
const defaultImageGrace = 24 * time.Hour

// imageCommand is `kite image`: its subcommands run in kite-image, which has the store.
func imageCommand() *cli.Command {
	format := &cli.StringFlag{Name: "format", Value: "table", Usage: "table or json"}
	noLegend := &cli.BoolFlag{Name: "no-legend", Usage: "omit the header line"}
	quiet := &cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print image IDs only"}
	// pass hands the subcommand to kite-image with the flags the user set.
	pass := func(verb string, flags ...string) cli.ActionFunc {
		return func(c *cli.Context) error {
			args := []string{"image", verb}
			for _, f := range flags {
				if !c.IsSet(f) {
					continue
				}
				if _, isBool := c.Value(f).(bool); isBool {
					args = append(args, "--"+f)
				} else {
					args = append(args, "--"+f, c.String(f))
				}
			}
			return execImageHelper(c, append(append(args, "--"), c.Args().Slice()...)...)
		}
	}
	return &cli.Command{
		Name:  "image",
		Usage: "list, inspect, remove, export and verify stored images",
		Description: `IMAGE may be an image reference as kite fetch takes it, a name as stored
(see kite image list), or a unique prefix of an image ID.`,
		Subcommands: []*cli.Command{
			{
				Name:         "list",
				Aliases:      []string{"ls"},
				Usage:        "list stored images: ID, names, digest, size, created, last used",
				Flags:        []cli.Flag{format, noLegend, quiet},
				OnUsageError: usageError,
				Action:       pass("list", "format", "no-legend", "quiet"),
			},
			{
				Name:         "inspect",
				Usage:        "print an image's manifest and config as stored, with its names and layers, as JSON",
				ArgsUsage:    "IMAGE",
				OnUsageError: usageError,
				Action:       pass("inspect"),
			},
			{
				Name:      "rm",
				Usage:     "remove images and the layers no other image uses",
				ArgsUsage: "IMAGE...",
				Description: `Removes each IMAGE and prints its ID. An image a running pod uses is not
removed.`,
				OnUsageError: usageError,
				Action:       pass("rm"),
			},
			{
				Name:  "gc",
				Usage: "remove images not used for a while, and layers no image uses",
				Description: `Removes the images that no pod refers to and that were neither fetched nor
run within the grace period, and the layers a killed fetch left behind.
Prints the IDs of the images it removed.`,
				Flags: []cli.Flag{
					&cli.DurationFlag{Name: "grace-period", Value: defaultImageGrace, Usage: "keep images used within this `DURATION`"},
				},
				OnUsageError: usageError,
				Action:       pass("gc", "grace-period"),
			},
			{
				Name:      "export",
				Usage:     "copy a stored image to an archive, a layout or a registry",
				ArgsUsage: "IMAGE DESTINATION",
				Description: `DESTINATION is oci-archive:PATH[:REF], docker-archive:PATH[:NAME],
oci:PATH[:REF] or docker://HOST/REPO:TAG.

Example:
   kite image export docker.io/library/busybox:latest oci-archive:busybox.tar`,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "authfile", Usage: "registry credentials `FILE`", EnvVars: []string{"REGISTRY_AUTH_FILE"}},
					&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress bars"},
					insecureFlag(),
				},
				OnUsageError: usageError,
				Action:       pass("export", "authfile", "quiet"),
			},
			{
				Name:      "verify",
				Usage:     "re-read stored layers and check them against their digests",
				ArgsUsage: "[IMAGE...]",
				Description: `Checks every stored image, or the IMAGEs given: each layer's files must
still make up the content its digest names. A damaged image is reported and
removed with the layers only it uses, so that the next fetch stores it again.
Exit status: 0 when nothing is damaged, 1 when damage was found, 125 on error.`,
				Flags:        []cli.Flag{format},
				OnUsageError: usageError,
				Action:       pass("verify", "format"),
			},
		},
	}
}
