package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"

	"github.com/kite-runtime/kite/pkg/podcgroup"
	"github.com/kite-runtime/kite/pkg/poddir"
	"github.com/kite-runtime/kite/stage0/pods"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run an image in a new pod",
		ArgsUsage: "IMAGE [APP FLAGS] [-- ARGS...] [--- IMAGE [APP FLAGS] [-- ARGS...]]...",
		Description: `Runs IMAGE in a new pod. The pod runs in your process: kite execs into it,
forwards signals to the app and exits with the app's exit status.

IMAGE is any image kite fetch takes (see kite fetch --help). An image not
stored yet is fetched first; --pull-policy says when kite contacts a registry
for one that is. ARGS after -- replace the image's Cmd; --exec replaces its
Entrypoint.

A pod of several apps:
   Apps separated by --- share the pod's user, pid, network, ipc and uts
   namespaces and its volumes; each has its own root filesystem, user,
   environment, working directory, capabilities and seccomp filter. Flags
   before the first image are the pod's, and app flags there apply to every
   app; each app's own flags follow its image (--name there names the app;
   by default an app is named after its image). --exit-policy says when the
   pod ends: any-failure (default: when every app has ended, or as soon as
   one fails, with its status), any (when one has ended), all (when every
   app has; with the first failure's status). Apps still running then get
   SIGTERM, and SIGKILL 10 seconds later.

System calls:
   The app runs under Docker's default seccomp profile, adjusted to its
   capabilities: a call it denies fails with EPERM. --seccomp replaces it:
   mode=retain allows only the calls listed, mode=remove denies them and
   allows the rest; errno=ENAME is what a denied call returns (EPERM by
   default). Groups, derived from Docker's profile without its argument
   checks: @kite/default-allow (what the default profile allows this app),
   @docker/default-allow (what it allows an app without capabilities),
   @kite/default-deny (what it allows only with capabilities beyond the
   default set: mount, modules, reboot, clocks, bpf...; and keyctl, kexec,
   vm86 and other calls it allows no app), @all.
   --insecure-options=seccomp runs the app without a filter.

Network:
   --net=default (the default, as in rkt) gives the pod a network namespace of
   its own, connected to the host's network by pasta (Debian: apt-get install
   passt), or by slirp4netns where pasta is missing (--net=pasta and
   --net=slirp4netns choose), which kite runs beside the pod for its life:
   outbound access, and the host's loopback at the pod's default gateway. --port HOSTPORT:PODPORT
   (-p) publishes a pod port on the host; nothing else is reachable from
   outside. --net=none leaves the pod only its loopback; --net=host gives it
   the caller's network. The apps of a pod share its network: they reach
   each other on localhost. kite writes the pod's /etc/resolv.conf (the
   host's resolvers, or --dns), /etc/hosts (the image's, or localhost, then
   the hostname and --hosts-entry) and /etc/hostname; --dns=none keeps the
   image's resolv.conf.

Resource limits:
   --memory, --cpu and --pids-limit put the pod in a cgroup of its own. kite
   has no daemon and no root, so that needs cgroup v2 with the controllers
   delegated to you, and kite alone in its cgroup: run it from a systemd unit
   with Delegate=yes, or under systemd-run --user --scope -p Delegate=yes.
   Where that is not so, kite says why and exits 125 rather than run the
   pod without the limits.

Exit status:
   N        the app exited with status N
   128+N    the app was killed by signal N
   125      kite failed before the app ran (bad flag, unknown image, setup error)
   126      the app could not be executed
   127      the app was not found in the image

Examples:
   kite run oci:./layout:app -- sh -c 'echo hi; exit 7'
   kite run --exec /bin/id oci-archive:./app.tar
   kite run --seccomp mode=remove,errno=ENOSYS,@kite/default-deny,ptrace IMAGE
   kite run -v ./data:/data oci:./layout:db --- oci:./layout:web --user 1000 -- --port 8080
   kite run docker://registry.example:5000/team/app:1.2 -- --port 8080`,
		Flags:        runFlags(),
		OnUsageError: usageError,
		// -it, as podman and docker users type it.
		UseShortOptionHandling: true,
		Action:                 runAction,
	}
}

// runFlags are the flags of kite run: fetching, the pod's, and the apps' (given before the first
// image, an app flag applies to every app).
func runFlags() []cli.Flag {
	flags := append(fetchFlags(pullNew), appFlags()...)
	return append(flags, podFlags()...)
}

