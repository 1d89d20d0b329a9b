// Command kite-image is stage0's image helper: everything that needs the image libraries
// (go.podman.io/image and go.podman.io/storage), kept out of kite so that `kite run` of a stored
// image does not pay for their initialisation. kite runs it as a child only to change the store,
// and reads its machine output from stdout:
//
//	kite-image [--dir DATAROOT] [--debug] [--insecure-options LIST] fetch IMAGEREF
//	    stores the image and prints its imageindex.Record as one line of JSON
//	kite-image [--dir DATAROOT] [--debug] rootfs --pod UUID IMAGE-ID
//	    (vfs stores) creates the pod's root filesystem and prints its directory
//	kite-image [--dir DATAROOT] [--debug] rm-rootfs --pod UUID
//	    (vfs stores) removes it
//
// On failure it prints "kite: <error>" on stderr and exits 125.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/kite-runtime/kite/pkg/exitcode"
	"github.com/kite-runtime/kite/stage0/datadir"
	"github.com/kite-runtime/kite/stage0/imagestore"
	"github.com/sirupsen/logrus"
	"go.podman.io/storage/pkg/reexec"
	"golang.org/x/sys/unix"
)

const usage = "usage: kite-image [--dir DATAROOT] [--debug] [--insecure-options LIST] fetch IMAGEREF | rootfs --pod UUID IMAGE-ID | rm-rootfs --pod UUID"

func main() {
	// storage's reexec handlers must run before anything else. RunInUserNamespace starts this
	// binary again under an argv[0] that no handler claims, so that copy falls through into
	// main; reexec.Command also refuses to start anything unless Init has run.
	if reexec.Init() {
		return
	}
	os.Exit(run(os.Args[1:]))
}

type command struct {
	dir      datadir.Dir
	debug    bool
	insecure imagestore.InsecureOptions
	action   string // fetch, rootfs or rm-rootfs
	imageRef string // fetch
	pod      string // rootfs, rm-rootfs
	imageID  string // rootfs
}

func run(args []string) int {
	start := time.Now()
	// kite-image inside its user namespace is uid 0 there: the defaults derived from the
	// password database would be root's. Settle HOME first so both halves agree.
	settleHome()
	cmd, err := parse(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kite: %v\n", err)
		return exitcode.Failed
	}
	setUpLogging(cmd.debug)
	if err := settleRuntimeDir(cmd.dir); err != nil {
		fmt.Fprintf(os.Stderr, "kite: %v\n", err)
		return exitcode.Failed
	}
	slog.Debug("kite-image started", "inUserNamespace", imagestore.InUserNamespace(), "pid", os.Getpid())
	if !imagestore.InUserNamespace() {
		code, err := imagestore.RunInUserNamespace()
		if err != nil {
			fmt.Fprintf(os.Stderr, "kite: %v\n", err)
			return exitcode.Failed
		}
		slog.Debug("kite-image done", "action", cmd.action, "elapsed", time.Since(start))
		return code
	}
	if err := cmd.execute(); err != nil {
		fmt.Fprintf(os.Stderr, "kite: %v\n", err)
		return exitcode.Failed
	}
	return 0
}

func parse(args []string) (*command, error) {
	var c command
	fs := newFlagSet("kite-image")
	dir := fs.String("dir", "", "data root")
	fs.BoolVar(&c.debug, "debug", false, "debug output")
	insecure := fs.String("insecure-options", "", "checks to skip")
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("parse arguments: %w; %s", err, usage)
	}
	var err error
	if c.insecure, err = imagestore.ParseInsecureOptions(*insecure); err != nil {
		return nil, err
	}
	root := *dir
	if root == "" {
		if root, err = datadir.Default(); err != nil {
			return nil, err
		}
	}
	if c.dir, err = datadir.New(root); err != nil {
		return nil, err
	}
	args = fs.Args()
	if len(args) == 0 {
		return nil, fmt.Errorf("parse arguments: no command; %s", usage)
	}
	c.action, args = args[0], args[1:]
	switch c.action {
	case "fetch":
		if len(args) != 1 {
			return nil, fmt.Errorf("parse arguments: fetch takes one image reference; %s", usage)
		}
		c.imageRef = args[0]
		// Refuse a bad reference before creating a user namespace for it.
		if _, err := imagestore.ParseReference(c.imageRef); err != nil {
			return nil, err
		}
	case "rootfs", "rm-rootfs":
		sub := newFlagSet(c.action)
		sub.StringVar(&c.pod, "pod", "", "pod UUID")
		if err := sub.Parse(args); err != nil {
			return nil, fmt.Errorf("parse arguments: %w; %s", err, usage)
		}
		want := map[string]int{"rootfs": 1, "rm-rootfs": 0}[c.action]
		if c.pod == "" || sub.NArg() != want {
			return nil, fmt.Errorf("parse arguments: wrong arguments for %s; %s", c.action, usage)
		}
		if want == 1 {
			c.imageID = sub.Arg(0)
		}
	default:
		return nil, fmt.Errorf("parse arguments: unknown command %q; %s", c.action, usage)
	}
	return &c, nil
}

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// execute runs the command inside the store's user namespace.
func (c *command) execute() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	switch c.action {
	case "fetch":
		return c.fetch(ctx)
	case "rootfs":
		st, err := imagestore.Open(c.dir)
		if err != nil {
			return err
		}
		dir, err := st.CreateRootfs(c.pod, c.imageID)
		if cerr := st.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		_, err = fmt.Println(dir)
		return err
	case "rm-rootfs":
		st, err := imagestore.Open(c.dir)
		if err != nil {
			return err
		}
		err = st.RemoveRootfs(c.pod)
		if cerr := st.Close(); err == nil {
			err = cerr
		}
		return err
	}
	return fmt.Errorf("unknown command %q", c.action)
}

func (c *command) fetch(ctx context.Context) error {
	policyPath, err := datadir.PolicyFile()
	if err != nil && !c.insecure.Image {
		return err
	}
	policy, err := imagestore.LoadPolicy(c.insecure, policyPath)
	if err != nil {
		return err
	}
	opts := imagestore.FetchOptions{Policy: policy}
	if isTerminal(os.Stderr) {
		opts.Progress = os.Stderr
	}
	rec, err := imagestore.Fetch(ctx, c.dir, c.imageRef, opts)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(rec)
}

func setUpLogging(debug bool) {
	// storage and image log through logrus; kite reports their errors itself.
	logrus.SetOutput(os.Stderr)
	logrus.SetLevel(logrus.ErrorLevel)
	level := slog.LevelWarn
	if debug {
		logrus.SetLevel(logrus.DebugLevel)
		level = slog.LevelDebug
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
}

// settleHome sets HOME from the password database when the environment has none.
func settleHome() {
	if filepath.IsAbs(os.Getenv("HOME")) || imagestore.InUserNamespace() {
		return
	}
	if u, err := user.LookupId(strconv.Itoa(os.Getuid())); err == nil && filepath.IsAbs(u.HomeDir) {
		os.Setenv("HOME", u.HomeDir)
	}
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// settleRuntimeDir points XDG_RUNTIME_DIR at kite's private runtime directory when the environment
// has none: containers/storage would otherwise make one of its own in /tmp or /run/user, and kite
// writes nothing outside its own directories.
func settleRuntimeDir(d datadir.Dir) error {
	if d.RuntimeDir() != d.PrivateRuntimeDir() {
		return nil
	}
	dir := d.PrivateRuntimeDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create the runtime directory: %w", err)
	}
	return os.Setenv("XDG_RUNTIME_DIR", dir)
}
