// Sizing GOMAXPROCS from the cgroup at start, and again every second, is work that kite's
// short-lived or idle processes never use.

//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0

// kite runs containers as a plain user, without a daemon: each command is a short pipeline owned
// by the process the caller started.
package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/kite-runtime/kite/pkg/exitcode"
	"github.com/kite-runtime/kite/pkg/phase"
	"github.com/kite-runtime/kite/stage0/datadir"
	"github.com/urfave/cli/v2"
)

func main() {
	// kite runs for milliseconds (or execs into stage1): collecting garbage four times less
	// often saves more time than the few MiB it may cost (kite list of 1000 pods: 10%).
	debug.SetGCPercent(400)
	phase.Mark("kite", "main")
	if err := refuseSetuid(); err != nil {
		fmt.Fprintln(os.Stderr, "kite:", err)
		os.Exit(exitcode.Failed)
	}
	app := newApp()
	if err := app.Run(ociArgs(os.Args)); err != nil {
		if !errors.Is(err, errSilent) {
			fmt.Fprintln(os.Stderr, "kite:", err)
		}
		code := exitcode.Failed
		var ce *exitcode.CodedError
		if errors.As(err, &ce) {
			code = ce.Code
		}
		os.Exit(code)
	}
}

// refuseSetuid stops kite from running with privileges it was not started with: a setuid kite
// would let any user run pods as the file's owner.
func refuseSetuid() error {
	if os.Geteuid() != os.Getuid() || os.Getegid() != os.Getgid() {
		return errors.New("refusing to run setuid or setgid: kite needs no privileges; remove the bit with chmod u-s,g-s")
	}
	return nil
}

var globalFlags = []cli.Flag{
	&cli.StringFlag{Name: "dir", Usage: "data directory: image store and pods (default: $XDG_DATA_HOME/kite, i.e. ~/.local/share/kite)", EnvVars: []string{"KITE_DIR"}},
	&cli.BoolFlag{Name: "debug", Usage: "log what kite does to stderr"},
	&cli.StringFlag{Name: "storage-driver", Usage: "graph driver of a new image store: overlay or vfs (default: overlay where the kernel lets kite mount it, else vfs); a store keeps its driver", EnvVars: []string{"KITE_STORAGE_DRIVER"}},
	insecureFlag(),
}

// docsCommands are commands of a build with the kitedocs tag only (man.go).
var docsCommands []*cli.Command

func newApp() *cli.App {
	return &cli.App{
		Name:  "kite",
		Usage: "run containers as a plain user, without a daemon",
		Description: `kite fetches an image into a local store, prepares a pod directory and execs
the pod in the process you started: the pod is your shell's or systemd's child,
its exit status is kite's, and nothing of kite keeps running after it.

Example:
   kite run oci:./layout:app -- sh -c 'echo hi'
   kite fetch docker://registry.example:5000/team/app:1.2`,
		Flags: globalFlags,
		Commands: append(append([]*cli.Command{
			runCommand(), prepareCommand(), runPreparedCommand(), listCommand(), statusCommand(), stopCommand(),
			rmCommand(), gcCommand(), enterCommand(), catManifestCommand(), fetchCommand(), imageCommand(), trustCommand(),
			generateCommand(), completionCommand(), completeCommand(), ociCommand(),
		}, append(loginCommands(), versionCommand())...), docsCommands...),
		DisableSliceFlagSeparator: true,
		HideVersion:               true,
		Before: func(c *cli.Context) error {
			level := slog.LevelWarn
			if c.Bool("debug") {
				level = slog.LevelDebug
				phase.Enable()
				phase.Mark("kite", "flags parsed")
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
			return nil
		},
		OnUsageError: usageError,
		ExitErrHandler: func(*cli.Context, error) {
			// main picks the exit status; urfave/cli must not exit on its own.
		},
	}
}

// usageError makes every command line mistake end in exit status 125 with one clear line.
func usageError(c *cli.Context, err error, _ bool) error {
	return fmt.Errorf("%w (see 'kite %s--help')", err, commandPrefix(c))
}

func commandPrefix(c *cli.Context) string {
	if c.Command != nil && c.Command.Name != "" {
		return c.Command.Name + " "
	}
	return ""
}

func dataDir(c *cli.Context) (datadir.Dir, error) {
	root := c.String("dir")
	if root == "" {
		var err error
		if root, err = datadir.Default(); err != nil {
			return datadir.Dir{}, err
		}
	}
	return datadir.New(root)
}

// insecureValues are the checks --insecure-options can turn off.
var insecureValues = []string{"image", "tls", "http", "capabilities", "paths", "seccomp"}

func insecureFlag() cli.Flag {
	return &cli.StringFlag{
		Name: "insecure-options",
		Usage: "comma-separated checks to skip: image (use images without verifying their signatures), " +
			"tls and http (let registries answer over plain HTTP or with certificates that do not verify), " +
			"capabilities (keep every capability of the pod's user namespace), paths (do not mask or write-protect the kernel's /proc and /sys files), " +
			"seccomp (run the app without a system call filter)",
	}
}

// insecureOptions merges the global and the command's --insecure-options and rejects unknown values.
func insecureOptions(c *cli.Context) (map[string]bool, error) {
	set := map[string]bool{}
	for _, ctx := range c.Lineage() {
		for _, v := range strings.Split(ctx.String("insecure-options"), ",") {
			v = strings.TrimSpace(v)
			if v == "" {
				continue
			}
			if !slices.Contains(insecureValues, v) {
				return nil, fmt.Errorf("--insecure-options: unknown value %q (known: %s)", v, strings.Join(insecureValues, ", "))
			}
			set[v] = true
		}
	}
	return set, nil
}
