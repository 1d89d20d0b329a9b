package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kite-runtime/kite/pkg/exitcode"
	"github.com/kite-runtime/kite/pkg/poddir"
	"github.com/kite-runtime/kite/stage0/datadir"
	"github.com/kite-runtime/kite/stage0/pods"
	"github.com/urfave/cli/v2"
)

// uuidFileFlags is --uuid-file, which every command that takes a pod accepts in its place.
func uuidFileFlags() []cli.Flag {
	return []cli.Flag{&cli.StringFlag{Name: "uuid-file", Usage: "read the pod's UUID from `FILE` (as kite run --uuid-file-save wrote it) instead of an argument"}}
}

const podRefHelp = "POD is a UUID, a unique UUID prefix or the pod's name (--name)."

// podArg finds the one pod a command names, by argument or --uuid-file.
func podArg(c *cli.Context, d datadir.Dir) (*pods.Pod, error) {
	refs, err := podRefs(c)
	if err != nil {
		return nil, err
	}
	if len(refs) != 1 {
		return nil, fmt.Errorf("%s: give one pod, not %d", c.Command.Name, len(refs))
	}
	return pods.Find(d, refs[0])
}

// podRefs are the pods a command names: its arguments, or the UUID in --uuid-file.
func podRefs(c *cli.Context) ([]string, error) {
	if file := c.String("uuid-file"); file != "" {
		if c.Args().Present() {
			return nil, fmt.Errorf("%s: give pods as arguments or with --uuid-file, not both", c.Command.Name)
		}
		uuid, err := pods.ReadUUIDFile(file)
		if err != nil {
			return nil, err
		}
		return []string{uuid}, nil
	}
	if !c.Args().Present() {
		return nil, fmt.Errorf("%s: no pod given: give its UUID, a UUID prefix, its name, or --uuid-file FILE", c.Command.Name)
	}
	return c.Args().Slice(), nil
}

// podView is a pod as list and status print it with --format json. The field names are stable
// (docs/pods.md).
type podView struct {
	UUID     string     `json:"uuid"`
	Name     string     `json:"name,omitempty"`
	State    string     `json:"state"`
	Apps     []appView  `json:"apps"`
	Created  *time.Time `json:"created,omitempty"`
	Started  *time.Time `json:"started,omitempty"`
	Finished *time.Time `json:"finished,omitempty"`
	Pid      int        `json:"pid,omitempty"`
	// ExitCode is the pod's exit status once it has ended and its monitor recorded it.
	ExitCode *int   `json:"exitCode,omitempty"`
	Signal   string `json:"signal,omitempty"`
}

type appView struct {
	Name     string `json:"name"`
	Image    string `json:"image"`
	ImageID  string `json:"imageID"`
	ExitCode *int   `json:"exitCode,omitempty"`
}

func viewOf(p *pods.Pod) podView {
	v := podView{UUID: p.UUID, Name: p.Name(), State: string(p.State), Apps: []appView{}}
	if p.State == pods.Running {
		v.Pid = p.Pid
	}
	if !p.Started.IsZero() {
		v.Started = &p.Started
	}
	if e := p.Exit; e != nil {
		v.Finished, v.ExitCode, v.Signal = &e.Finished, &e.Code, e.Signal
	}
	if m := p.Manifest; m != nil {
		v.Created = &m.Created
		for _, a := range m.Apps {
			v.Apps = append(v.Apps, appView{Name: a.Name, Image: a.Image, ImageID: a.ImageID, ExitCode: appExit(p, a.Name)})
		}
	}
	return v
}

// appExit is app name's exit status, once the pod has recorded it. A pod whose init was killed
// records the pod's status only: its one app ended with it.
func appExit(p *pods.Pod, name string) *int {
	e := p.Exit
	if e == nil {
		return nil
	}
	for _, a := range e.Apps {
		if a.Name == name {
			return &a.Code
		}
	}
	if len(e.Apps) == 0 && p.Manifest != nil && len(p.Manifest.Apps) == 1 {
		return &e.Code
	}
	return nil
}

