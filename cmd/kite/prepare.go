package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/kite-runtime/kite/pkg/phase"
	"github.com/kite-runtime/kite/pkg/podcgroup"
	"github.com/kite-runtime/kite/pkg/poddir"
	"github.com/kite-runtime/kite/stage0/imageindex"
	"github.com/kite-runtime/kite/stage0/podnet"
	"github.com/kite-runtime/kite/stage0/pods"
	"github.com/kite-runtime/kite/stage0/spec"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

// podFlags are the flags of the whole pod, given before its first image.
func podFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "name", Usage: "name the pod `NAME`: other commands take it in place of the UUID (unique among existing pods); after an image, it names that app"},
		&cli.StringFlag{Name: "uuid-file-save", Usage: "write the pod's UUID to `FILE`"},
		&cli.BoolFlag{Name: "rm", Usage: "remove the pod when it ends, whatever its exit status"},
		sdNotifyFlag(),
		&cli.StringFlag{Name: "exit-policy", Value: poddir.ExitAnyFailure, Usage: "when a pod of several apps ends: `POLICY` all (every app has ended), any (one has), any-failure (every app has, or one failed)"},
		&cli.StringFlag{Name: "hostname", Usage: "the pod's hostname (default: kite-<first 8 digits of the pod UUID>)"},
		&cli.StringFlag{Name: "memory", Usage: "limit the pod's memory to `SIZE` (512m, 2g; needs a delegated cgroup v2, see below)"},
		&cli.StringFlag{Name: "cpu", Usage: "limit the pod's CPU time to `CPUS` (1.5) or millicores (500m; needs a delegated cgroup v2)"},
		&cli.Int64Flag{Name: "pids-limit", Usage: "limit the pod to `N` processes and threads, its init included (needs a delegated cgroup v2)"},
		&cli.IntFlag{Name: "preserve-fds", Usage: "pass descriptors 3 to 3+`N`-1 of kite's caller on to the app (every other one is closed; a pod of one app)"},
		&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "give the app a terminal of its own, sized like yours and resized with it (needs a terminal on kite's stdin; a pod of one app)"},
		&cli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "give the app kite's stdin; without it the app reads /dev/null (a pod of one app)"},
	}, networkFlags()...)
}

