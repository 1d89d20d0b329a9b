package main

import (
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/kite-runtime/kite/stage0/pods"
	"github.com/kite-runtime/kite/stage0/spec"
	"github.com/urfave/cli/v2"
)

// appArgs is one app of kite run or kite prepare, as its command line gave it:
//
//	IMAGE [APP FLAGS] [-- ARGS...]
//
// Apps are separated by "---". Flags given before the first image are the pod's, and app flags
// there apply to every app; each app's own flags follow its image.
type appArgs struct {
	image string
	// args, when set (even empty, after a bare --), replace the image's Cmd.
	args []string
	// flags are the app's own flags; nil when it has none.
	flags *cli.Context
}

// splitApps splits kite run's arguments into apps.
func splitApps(args []string) ([]appArgs, error) {
	if len(args) == 0 {
		return nil, errors.New("no image given: kite run IMAGE [-- ARGS...] [--- IMAGE [-- ARGS...]]...")
	}
	var apps []appArgs
	for len(args) > 0 {
		end := slices.Index(args, "---")
		if end < 0 {
			end = len(args)
		}
		app, err := parseApp(args[:end])
		if err != nil {
			return nil, err
		}
		apps = append(apps, app)
		if end == len(args) {
			break
		}
		args = args[end+1:]
		if len(args) == 0 {
			return nil, errors.New("nothing after ---: give the next app's image, or leave out ---")
		}
	}
	return apps, nil
}

// parseApp parses IMAGE [APP FLAGS] [-- ARGS...].
func parseApp(args []string) (appArgs, error) {
	if len(args) == 0 || args[0] == "--" || args[0] == "" {
		return appArgs{}, errors.New("an app needs an image: ... --- IMAGE [APP FLAGS] [-- ARGS...]")
	}
	app := appArgs{image: args[0]}
	flags := args[1:]
	if i := slices.Index(flags, "--"); i >= 0 {
		flags, app.args = flags[:i], append([]string{}, flags[i+1:]...)
	}
	if len(flags) > 0 {
		c, err := parseAppFlags(flags)
		if err != nil {
			return appArgs{}, fmt.Errorf("the flags of app %s: %w (put the app's arguments after --)", app.image, err)
		}
		app.flags = c
	}
	return app, nil
}

// parseAppFlags parses an app's own flags with the same definitions as kite run's, plus --name.
func parseAppFlags(flags []string) (*cli.Context, error) {
	var got *cli.Context
	cmd := &cli.Command{
		Name:                   "app",
		Flags:                  append(appFlags(), &cli.StringFlag{Name: "name"}),
		UseShortOptionHandling: true,
		HideHelp:               true,
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return fmt.Errorf("unexpected argument %q", c.Args().First())
			}
			got = c
			return nil
		},
	}
	parser := &cli.App{
		Name: "kite", Commands: []*cli.Command{cmd}, HideHelp: true, HideVersion: true,
		DisableSliceFlagSeparator: true, Writer: io.Discard, ErrWriter: io.Discard,
		ExitErrHandler: func(*cli.Context, error) {},
	}
	if err := parser.Run(append([]string{"kite", "app"}, flags...)); err != nil {
		return nil, err
	}
	return got, nil
}

// source is where the app's flags are read: its own over the pod's.
func (a appArgs) source(c *cli.Context) flagSource {
	if a.flags == nil {
		return c
	}
	return layered{own: a.flags, shared: c}
}

// podVolumes reads the pod's volumes, defined anywhere on the command line, and each app's mount
// points: --mount and -v SOURCE:TARGET before the first image mount in every app, an app's own
// only in it.
func podVolumes(c *cli.Context, apps []appArgs) ([]spec.Volume, [][]spec.MountPoint, error) {
	var vols []spec.Volume
	n := 0
	read := func(src flagSource) ([]spec.MountPoint, error) {
		var points []spec.MountPoint
		for _, v := range append(src.StringSlice("volume"), src.StringSlice("v")...) {
			vol, point, err := spec.ParseVolume(v, n)
			if err != nil {
				return nil, err
			}
			n++
			vols = append(vols, vol)
			if point != nil {
				points = append(points, *point)
			}
		}
		for _, m := range src.StringSlice("mount") {
			point, err := spec.ParseMount(m)
			if err != nil {
				return nil, err
			}
			points = append(points, point)
		}
		return points, nil
	}
	shared, err := read(c)
	if err != nil {
		return nil, nil, err
	}
	all := slices.Clone(shared)
	mounts := make([][]spec.MountPoint, len(apps))
	for i, a := range apps {
		mounts[i] = slices.Clone(shared)
		if a.flags != nil {
			own, err := read(a.flags)
			if err != nil {
				return nil, nil, err
			}
			mounts[i] = append(mounts[i], own...)
			all = append(all, own...)
		}
	}
	if err := spec.CheckVolumesMounted(vols, all); err != nil {
		return nil, nil, err
	}
	return vols, mounts, nil
}

// appNames names the apps: --name after an app's image, else its image's name, made unique with
// -2, -3... when several apps run one image.
func appNames(apps []appArgs, defaults []string) ([]string, error) {
	names := make([]string, len(apps))
	taken := map[string]bool{}
	for i, a := range apps {
		if a.flags != nil && a.flags.IsSet("name") {
			name := a.flags.String("name")
			if err := pods.ValidName(name); err != nil {
				return nil, fmt.Errorf("app name: %w", err)
			}
			if taken[name] {
				return nil, fmt.Errorf("two apps are named %q: give one another --name", name)
			}
			names[i], taken[name] = name, true
		}
	}
	for i := range apps {
		if names[i] != "" {
			continue
		}
		name := defaults[i]
		for n := 2; taken[name]; n++ {
			name = fmt.Sprintf("%s-%d", defaults[i], n)
		}
		names[i], taken[name] = name, true
	}
	return names, nil
}