// formatFlag is --format: human, the people's format (table or text), or json.
func formatFlag(human string) cli.Flag {
	return &cli.StringFlag{Name: "format", Value: human, Usage: "`" + human + "` for people, json for scripts"}
}

func checkFormat(c *cli.Context, human string) (bool, error) {
	switch c.String("format") {
	case human:
		return false, nil
	case "json":
		return true, nil
	}
	return false, fmt.Errorf("--format %q: use %s or json", c.String("format"), human)
}

func listCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list the pods and their state",
		Description: `States: embryo (being written), aborted (kite died writing it), prepared,
running, exited, exited-garbage (marked by kite gc), garbage (being removed).`,
		Flags: []cli.Flag{
			formatFlag("table"),
			&cli.BoolFlag{Name: "no-legend", Usage: "leave out the header line"},
			&cli.BoolFlag{Name: "full", Usage: "print whole UUIDs and image IDs"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only the pods' UUIDs, one a line"},
		},
		OnUsageError: usageError,
		Action:       listAction,
	}
}

func listAction(c *cli.Context) error {
	asJSON, err := checkFormat(c, "table")
	if err != nil {
		return err
	}
	d, err := dataDir(c)
	if err != nil {
		return err
	}
	all, err := pods.List(d)
	if err != nil {
		return err
	}
	views := make([]podView, 0, len(all))
	for _, p := range all {
		views = append(views, viewOf(p))
	}
	sort.SliceStable(views, func(i, j int) bool { return created(views[i]).Before(created(views[j])) })
	if asJSON {
		return printJSON(views)
	}
	if c.Bool("quiet") {
		for _, v := range views {
			fmt.Println(v.UUID)
		}
		return nil
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	if !c.Bool("no-legend") {
		fmt.Fprintln(w, "UUID\tNAME\tAPP\tIMAGE\tSTATE\tCREATED\tSTARTED\tEXIT")
	}
	now := time.Now()
	for _, v := range views {
		uuid, app, image := v.UUID, "-", "-"
		if !c.Bool("full") {
			uuid = pods.ShortID(uuid)
		}
		if len(v.Apps) > 0 {
			var names, images []string
			for _, a := range v.Apps {
				names, images = append(names, a.Name), append(images, a.Image)
			}
			app, image = strings.Join(names, ","), strings.Join(images, ",")
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", uuid, orDash(v.Name), app, image, v.State,
			ago(v.Created, now), ago(v.Started, now), exitText(v))
	}
	return w.Flush()
}

func created(v podView) time.Time {
	if v.Created == nil {
		return time.Time{}
	}
	return *v.Created
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func ago(t *time.Time, now time.Time) string {
	if t == nil {
		return "-"
	}
	return now.Sub(*t).Round(time.Second).String() + " ago"
}

func exitText(v podView) string {
	switch {
	case v.ExitCode == nil:
		return "-"
	case v.Signal != "":
		return fmt.Sprintf("%d (%s)", *v.ExitCode, v.Signal)
	}
	return fmt.Sprint(*v.ExitCode)
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "print a pod's state, and wait for it to run or end",
		ArgsUsage: "POD",
		Description: podRefHelp + `

--wait waits until the pod has ended (or until DURATION has passed: then
status exits 1), --wait-ready until its app runs. Text output is KEY=VALUE
lines; --format json prints the object kite list --format json prints.`,
		Flags: append(uuidFileFlags(), formatFlag("text"),
			&cli.GenericFlag{Name: "wait", Value: &waitFlag{}, Usage: "wait until the pod has ended, at most `DURATION` when given (--wait=30s)"},
			&cli.GenericFlag{Name: "wait-ready", Value: &waitFlag{}, Usage: "wait until the pod's app runs, at most `DURATION` when given"},
		),
		OnUsageError: usageError,
		Action:       statusAction,
	}
}

// waitFlag is --wait or --wait=DURATION: a bool flag (to the flag package) that takes a value.
type waitFlag struct {
	set     bool
	timeout time.Duration // 0: no limit
}

func (w *waitFlag) IsBoolFlag() bool { return true }
func (w *waitFlag) String() string {
	if w == nil || !w.set {
		return ""
	}
	return w.timeout.String()
}

func (w *waitFlag) Set(s string) error {
	switch s {
	case "true":
		w.set, w.timeout = true, 0
	case "false":
		w.set = false
	default:
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return fmt.Errorf("%q is not a duration such as 30s or 5m", s)
		}
		w.set, w.timeout = true, d
	}
	return nil
}

