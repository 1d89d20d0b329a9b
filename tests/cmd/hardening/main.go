// Command hardening reads the results the hardening tests and make fuzz wrote, prints their counts
// and writes them into SECURITY.md, between its "make hardening" markers. It exits 1 when a result
// is a failure (an escape, a failed CVE test, an unclean torture run, a crashing fuzz target, a
// failed step) or a part is missing. Usage: hardening -results DIR -fuzz FILE -security FILE
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxCell is the most characters a table cell of SECURITY.md shows.
const maxCell = 140

const (
	beginMarker = "<!-- make hardening: begin -->"
	endMarker   = "<!-- make hardening: end -->"
)

func main() {
	results := flag.String("results", "tests/out/hardening", "the directory the hardening tests wrote their rows to")
	fuzz := flag.String("fuzz", "tests/out/fuzz/summary.tsv", "make fuzz's summary")
	security := flag.String("security", "SECURITY.md", "the file whose figures section is rewritten")
	flag.Parse()
	r := report{}
	r.read(*results, *fuzz)
	text := r.markdown()
	fmt.Print(text)
	if err := rewrite(*security, text); err != nil {
		fmt.Fprintln(os.Stderr, "hardening:", err)
		os.Exit(2)
	}
	fmt.Printf("\nhardening: figures written to %s\n", *security)
	if len(r.problems) > 0 {
		fmt.Fprintf(os.Stderr, "hardening: %d problems:\n  %s\n", len(r.problems), strings.Join(r.problems, "\n  "))
		os.Exit(1)
	}
}

type report struct {
	hostile, cve, torture, fuzz, steps [][]string
	problems                           []string
}

// rows reads a tab-separated file of at least n fields a row; a missing file is a problem.
func (r *report) rows(path string, n int) [][]string {
	data, err := os.ReadFile(path)
	if err != nil {
		r.problems = append(r.problems, fmt.Sprintf("%s: %v (that part did not run)", path, err))
		return nil
	}
	var out [][]string
	for line := range strings.SplitSeq(strings.TrimSpace(string(data)), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) < n {
			r.problems = append(r.problems, fmt.Sprintf("%s: a row of %d fields, want %d: %q", path, len(f), n, line))
			continue
		}
		out = append(out, f)
	}
	return out
}

func (r *report) read(dir, fuzz string) {
	r.hostile = append(r.rows(filepath.Join(dir, "hostile.tsv"), 3), r.rows(filepath.Join(dir, "hostile-bombs.tsv"), 3)...)
	r.cve = r.rows(filepath.Join(dir, "cve.tsv"), 2)
	r.torture = r.rows(filepath.Join(dir, "torture.tsv"), 4)
	steps, _ := filepath.Glob(filepath.Join(dir, "step-*"))
	if len(steps) == 0 {
		r.problems = append(r.problems, "no step's exit status in "+dir)
	}
	for _, s := range steps {
		r.steps = append(r.steps, r.rows(s, 2)...)
	}
	r.fuzz = r.rows(fuzz, 6)
	for _, row := range r.hostile {
		if row[2] != "refused" && row[2] != "contained" {
			r.problems = append(r.problems, fmt.Sprintf("hostile input %s (%s): %s", row[0], row[1], row[2]))
		}
	}
	for _, row := range r.cve {
		if row[1] != "pass" {
			r.problems = append(r.problems, fmt.Sprintf("%s: %s", row[0], row[1]))
		}
	}
	for _, row := range r.torture {
		if row[3] != "0" || row[1] != row[2] {
			r.problems = append(r.problems, fmt.Sprintf("torture %s: %s runs, %s clean, %s failures", row[0], row[1], row[2], row[3]))
		}
	}
	for _, row := range r.fuzz {
		if !strings.HasPrefix(row[4], "ok") {
			r.problems = append(r.problems, fmt.Sprintf("fuzz target %s: %s", row[0], row[4]))
		}
	}
	for _, row := range r.steps {
		if row[1] != "0" {
			r.problems = append(r.problems, fmt.Sprintf("step %s exited with status %s", row[0], row[1]))
		}
	}
}

// count tallies column col of rows.
func count(rows [][]string, col int) map[string]int {
	out := map[string]int{}
	for _, row := range rows {
		out[row[col]]++
	}
	return out
}

