package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"
)

// Version is kite's release version.
const Version = "0.1.0-dev"

type versionInfo struct {
	Version    string `json:"version"`
	Commit     string `json:"commit,omitempty"`
	GoVersion  string `json:"goVersion"`
	OCIVersion string `json:"ociVersion"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print kite's version",
		Flags: []cli.Flag{&cli.StringFlag{Name: "format", Usage: "output format: text or json", Value: "text"}},
		Action: func(c *cli.Context) error {
			v := versionInfo{Version: Version, GoVersion: runtime.Version(), OCIVersion: specs.Version, OS: runtime.GOOS, Arch: runtime.GOARCH}
			if bi, ok := debug.ReadBuildInfo(); ok {
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" {
						v.Commit = s.Value
					}
				}
			}
			switch c.String("format") {
			case "json":
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(v)
			case "text":
				fmt.Printf("kite version %s\ncommit: %s\ngo: %s\noci runtime-spec: %s\n", v.Version, v.Commit, v.GoVersion, v.OCIVersion)
				return nil
			default:
				return fmt.Errorf("--format: unknown format %q (text or json)", c.String("format"))
			}
		},
	}
}