func statusAction(c *cli.Context) error {
	asJSON, err := checkFormat(c, "text")
	if err != nil {
		return err
	}
	d, err := dataDir(c)
	if err != nil {
		return err
	}
	p, err := podArg(c, d)
	if err != nil {
		return err
	}
	for _, name := range []string{"wait-ready", "wait"} {
		w := c.Generic(name).(*waitFlag)
		if !w.set {
			continue
		}
		if p, err = pods.Wait(d, p, name == "wait", w.timeout); err != nil {
			if errors.Is(err, pods.ErrTimeout) {
				return &exitcode.CodedError{Code: 1, Err: err}
			}
			return err
		}
	}
	v := viewOf(p)
	if asJSON {
		return printJSON(v)
	}
	lines := []string{"uuid=" + v.UUID, "name=" + v.Name, "state=" + v.State}
	if v.Created != nil {
		lines = append(lines, "created="+v.Created.Format(time.RFC3339Nano))
	}
	if v.Started != nil {
		lines = append(lines, "started="+v.Started.Format(time.RFC3339Nano))
	}
	if v.Pid != 0 {
		lines = append(lines, fmt.Sprintf("pid=%d", v.Pid))
	}
	ended := p.State == pods.Exited || p.State == pods.ExitedGarbage
	lines = append(lines, fmt.Sprintf("exited=%t", ended))
	if v.Finished != nil {
		lines = append(lines, "finished="+v.Finished.Format(time.RFC3339Nano))
	}
	for _, a := range v.Apps {
		if a.ExitCode != nil {
			lines = append(lines, fmt.Sprintf("app-%s=%d", a.Name, *a.ExitCode))
		}
	}
	_, err = fmt.Println(strings.Join(lines, "\n"))
	return err
}

func catManifestCommand() *cli.Command {
	return &cli.Command{
		Name:         "cat-manifest",
		Usage:        "print a pod's pod.json and config.json",
		ArgsUsage:    "POD",
		Description:  podRefHelp + "\n\nPrints one JSON object: {\"pod\": pod.json, \"config\": the pod's config.json, \"apps\": {NAME: the app's config.json}} (OCI runtime-spec).",
		Flags:        uuidFileFlags(),
		OnUsageError: usageError,
		Action: func(c *cli.Context) error {
			d, err := dataDir(c)
			if err != nil {
				return err
			}
			p, err := podArg(c, d)
			if err != nil {
				return err
			}
			doc := struct {
				Pod    json.RawMessage            `json:"pod"`
				Config json.RawMessage            `json:"config"`
				Apps   map[string]json.RawMessage `json:"apps"`
			}{Apps: map[string]json.RawMessage{}}
			if err := poddir.ReadJSON(p.Dir, poddir.PodFile, &doc.Pod); err != nil {
				return fmt.Errorf("pod %s: %w", p.UUID, err)
			}
			if err := poddir.ReadJSON(p.Dir, poddir.ConfigFile, &doc.Config); err != nil {
				return fmt.Errorf("pod %s: %w", p.UUID, err)
			}
			if p.Manifest != nil {
				for _, a := range p.Manifest.Apps {
					var cfg json.RawMessage
					if err := poddir.ReadJSON(filepath.Join(p.Dir, poddir.AppDir(a.Name)), poddir.ConfigFile, &cfg); err != nil {
						return fmt.Errorf("pod %s: %w", p.UUID, err)
					}
					doc.Apps[a.Name] = cfg
				}
			}
			return printJSON(doc)
		},
	}
}
