package main

import (
	"fmt"
	"strings"
)

// warmTarget is the most a fetch of an image already stored may take (median).
const warmTarget = 0.050

func writeFetchSection(b *strings.Builder, f *fetchResults) {
	fmt.Fprintf(b, "\n## Fetch of a 3-layer image from a registry on loopback\n\n")
	if f.debian != "" {
		fmt.Fprintf(b, "The image is Debian's minbase: `tests/scripts/bench.sh` makes a root file system with "+
			"`mmdebstrap --variant=minbase --format=tar` from the machine's apt sources, once, and keeps it as `%s` "+
			"(delete it for a fresh one). The bench splits its %d entries into three gzip layers (`tests/cmd/bench/debian.go`): "+
			"/usr/lib, /usr/share and the rest; device nodes are left out. ",
			f.debian, f.debianFiles)
	} else {
		fmt.Fprintf(b, "The bench writes the image itself (`tests/cmd/bench/bigimage.go`), as it had no Debian root file system "+
			"(`tests/scripts/bench.sh` makes one with mmdebstrap when it can): three gzip layers of files "+
			"whose content comes from fixed seeds, %d%% blocks of random bytes between lines of words from a small vocabulary, "+
			"so that they compress about as well as a mix of binaries and text. ", noisePercent)
	}
	fmt.Fprintf(b, "kite's test registry (`tests/registry`) serves it as `%s` over plain HTTP on 127.0.0.1, "+
		"from the bench's own process. Manifest `%s`.\n\n", bigRepo, f.image.manifest)
	fmt.Fprintf(b, "| layer | compressed (as served) | uncompressed (tar) |\n|---|---|---|\n")
	for i, l := range f.image.layers {
		fmt.Fprintf(b, "| %d | %s | %s |\n", i+1, bytesMB(l.compressed), bytesMB(l.uncompressed))
	}
	t := f.image.total()
	fmt.Fprintf(b, "| total | %s | %s |\n\n", bytesMB(t.compressed), bytesMB(t.uncompressed))
	fmt.Fprintf(b, "No command verifies signatures: kite has `--insecure-options=image,http`, skopeo `--insecure-policy`, "+
		"and podman a policy that accepts any image (`%s`). Progress output is off (`-q`). skopeo, run by an unprivileged "+
		"user with a containers-storage destination, re-execs itself into a user namespace mapped with newuidmap and "+
		"newgidmap, as kite does for its store: that is part of its time. Every command ran with `XDG_RUNTIME_DIR=STORES/xdg-runtime` "+
		"and `XDG_DATA_HOME=STORES/skopeo/data`, STORES being `%s` for the cold runs and `%s` for the warm ones: "+
		"a runtime directory of the bench's own, where kite keeps its stores' run root and rootless podman its pause process, "+
		"and the directory where skopeo keeps its blob-info cache (kite and podman keep theirs in their stores).\n",
		acceptAnything, envValue(f.coldBench.env, "XDG_RUNTIME_DIR", "/xdg-runtime"), envValue(f.warmBench.env, "XDG_RUNTIME_DIR", "/xdg-runtime"))
	fmt.Fprintf(b, "\n### Into an empty store (cold)\n\n")
	fmt.Fprintf(b, "hyperfine, %d runs each after %d warm-ups, no shell (`-N`). The runs alternate: %d hyperfine invocations, "+
		"each running every command once, one after the other (the warm-ups in the first), so that load from other work on "+
		"the machine falls on all commands alike. Before every run, warm-ups included, hyperfine runs the command's prepare "+
		"command: it moves what the previous run stored into a directory the bench deletes at its end, so each run writes "+
		"into an empty store, and runs `sync`, so no run pays for writing back what another left dirty. "+
		"Load average when the runs started: %s.\n\n",
		f.coldBench.runs, f.coldBench.warmup, f.coldBench.rounds, f.coldLoad)
	writeFetchTable(b, f.cold, "s")
	fmt.Fprintf(b, "\nPrepare commands, in the same order:\n\n")
	for _, p := range f.coldBench.prepare {
		fmt.Fprintf(b, "- `%s`\n", p)
	}

	fmt.Fprintf(b, "\n### Of an image already stored (warm)\n\n")
	fmt.Fprintf(b, "hyperfine, %d runs each after %d warm-ups, no shell, alternating as above (%d invocations), in stores "+
		"each tool had filled with the image once before. kite's default pull policy (`update`), skopeo copy and podman "+
		"pull's default policy (`always`) all ask the registry for the manifest, find its layers stored and copy none. "+
		"Load average when the runs started: %s.\n\n",
		f.warmBench.runs, f.warmBench.warmup, f.warmBench.rounds, f.warmLoad)
	writeFetchTable(b, f.warm, "ms")

	fmt.Fprintf(b, "\n### Ratios and targets\n\n| | measured | target | met |\n|---|---|---|---|\n")
	kiteCold, kiteWarm := f.cold[0].Median, f.warm[0].Median
	if s := f.find(f.cold, "skopeo"); s != nil {
		r := kiteCold / s.Median
		fmt.Fprintf(b, "| cold: kite ÷ skopeo | %.2f× | ≤ 1.0× (at least as fast) | %s |\n", r, yesNo(r <= 1))
	} else {
		fmt.Fprintf(b, "| cold: kite ÷ skopeo | not measured | ≤ 1.0× (at least as fast) | unknown |\n")
	}
	if p := f.find(f.cold, "podman"); p != nil {
		fmt.Fprintf(b, "| cold: kite ÷ podman | %.2f× | none | |\n", kiteCold/p.Median)
	}
	if p := f.find(f.warm, "podman"); p != nil {
		fmt.Fprintf(b, "| warm: kite ÷ podman | %.2f× | none | |\n", kiteWarm/p.Median)
	}
	fmt.Fprintf(b, "| warm: kite median | %.1f ms | < %.0f ms | %s |\n", kiteWarm*1000, warmTarget*1000, yesNo(kiteWarm < warmTarget))
	for _, n := range f.notes {
		fmt.Fprintf(b, "\nNote: %s\n", n)
	}
}

// writeFetchTable writes hyperfine's figures in unit ("s" or "ms"), with kite's median divided by
// each command's.
func writeFetchTable(b *strings.Builder, results []measured, unit string) {
	scale := 1.0
	if unit == "ms" {
		scale = 1000
	}
	fmt.Fprintf(b, "| command | median | min – max | kite ÷ this |\n|---|---|---|---|\n")
	for _, r := range results {
		lo, hi := minMax(r.Times)
		fmt.Fprintf(b, "| `%s` | %.*f %s | %.*f – %.*f %s | %.2f |\n", r.Command, digits(unit), r.Median*scale, unit,
			digits(unit), lo*scale, digits(unit), hi*scale, unit, results[0].Median/r.Median)
	}
}

func digits(unit string) int {
	if unit == "s" {
		return 2
	}
	return 1
}

// find returns the result of the tool called name, or nil if it was not measured.
func (f *fetchResults) find(results []measured, name string) *measured {
	for i, n := range f.names {
		if n == name && i < len(results) {
			return &results[i]
		}
	}
	return nil
}

// envValue returns the value of key in env without suffix.
func envValue(env []string, key, suffix string) string {
	v := ""
	for _, kv := range env {
		if val, ok := strings.CutPrefix(kv, key+"="); ok {
			v = val
		}
	}
	return strings.TrimSuffix(v, suffix)
}

func bytesMB(n int64) string {
	return fmt.Sprintf("%.1f MB (%d bytes)", float64(n)/1e6, n)
}