// appFlags are the flags each app of a pod can have of its own.
func appFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "exec", Usage: "run `PATH` instead of the image's Entrypoint"},
		&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "run the app as `USER`: a number or a name in the image's /etc/passwd (default: the image's)"},
		&cli.StringFlag{Name: "group", Usage: "run the app with primary `GROUP`: a number or a name in the image's /etc/group (default: the user's)"},
		&cli.StringFlag{Name: "supplementary-gids", Usage: "comma-separated group `IDS` to add to the user's groups"},
		// -e and -v are flags of their own, not aliases: urfave/cli refuses a command line that
		// uses both forms of one flag, and users mix them.
		&cli.StringSliceFlag{Name: "set-env", Usage: "set `KEY=VALUE` in the app's environment (repeatable; overrides the image and --set-env-file)"},
		&cli.StringSliceFlag{Name: "e", Usage: "same as --set-env `KEY=VALUE`"},
		&cli.StringSliceFlag{Name: "set-env-file", Usage: "read KEY=VALUE lines from `FILE` (# comments and blank lines skipped; overrides the image)"},
		&cli.BoolFlag{Name: "inherit-env", Usage: "start from kite's own environment (the image and the flags above override it); without it, nothing of it reaches the app"},
		&cli.StringFlag{Name: "working-dir", Aliases: []string{"w"}, Usage: "run the app in `DIR` (created when missing; default: the image's)"},
		&cli.StringSliceFlag{Name: "v", Usage: "same as --volume `VOLUME`"},
		&cli.StringSliceFlag{Name: "volume", Usage: "define a `VOLUME` of the pod: NAME,kind=host,source=PATH[,readOnly=true][,recursive=false] or NAME,kind=empty[,mode=0755][,uid=N][,gid=N], mounted with --mount; or SOURCE:TARGET[:ro], mounted at once (repeatable)"},
		&cli.StringSliceFlag{Name: "mount", Usage: "mount a volume: `volume=NAME,target=PATH` (repeatable)"},
		&cli.BoolFlag{Name: "readonly-rootfs", Aliases: []string{"read-only"}, Usage: "make the root filesystem read-only (/tmp and /run stay writable tmpfs)"},
		&cli.StringSliceFlag{Name: "caps-retain", Usage: "comma-separated `CAPS` to keep besides the default set (chown or CAP_CHOWN; all for every one)"},
		&cli.StringSliceFlag{Name: "cap-add", Usage: "same as --caps-retain `CAPS`"},
		&cli.StringSliceFlag{Name: "caps-remove", Usage: "comma-separated `CAPS` to take from the default set (all for every one)"},
		&cli.StringSliceFlag{Name: "cap-drop", Usage: "same as --caps-remove `CAPS`"},
		&cli.StringSliceFlag{Name: "ulimit", Usage: "set a resource limit of the app, `NAME=SOFT[:HARD]` (nofile, nproc, core, stack ...; a number or unlimited; repeatable)"},
		&cli.IntFlag{Name: "oom-score-adj", Usage: "the app's oom_score_adj `N`, -1000 to 1000 (lowering it below kite's own needs privilege)"},
		&cli.BoolFlag{Name: "no-new-privileges", Value: true, Usage: "set no_new_privs: setuid binaries and file capabilities grant nothing in the app (--no-new-privileges=false to allow them)"},
		&cli.StringFlag{Name: "seccomp", Usage: "the app's system call filter instead of the default profile: `mode=retain|remove[,errno=ENAME],SYSCALL|@GROUP,...` (see below)"},
	}
}

func runAction(c *cli.Context) error {
	stage1, err := libexecPath("kite-stage1")
	if err != nil {
		return err
	}
	p, s, err := createPod(c, false)
	if err != nil {
		return err
	}
	return startPod(c, stage1, p, s)
}

// startPod hands the pod to stage1 in this process. Its limits were checked before it was
// written; the check here finds where to apply them. A pod that fails to start is removed
// with --rm, as stage1 would have removed it once ended.
func startPod(c *cli.Context, stage1 string, p *pods.Locked, s *specs.Spec) error {
	err := execPod(c, stage1, p, s)
	if p.Manifest != nil && p.Manifest.RemoveOnExit {
		if h, herr := newImageHelper(c); herr == nil && p.ToGarbage(h.dir) == nil {
			h.run("rm-pods", p.UUID)
		}
	}
	return err
}

func execPod(c *cli.Context, stage1 string, p *pods.Locked, s *specs.Spec) error {
	cgroup, err := podcgroup.Find(s.Linux.Resources, podcgroup.RunFlags)
	if err != nil {
		return err
	}
	if !c.Bool("interactive") {
		// Without -i the app's stdin is /dev/null, as with podman and docker: a pod started
		// from a shell or a script must not consume their input.
		if err := stdinFromDevNull(); err != nil {
			return err
		}
	}
	mode, err := sdNotifyMode(c)
	if err != nil {
		return err
	}
	var notify *os.File
	switch mode {
	case notifyContainer:
		if notify, err = listenNotify(p.Dir); err != nil {
			return err
		}
		fallthrough
	case notifyStarted:
		os.Setenv(poddir.SdNotifyEnv, mode)
	}
	return pods.Exec(stage1, p, s, cgroup, notify)
}

// singleMappingWarning says why the pod maps only the caller's uid, and how to fix the host.
func singleMappingWarning(store string) string {
	fix := "add a range: sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 $USER"
	for _, tool := range []string{"newuidmap", "newgidmap"} {
		if _, err := exec.LookPath(tool); err != nil {
			fix = "install newuidmap and newgidmap: sudo apt-get install uidmap"
		}
	}
	return "kite: warning: the pod maps only your own uid (see /etc/subuid), so files of other owners in the image belong to root inside; to fix, " +
		fix + ", then start a new store (remove " + store + " or use another --dir)"
}

// checkPreservedFDs checks that descriptors 3 to 3+n-1 are open: a gap would let a descriptor kite
// opens later take its number and reach the app.
func checkPreservedFDs(n int) error {
	if n < 0 || n > poddir.MaxPreservedFDs {
		return fmt.Errorf("--preserve-fds %d: give a count from 0 to the number of descriptors passed from 3 on", n)
	}
	for fd := 3; fd < 3+n; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			return fmt.Errorf("--preserve-fds %d: descriptor %d is not open", n, fd)
		}
	}
	return nil
}

// withTerminal asks stage1 for a terminal for the app, sized like the caller's (kite's stdin),
// and, with input, for the caller's terminal in raw mode.
func withTerminal(s *specs.Spec, interactive bool) error {
	ws, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ)
	if err != nil {
		return errors.New("--tty: kite's stdin is not a terminal; run kite from a terminal, or leave out -t")
	}
	s.Process.Terminal = true
	s.Process.ConsoleSize = &specs.Box{Height: uint(ws.Row), Width: uint(ws.Col)}
	if interactive {
		return os.Setenv(poddir.RawTerminalEnv, "1")
	}
	return nil
}