// createPod fetches the images when needed and writes the pod of kite run or kite prepare,
// returning it locked with its config.json.
func createPod(c *cli.Context, prepare bool) (*pods.Locked, *specs.Spec, error) {
	apps, err := splitApps(c.Args().Slice())
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", c.Command.Name, err)
	}
	if name := c.String("name"); name != "" {
		if err := pods.ValidName(name); err != nil {
			return nil, nil, err
		}
	}
	policy := c.String("exit-policy")
	if !slices.Contains([]string{poddir.ExitAll, poddir.ExitAny, poddir.ExitAnyFailure}, policy) {
		return nil, nil, fmt.Errorf("--exit-policy %q: use all, any or any-failure", policy)
	}
	if len(apps) > 1 {
		for _, f := range []string{"tty", "interactive", "preserve-fds"} {
			if c.IsSet(f) {
				return nil, nil, fmt.Errorf("--%s: only a pod of one app can have it", f)
			}
		}
	}
	fetch, err := newFetchRequest(c)
	if err != nil {
		return nil, nil, err
	}
	d := fetch.dir
	var recs []*imageindex.Record
	var defaults []string
	for _, a := range apps {
		rec, err := fetch.storedImage(a.image)
		if err != nil {
			return nil, nil, err
		}
		recs, defaults = append(recs, rec), append(defaults, pods.AppName(rec))
	}
	if os.Geteuid() != 0 && imageindex.IsSingleMapping(recs[0].UIDMap) {
		fmt.Fprintln(os.Stderr, singleMappingWarning(d.Storage()))
	}
	phase.Mark("kite", "images found")
	names, err := appNames(apps, defaults)
	if err != nil {
		return nil, nil, err
	}
	vols, mounts, err := podVolumes(c, apps)
	if err != nil {
		return nil, nil, err
	}
	id, err := pods.New()
	if err != nil {
		return nil, nil, err
	}
	hostname := c.String("hostname")
	if hostname == "" {
		hostname = "kite-" + pods.ShortID(id)
	}
	var contents []pods.App
	for i, a := range apps {
		app, err := appContents(c, a, recs[i], fetch.helper, hostname, vols, mounts[i])
		if err != nil {
			return nil, nil, fmt.Errorf("app %s: %w", names[i], err)
		}
		app.Name = names[i]
		contents = append(contents, app)
	}
	net, err := podNetwork(c, recs[0], hostname)
	if err != nil {
		return nil, nil, err
	}
	for _, app := range contents {
		net.Apply(app.Spec)
	}
	phase.Mark("kite", "config.json made")
	s := contents[0].Spec
	if !prepare {
		// Before the pod exists: limits this host cannot apply and host ports in use refuse the
		// run, leaving nothing. A prepared pod's are checked where it runs.
		if _, err := podcgroup.Find(s.Linux.Resources, podcgroup.RunFlags); err != nil {
			return nil, nil, err
		}
		if err := podnet.Check(&net.Network); err != nil {
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
	if prepare {
		for _, f := range []string{"preserve-fds", "sd-notify"} {
			if c.IsSet(f) {
				return nil, nil, fmt.Errorf("--%s: give it to kite run-prepared, which starts the pod", f)
			}
		}
	} else {
		if err := passDescriptors(c.Int("preserve-fds"), s, s); err != nil {
			return nil, nil, err
		}
		mode, err := sdNotifyMode(c)
		if err != nil {
			return nil, nil, err
		}
		if mode == notifyContainer {
			notifyInApp(s)
		}
	}
	copied := false
	for i := range contents {
		if contents[i].Image.Driver == "vfs" {
			copied = true
			if contents[i].CopyDir, err = fetch.helper.podCopy(id, contents[i].Name, contents[i].Image.ID); err != nil {
				break
			}
		}
	}
	var p *pods.Locked
	if err == nil {
		p, err = pods.Create(d, id, pods.Contents{
			Apps: contents, Name: c.String("name"), Prepare: prepare, RemoveOnExit: c.Bool("rm"), ExitPolicy: policy,
			Network: &net.Network, Files: net.Files,
		})
	}
	if err != nil {
		if copied {
			fetch.helper.removePodCopy(id)
		}
		return nil, nil, err
	}
	phase.Mark("kite", "pod written")
	if file := c.String("uuid-file-save"); file != "" {
		if err := poddir.WriteFileAtomic(file, []byte(id+"\n"), 0o644); err != nil {
			// The pod exists: say which, so that it can be removed.
			p.Close()
			return nil, nil, fmt.Errorf("--uuid-file-save: %w (pod %s was made; kite rm %s removes it)", err, id, id)
		}
	}
	return p, pods.PodSpec(s), nil
}

// appContents builds one app's config.json and compiled filter.
func appContents(c *cli.Context, a appArgs, rec *imageindex.Record, helper *imageHelper, hostname string, vols []spec.Volume, mounts []spec.MountPoint) (pods.App, error) {
	opts, err := appOptions(c, a.source(c))
	if err != nil {
		return pods.App{}, err
	}
	opts.Hostname, opts.Volumes, opts.MountPoints, opts.Args = hostname, vols, mounts, a.args
	cfg, err := spec.Generate(rec, opts)
	if err != nil {
		return pods.App{}, err
	}
	filter, err := seccompFilter(helper, cfg.Spec.Linux.Seccomp, cfg.SeccompNames)
	if err != nil {
		return pods.App{}, err
	}
	return pods.App{ImageRef: a.image, Image: rec, Spec: cfg.Spec, EmptyVolumes: cfg.EmptyVolumes, SeccompFilter: filter}, nil
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
			sdNotifyFlag(),
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
	s, err := prepareToRun(c, p)
	if err != nil {
		p.Close()
		return err
	}
	if err := p.Move(d, poddir.RunDir); err != nil {
		p.Close()
		return err
	}
	return startPod(c, stage1, p, s)
}

// prepareToRun checks that the prepared pod p can run here and now, and sizes its terminal and
// passes descriptors as the flags of run-prepared say. It returns the pod's config.json.
func prepareToRun(c *cli.Context, p *pods.Locked) (*specs.Spec, error) {
	var s specs.Spec
	if err := poddir.ReadJSON(p.Dir, poddir.ConfigFile, &s); err != nil {
		return nil, err
	}
	// Limits this host cannot apply and host ports in use leave the pod prepared.
	if _, err := podcgroup.Find(s.Linux.Resources, podcgroup.RunFlags); err != nil {
		return nil, err
	}
	if err := podnet.Check(p.Manifest.Network); err != nil {
		return nil, err
	}
	// The descriptors and a terminal go to the first app.
	appDir := filepath.Join(p.Dir, poddir.AppDir(p.Manifest.Apps[0].Name))
	var app specs.Spec
	if err := poddir.ReadJSON(appDir, poddir.ConfigFile, &app); err != nil {
		return nil, err
	}
	if c.Int("preserve-fds") > 0 && len(p.Manifest.Apps) > 1 {
		return nil, errors.New("--preserve-fds: only a pod of one app can have it")
	}
	if err := passDescriptors(c.Int("preserve-fds"), &s, &app); err != nil {
		return nil, err
	}
	mode, err := sdNotifyMode(c)
	if err != nil {
		return nil, err
	}
	if mode == notifyContainer {
		notifyInApp(&app)
	}
	if app.Process.Terminal {
		if err := withTerminal(&app, c.Bool("interactive")); err != nil {
			return nil, err
		}
	}
	for dir, doc := range map[string]*specs.Spec{p.Dir: &s, appDir: &app} {
		if err := poddir.WriteJSON(dir, poddir.ConfigFile, doc); err != nil {
			return nil, err
		}
	}
	return &s, nil
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
