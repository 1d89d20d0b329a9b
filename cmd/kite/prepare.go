package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/kite-runtime/kite/pkg/podcgroup"
	"github.com/kite-runtime/kite/pkg/poddir"
	"github.com/kite-runtime/kite/stage0/imageindex"
	"github.com/kite-runtime/kite/stage0/pods"
	"github.com/kite-runtime/kite/stage0/spec"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

// podFlags are the flags kite run and kite prepare add to the app's flags.
func podFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "name", Usage: "name the pod `NAME`: other commands take it in place of the UUID (unique among existing pods)"},
		&cli.StringFlag{Name: "uuid-file-save", Usage: "write the pod's UUID to `FILE`"},
		&cli.BoolFlag{Name: "rm", Usage: "remove the pod when it ends, whatever its exit status"},
	}
}

// createPod fetches the image when needed and writes the pod of kite run or kite prepare,
// returning it locked.
func createPod(c *cli.Context, prepare bool) (*pods.Locked, *specs.Spec, error) {
	image, appArgs, err := splitRunArgs(c.Args().Slice())
	if err != nil {
		return nil, nil, err
	}
	if name := c.String("name"); name != "" {
		if err := pods.ValidName(name); err != nil {
			return nil, nil, err
		}
	}
	fetch, err := newFetchRequest(c)
	if err != nil {
		return nil, nil, err
	}
	d := fetch.dir
	rec, err := fetch.storedImage(image)
	if err != nil {
		return nil, nil, err
	}
	if os.Geteuid() != 0 && imageindex.IsSingleMapping(rec.UIDMap) {
		fmt.Fprintln(os.Stderr, singleMappingWarning(d.Storage()))
	}
	id, err := pods.New()
	if err != nil {
		return nil, nil, err
	}
	opts, err := appOptions(c)
	if err != nil {
		return nil, nil, err
	}
	opts.Hostname = c.String("hostname")
	if opts.Hostname == "" {
		opts.Hostname = "kite-" + pods.ShortID(id)
	}
	if c.Args().Len() > 1 {
		opts.Args = appArgs
	}
	cfg, err := spec.Generate(rec, opts)
	if err != nil {
		return nil, nil, err
	}
	s := cfg.Spec
	filter, err := seccompFilter(fetch.helper, s.Linux.Seccomp, cfg.SeccompNames)
	if err != nil {
		return nil, nil, err
	}
	if !prepare {
		// Before the pod exists: limits this host cannot apply refuse the run, leaving nothing.
		// A prepared pod's limits are checked where it runs.
		if _, err := podcgroup.Find(s.Linux.Resources); err != nil {
			return nil, nil, err
		}
	}
	if c.Bool("tty") {
		if prepare {
			// run-prepared sizes it like the terminal it runs on.
			s.Process.Terminal = true
		} else if err := withTerminal(s, c.Bool("interactive")); err != nil {
			return nil, nil, err
		}
	}
	if n := c.Int("preserve-fds"); n != 0 {
		if prepare {
			return nil, nil, fmt.Errorf("--preserve-fds: give it to kite run-prepared, which passes the descriptors on")
		}
		if err := checkPreservedFDs(n); err != nil {
			return nil, nil, err
		}
		s.Annotations[poddir.PreserveFDsAnnotation] = strconv.Itoa(n)
	}
	var copyDir string
	if rec.Driver == "vfs" {
		if copyDir, err = fetch.helper.podCopy(id, rec.ID); err != nil {
			return nil, nil, err
		}
	}
	p, err := pods.Create(d, id, pods.Contents{
		ImageRef: image, Image: rec, CopyDir: copyDir, Spec: s, EmptyVolumes: cfg.EmptyVolumes, SeccompFilter: filter,
		Name: c.String("name"), Prepare: prepare, RemoveOnExit: c.Bool("rm"),
	})
	if err != nil {
		if copyDir != "" {
			fetch.helper.removePodCopy(id)
		}
		return nil, nil, err
	}
	if file := c.String("uuid-file-save"); file != "" {
		if err := poddir.WriteFileAtomic(file, []byte(id+"\n"), 0o644); err != nil {
			// The pod exists: say which, so that it can be removed.
			p.Close()
			return nil, nil, fmt.Errorf("--uuid-file-save: %w (pod %s was made; kite rm %s removes it)", err, id, id)
		}
	}
	return p, s, nil
}