func (r *report) markdown() string {
	var b strings.Builder
	commit := strings.TrimSpace(command("git", "log", "-1", "--format=%h %cd", "--date=short"))
	if out := command("git", "status", "--porcelain", "--untracked-files=no"); out != "" {
		commit += " (with uncommitted changes)"
	}
	fmt.Fprintf(&b, "Written by `make hardening` on %s, at commit %s, kernel %s; each step's own commit and start are in its row.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), commit, strings.TrimSpace(command("uname", "-r")))

	h := count(r.hostile, 2)
	cases := map[string]bool{}
	for _, row := range r.hostile {
		cases[row[0]] = true
	}
	c := count(r.cve, 1)
	var runs, clean, failures int
	for _, row := range r.torture {
		runs += atoi(row[1])
		clean += atoi(row[2])
		failures += atoi(row[3])
	}
	var execs, secs int
	for _, row := range r.fuzz {
		execs += atoi(row[5])
		secs += atoi(row[3])
	}
	f := count(r.fuzz, 4)
	// ok-deadline-race: go test's own deadline failed the target, with no input (fuzz.sh).
	races := f["ok-deadline-race"]
	fmt.Fprintf(&b, "| Check | Result |\n|---|---|\n")
	fmt.Fprintf(&b, "| Hostile inputs | %d cases, %d runs (case × transport): %d refused, %d contained, **%d escaped**, %d other |\n",
		len(cases), len(r.hostile), h["refused"], h["contained"], h["ESCAPED"], len(r.hostile)-h["refused"]-h["contained"]-h["ESCAPED"])
	fmt.Fprintf(&b, "| CVE regressions | %d of %d tests pass |\n", c["pass"], len(r.cve))
	fmt.Fprintf(&b, "| Crash and concurrency torture | %d runs in %d scenarios: %d clean, %d failures |\n", runs, len(r.torture), clean, failures)
	fmt.Fprintf(&b, "| Fuzzing | %d targets, %s each, %d s in all: %d ok (%d of them ended by go test's deadline race, go.dev/issue/75804, with no input found), %d failed, %d executions |\n",
		len(r.fuzz), fuzzTime(r.fuzz), secs, f["ok"]+races, races, len(r.fuzz)-f["ok"]-races, execs)
	for _, row := range r.steps {
		at := ""
		if len(row) >= 4 {
			at = fmt.Sprintf(", run at commit %s from %s", row[2], row[3])
		}
		fmt.Fprintf(&b, "| Step `%s` | exit status %s%s |\n", row[0], row[1], at)
	}
	table := func(title string, head []string, rows [][]string) {
		fmt.Fprintf(&b, "\n<details><summary>%s (%d rows)</summary>\n\n| %s |\n|%s\n", title, len(rows), strings.Join(head, " | "), strings.Repeat("---|", len(head)))
		for _, row := range rows {
			cells := slices.Clone(row)
			for len(cells) < len(head) {
				cells = append(cells, "")
			}
			for i := range cells {
				// Details are kite's messages, with paths: the start says what happened.
				if r := []rune(cells[i]); len(r) > maxCell {
					cells[i] = string(r[:maxCell]) + "…"
				}
				cells[i] = strings.ReplaceAll(cells[i], "|", `\|`)
			}
			fmt.Fprintf(&b, "| %s |\n", strings.Join(cells[:len(head)], " | "))
		}
		b.WriteString("\n</details>\n")
	}
	table("Hostile inputs: case → outcome", []string{"case", "transport", "outcome", "detail"}, r.hostile)
	table("CVE regressions", []string{"CVE", "result", "what was tried"}, r.cve)
	table("Torture", []string{"scenario", "runs", "clean", "failures", "seed"}, r.torture)
	table("Fuzz targets", []string{"target", "package", "time asked", "seconds", "result", "executions"}, r.fuzz)
	return b.String()
}

func fuzzTime(rows [][]string) string {
	times := count(rows, 2)
	var out []string
	for t := range times {
		out = append(out, t)
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

func atoi(s string) int {
	n, _ := strconv.Atoi(strings.TrimSpace(s))
	return n
}

func command(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return "unknown"
	}
	return string(out)
}

// rewrite replaces what is between the markers in path with text.
func rewrite(path, text string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	i, j := bytes.Index(data, []byte(beginMarker)), bytes.Index(data, []byte(endMarker))
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %q ... %q section to write the figures into", path, beginMarker, endMarker)
	}
	var out bytes.Buffer
	out.Write(data[:i+len(beginMarker)])
	out.WriteString("\n" + text)
	out.Write(data[j:])
	return os.WriteFile(path, out.Bytes(), 0o644)
}
