//go:build kitedocs

package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// A build with the kitedocs tag (make man) adds `kite __man`, which prints kite's man page,
// made from the same definitions as --help. kite itself is built without urfave/cli's document
// generators (urfave_cli_no_docs), which it has no use for at run time.
func init() {
	docsCommands = append(docsCommands, &cli.Command{
		Name:   "__man",
		Hidden: true,
		Action: func(c *cli.Context) error {
			page, err := c.App.ToManWithSection(1)
			if err != nil {
				return err
			}
			_, err = fmt.Print(page)
			return err
		},
	})
}
