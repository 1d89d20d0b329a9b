// Sizing GOMAXPROCS from the cgroup at start, and again every second, is work that a helper
// that runs for a moment never uses.

//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0

// Command kite-image is stage0's image helper: everything that needs the image libraries
// (go.podman.io/image and go.podman.io/storage), kept out of kite so that `kite run` of a stored
// image does not pay for their initialisation. kite runs it as a child to fetch images, change the
// store or the user's trust, and reads machine output from its stdout:
//
//	kite-image [--dir DATAROOT] [--debug] [--insecure-options LIST] ACTION [FLAGS] [ARGS]
//
// Each action's flags and output are documented in its file. Actions that change or read the
// store run again inside the store's user namespace (imagestore.RunInUserNamespace). On failure
// kite-image prints "kite: <error>" on stderr and exits 125.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kite-runtime/kite/pkg/exitcode"
	"github.com/kite-runtime/kite/stage0/datadir"
	"github.com/kite-runtime/kite/stage0/imagestore"
	"github.com/sirupsen/logrus"
	"go.podman.io/storage/pkg/reexec"
)

func main() {
	// storage's reexec handlers must run before anything else. RunInUserNamespace starts this
	// binary again under an argv[0] that no handler claims, so that copy falls through into
	// main; reexec.Command also refuses to start anything unless Init has run.
	if reexec.Init() {
		return
	}
	os.Exit(run(os.Args[1:]))
}

// globals are kite-image's global flags.
type globals struct {
	dir      datadir.Dir
	debug    bool
	insecure imagestore.InsecureOptions
	// driver is the graph driver asked for with --storage-driver; "" lets kite choose.
	driver string
}

// action is one kite-image command.
type action interface {
	// parse reads the action's flags (already defined on fs by flags) and arguments.
	flags(fs *flag.FlagSet)
	parse(args []string) error
	// needsStore says whether the action runs inside the store's user namespace.
	needsStore() bool
	run(ctx context.Context, g *globals) error
}

// outsideFirst is an action that may finish without the store, e.g. a fetch of stored images.
type outsideFirst interface {
	runOutside(ctx context.Context, g *globals) (done bool, err error)
}

var actions = map[string]func() action{
	"fetch":     func() action { return &fetchAction{} },
	"rootfs":    func() action { return &rootfsAction{} },
	"rm-rootfs": func() action { return &rootfsAction{remove: true} },
	"rm-pods":   func() action { return &rmPodsAction{} },
	"seccomp":   func() action { return &seccompAction{} },
	"trust":     func() action { return &trustAction{} },
	"image":     func() action { return &imageAction{} },
	"login":     func() action { return &loginAction{} },
	"logout":    func() action { return &loginAction{logout: true} },
}

func run(args []string) int {
	start := time.Now()
	// kite-image inside its user namespace is uid 0 there: the defaults derived from the
	// password database would be root's. Settle HOME first so both halves agree.
	settleHome()
	g, name, act, err := parse(args)
	if err != nil {
		return fail(err)
	}
	setUpLogging(g.debug)
	settleRuntimeDir(g.dir)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	slog.Debug("kite-image started", "action", name, "inUserNamespace", imagestore.InUserNamespace(), "pid", os.Getpid())
	if act.needsStore() && !imagestore.InUserNamespace() {
		if o, ok := act.(outsideFirst); ok {
			if done, err := o.runOutside(ctx, g); done || err != nil {
				return fail(err)
			}
		}
		code, err := imagestore.RunInUserNamespace()
		if err != nil {
			return fail(err)
		}
		slog.Debug("kite-image done", "action", name, "elapsed", time.Since(start))
		return code
	}
	return fail(act.run(ctx, g))
}

// withStore runs f on the store, open for f alone; an error closing it counts when f succeeded.
func withStore(g *globals, f func(*imagestore.Store) error) error {
	st, err := imagestore.Open(g.dir, g.driver)
	if err != nil {
		return err
	}
	err = f(st)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	return err
}

// fail prints err, if any, and returns the exit status for it.
func fail(err error) int {
	if err == nil {
		return 0
	}
	fmt.Fprintf(os.Stderr, "kite: %v\n", err)
	var coded *exitcode.CodedError
	if errors.As(err, &coded) {
		return coded.Code
	}
	return exitcode.Failed
}

func parse(args []string) (*globals, string, action, error) {
	var g globals
	fs := newFlagSet("kite-image")
	dir := fs.String("dir", "", "data root")
	fs.BoolVar(&g.debug, "debug", false, "debug output")
	insecure := fs.String("insecure-options", "", "checks to skip")
	fs.StringVar(&g.driver, "storage-driver", "", "graph driver of a new store")
	if err := fs.Parse(args); err != nil {
		return nil, "", nil, usageError(err)
	}
	if g.driver != "" && !slices.Contains(imagestore.Drivers, g.driver) {
		return nil, "", nil, fmt.Errorf("--storage-driver: unknown driver %q (valid: %s)", g.driver, strings.Join(imagestore.Drivers, ", "))
	}
	var err error
	if g.insecure, err = imagestore.ParseInsecureOptions(*insecure); err != nil {
		return nil, "", nil, err
	}
	root := *dir
	if root == "" {
		if root, err = datadir.Default(); err != nil {
			return nil, "", nil, err
		}
	}
	if g.dir, err = datadir.New(root); err != nil {
		return nil, "", nil, err
	}
	args = fs.Args()
	if len(args) == 0 {
		return nil, "", nil, usageError(errors.New("no action"))
	}
	newAction, ok := actions[args[0]]
	if !ok {
		return nil, "", nil, usageError(fmt.Errorf("unknown action %q", args[0]))
	}
	act := newAction()
	sub := newFlagSet(args[0])
	act.flags(sub)
	if err := sub.Parse(args[1:]); err != nil {
		return nil, "", nil, usageError(fmt.Errorf("%s: %w", args[0], err))
	}
	if err := act.parse(sub.Args()); err != nil {
		return nil, "", nil, err
	}
	return &g, args[0], act, nil
}

func usageError(err error) error {
	names := make([]string, 0, len(actions))
	for n := range actions {
		names = append(names, n)
	}
	slices.Sort(names)
	return fmt.Errorf("parse arguments: %w; usage: kite-image [--dir DATAROOT] [--debug] [--insecure-options LIST] %s [FLAGS] [ARGS]",
		err, strings.Join(names, "|"))
}

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func setUpLogging(debug bool) {
	// storage and image log through logrus; kite reports their errors itself, once, so their
	// log is for --debug only.
	logrus.SetOutput(io.Discard)
	level := slog.LevelWarn
	if debug {
		logrus.SetOutput(os.Stderr)
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

// settleRuntimeDir points XDG_RUNTIME_DIR at kite's private runtime directory when the environment
// has none: containers/storage would otherwise make one of its own in /tmp or /run/user, and kite
// writes nothing outside its own directories.
func settleRuntimeDir(d datadir.Dir) {
	if d.RuntimeDir() == d.PrivateRuntimeDir() {
		// Not created here: the store creates its run root below it when it opens.
		os.Setenv("XDG_RUNTIME_DIR", d.PrivateRuntimeDir())
	}
}
