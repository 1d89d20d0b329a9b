package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kite-runtime/kite/pkg/exitcode"
	"github.com/kite-runtime/kite/stage0/pods"
	"github.com/urfave/cli/v2"
)

func rmCommand() *cli.Command {
	return &cli.Command{
		Name:      "rm",
		Usage:     "remove pods that have ended or were never started",
		ArgsUsage: "POD...",
		Description: podRefHelp + `

Removes exited, prepared and aborted pods now: their directories, the files
their apps wrote, their copies of the image and their names. A running pod is
refused: stop it first (kite stop). Prints each removed pod's UUID; exits 1
when some pod could not be removed.`,
		Flags:        uuidFileFlags(),
		OnUsageError: usageError,
		Action:       rmAction,
	}
}

func rmAction(c *cli.Context) error {
	refs, err := podRefs(c)
	if err != nil {
		return err
	}
	h, err := newImageHelper(c)
	if err != nil {
		return err
	}
	var locked []*pods.Locked
	defer func() {
		for _, l := range locked {
			l.Close()
		}
	}()
	failed := false
	for _, ref := range refs {
		l, err := lockForRemoval(h, ref)
		if err != nil {
			fmt.Fprintln(os.Stderr, "kite:", err)
			failed = true
			continue
		}
		locked = append(locked, l)
	}
	if err := removePods(h, locked, ""); err != nil {
		return err
	}
	if failed {
		return &exitcode.CodedError{Code: 1, Err: errSilent}
	}
	return nil
}

// lockForRemoval finds the pod ref names, locks it and moves it to garbage.
func lockForRemoval(h *imageHelper, ref string) (*pods.Locked, error) {
	p, err := pods.Find(h.dir, ref)
	if err != nil {
		return nil, err
	}
	l, err := pods.Lock(h.dir, p)
	if errors.Is(err, pods.ErrBusy) {
		switch p.State {
		case pods.Running:
			return nil, fmt.Errorf("pod %s is running: stop it first (kite stop %s)", p.UUID, ref)
		case pods.Embryo:
			return nil, fmt.Errorf("pod %s is being written by kite; try again once it is prepared or running", p.UUID)
		}
		return nil, fmt.Errorf("pod %s is in use by another kite command; try again", p.UUID)
	}
	if err != nil {
		return nil, err
	}
	if err := l.ToGarbage(h.dir); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// removePods has kite-image remove the locked pods, which are in garbage, and prints their UUIDs,
// each after prefix. flags are rm-pods's.
func removePods(h *imageHelper, locked []*pods.Locked, prefix string, flags ...string) error {
	if len(locked) == 0 && len(flags) == 0 {
		return nil
	}
	args := append([]string{"rm-pods"}, flags...)
	for _, l := range locked {
		args = append(args, l.UUID)
	}
	if _, err := h.run(args...); err != nil {
		return err
	}
	for _, l := range locked {
		fmt.Println(prefix + l.UUID)
	}
	return nil
}

// hasPodCopies reports whether the store is a vfs store, whose pods run on copies of their image.
func hasPodCopies(h *imageHelper) bool {
	_, err := os.Stat(filepath.Join(h.dir.Storage(), "vfs-containers"))
	return err == nil
}

func gcCommand() *cli.Command {
	return &cli.Command{
		Name:  "gc",
		Usage: "remove pods that ended a while ago, and prepared pods nobody started",
		Description: `Marks every exited pod (state exited-garbage) and removes the pods marked more
than --grace-period ago, prepared pods older than --expire-prepared, and pods
whose kite died while writing them. Running pods, and pods another kite
command is at work on, are never touched. Prints "marked UUID" and
"removed UUID" lines. Safe to run at any time, also from a timer.`,
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "grace-period", Value: 30 * time.Minute, Usage: "keep exited pods this `LONG` after marking them (0: remove them now)"},
			&cli.DurationFlag{Name: "expire-prepared", Value: 24 * time.Hour, Usage: "remove prepared pods older than `AGE`"},
			&cli.BoolFlag{Name: "mark-only", Usage: "mark exited pods, remove nothing"},
		},
		OnUsageError: usageError,
		Action: func(c *cli.Context) error {
			h, err := newImageHelper(c)
			if err != nil {
				return err
			}
			opts := pods.GCOptions{GracePeriod: c.Duration("grace-period"), ExpirePrepared: c.Duration("expire-prepared"), MarkOnly: c.Bool("mark-only")}
			if opts.GracePeriod < 0 || opts.ExpirePrepared < 0 {
				return errors.New("gc: --grace-period and --expire-prepared must not be negative")
			}
			marked, due, err := pods.GC(h.dir, opts, time.Now())
			defer func() {
				for _, l := range due {
					l.Close()
				}
			}()
			for _, uuid := range marked {
				fmt.Println("marked", uuid)
			}
			if err != nil {
				return err
			}
			if hasPodCopies(h) {
				// Also the copies of the image left by a kite killed before it wrote its pod.
				return removePods(h, due, "removed ", "--orphans")
			}
			return removePods(h, due, "removed ")
		},
	}
}