func prepareCommand() *cli.Command {
	return &cli.Command{
		Name:      "prepare",
		Usage:     "fetch an image and write a pod for it, to run later with kite run-prepared",
		ArgsUsage: "IMAGE [-- ARGS...]",
		Description: `Does everything kite run does before the pod starts (fetch, verify, write the
pod) and prints the pod's UUID. kite run-prepared UUID starts it; kite gc
removes prepared pods nobody started after --expire-prepared (24h).

Takes every flag of kite run. --tty is sized and --interactive, --preserve-fds
are given when the pod runs (kite run-prepared).`,
		Flags:                  append(runFlags(), &cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only the UUID (prepare always does; accepted for scripts written for rkt)"}),
		OnUsageError:           usageError,
		UseShortOptionHandling: true,
		Action: func(c *cli.Context) error {
			if c.IsSet("interactive") {
				return fmt.Errorf("prepare: --interactive is a flag of kite run-prepared")
			}
			p, _, err := createPod(c, true)
			if err != nil {
				return err
			}
			defer p.Close()
			fmt.Println(p.UUID)
			return nil
		},
	}
}

func runPreparedCommand() *cli.Command {
	return &cli.Command{
		Name:      "run-prepared",
		Usage:     "run a pod kite prepare wrote",
		ArgsUsage: "POD",
		Description: `Runs the prepared pod POD (a UUID, a unique UUID prefix or the pod's name) in
this process, as kite run does: same signals, output and exit status.`,
		Flags: append(uuidFileFlags(),
			&cli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "give the app kite's stdin; without it the app reads /dev/null"},
			&cli.IntFlag{Name: "preserve-fds", Usage: "pass descriptors 3 to 3+`N`-1 of kite's caller on to the app"},
		),
		OnUsageError:           usageError,
		UseShortOptionHandling: true,
		Action:                 runPreparedAction,
	}
}

func runPreparedAction(c *cli.Context) error {
	stage1, err := libexecPath("kite-stage1")
	if err != nil {
		return err
	}
	d, err := dataDir(c)
	if err != nil {
		return err
	}
	found, err := podArg(c, d)
	if err != nil {
		return err
	}
	if found.State != pods.Prepared {
		return fmt.Errorf("pod %s is %s, not prepared: kite run-prepared runs pods kite prepare wrote", found.UUID, found.State)
	}
	p, err := pods.Lock(d, found)
	if err != nil {
		return err
	}
	if p.State != pods.Prepared {
		p.Close()
		return fmt.Errorf("pod %s is %s now, not prepared", p.UUID, p.State)
	}
	var s specs.Spec
	if err := poddir.ReadJSON(p.Dir, poddir.ConfigFile, &s); err != nil {
		p.Close()
		return err
	}
	// Limits this host cannot apply leave the pod prepared.
	if _, err := podcgroup.Find(s.Linux.Resources); err != nil {
		p.Close()
		return err
	}
	changed := false
	if s.Process.Terminal {
		if err := withTerminal(&s, c.Bool("interactive")); err != nil {
			p.Close()
			return err
		}
		changed = true
	}
	if n := c.Int("preserve-fds"); n != 0 {
		if err := checkPreservedFDs(n); err != nil {
			p.Close()
			return err
		}
		s.Annotations[poddir.PreserveFDsAnnotation] = strconv.Itoa(n)
		changed = true
	}
	if changed {
		if err := poddir.WriteJSON(p.Dir, poddir.ConfigFile, &s); err != nil {
			p.Close()
			return err
		}
	}
	if err := p.Move(d, poddir.RunDir); err != nil {
		p.Close()
		return err
	}
	return startPod(stage1, p, &s, c.Bool("interactive"))
}

// stdinFromDevNull makes /dev/null the process's stdin.
func stdinFromDevNull() error {
	f, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Dup3(int(f.Fd()), 0, 0); err != nil {
		return fmt.Errorf("make /dev/null the app's stdin: %w", os.NewSyscallError("dup3", err))
	}
	return nil
}
