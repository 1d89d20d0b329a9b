// Command mkimage writes kite's standard test images (busybox, multilayer, user; see
// tests/imagebuild) as one OCI image layout and optionally an oci-archive, offline and without
// container tooling. It takes an already-built probe so it never runs the Go toolchain itself.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kite-runtime/kite/tests/imagebuild"
)

// errUsage marks errors that are the caller's invocation, not the build.
var errUsage = errors.New("usage")

func main() {
	err := run(os.Args[1:], os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	case err != nil:
		fmt.Fprintf(os.Stderr, "mkimage: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mkimage -probe PATH -out DIR [-archive FILE] [-busybox PATH]")
		fs.PrintDefaults()
	}
	probe := fs.String("probe", "", "the probe binary to put at /usr/bin/probe (CGO_ENABLED=0 go build -o probe ./tests/probe)")
	out := fs.String("out", "", "OCI image layout directory to write; an existing layout there is replaced")
	archive := fs.String("archive", "", "also write the layout as an oci-archive tar to this file")
	busybox := fs.String("busybox", imagebuild.DefaultBusybox, "static busybox to copy into the images")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	switch {
	case fs.NArg() > 0:
		return usage(fs, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	case *probe == "":
		return usage(fs, "-probe is required")
	case *out == "":
		return usage(fs, "-out is required")
	}

	images, err := imagebuild.StandardImages(*busybox, *probe)
	if err != nil {
		return err
	}
	if err := imagebuild.ReplaceLayout(*out, images...); err != nil {
		return err
	}
	if *archive != "" {
		if err := imagebuild.WriteArchive(*out, *archive); err != nil {
			return err
		}
	}
	tags := make([]string, len(images))
	for i, img := range images {
		tags[i] = img.Tag
	}
	fmt.Fprintf(stderr, "mkimage: wrote %s to %s\n", strings.Join(tags, ", "), *out)
	return nil
}

func usage(fs *flag.FlagSet, msg string) error {
	fmt.Fprintf(fs.Output(), "mkimage: %s\n", msg)
	fs.Usage()
	return errUsage
}
