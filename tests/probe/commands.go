package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/kite-runtime/kite/tests/probe/report"
)

// cmdStat prints one report.Stat per path. It uses lstat(2) so a test sees a symlink as a
// symlink; a path that cannot be stat'ed gets an error line and makes the exit status 1.
func cmdStat(paths []string, stdout, stderr io.Writer) int {
	if len(paths) == 0 {
		return usageError(stderr, "stat needs at least one path")
	}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	status := exitOK
	for _, p := range paths {
		s := statPath(p)
		if s.Error != "" {
			status = exitFailed
		}
		if err := enc.Encode(s); err != nil {
			fmt.Fprintf(stderr, "probe: write stat: %v\n", err)
			return exitFailed
		}
	}
	return status
}

func statPath(path string) report.Stat {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return report.Stat{Path: path, Error: err.Error()}
	}
	return report.Stat{
		Path: path,
		UID:  int(st.Uid),
		GID:  int(st.Gid),
		Mode: fmt.Sprintf("%04o", st.Mode&07777),
		Type: fileType(st.Mode),
	}
}

func fileType(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "file"
	case unix.S_IFDIR:
		return "dir"
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFCHR:
		return "char"
	case unix.S_IFBLK:
		return "block"
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFSOCK:
		return "socket"
	}
	return "unknown"
}

// cmdZombies counts processes in state Z in /proc: the pod's, when the pod has its own pid
// namespace and /proc, which is what tests of stage1's reaper need.
func cmdZombies(stdout, stderr io.Writer) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		fmt.Fprintf(stderr, "probe: %v\n", err)
		return exitFailed
	}
	zombies := 0
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := readFile("/proc/" + e.Name() + "/stat")
		// A process that was reaped between readdir and open is simply gone.
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
			continue
		}
		if err != nil {
			fmt.Fprintf(stderr, "probe: %v\n", err)
			return exitFailed
		}
		state, err := procState(string(b))
		if err != nil {
			fmt.Fprintf(stderr, "probe: %v\n", err)
			return exitFailed
		}
		if state == 'Z' {
			zombies++
		}
	}
	fmt.Fprintln(stdout, zombies)
	return exitOK
}

// cmdOutput writes the report.Pattern streams in alternating chunks, so a runtime that copies the
// app's stdout and stderr through pipes has to keep both flowing without losing or mixing bytes.
func cmdOutput(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		return usageError(stderr, "output needs a byte count")
	}
	n, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil || n < 0 {
		return usageError(stderr, fmt.Sprintf("bad byte count %q", args[0]))
	}
	for off := int64(0); off < n; off += report.ChunkSize {
		size := min(report.ChunkSize, n-off)
		if _, err := stdout.Write(report.Pattern(report.Stdout, off, size)); err != nil {
			fmt.Fprintf(stderr, "probe: write stdout: %v\n", err)
			return exitFailed
		}
		// Nowhere to report a failing stderr; the exit status says it.
		if _, err := stderr.Write(report.Pattern(report.Stderr, off, size)); err != nil {
			return exitFailed
		}
	}
	return exitOK
}

func cmdExit(args []string, stderr io.Writer) int {
	if len(args) != 1 {
		return usageError(stderr, "exit needs a status")
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 0 || n > 255 {
		return usageError(stderr, fmt.Sprintf("bad exit status %q (want 0-255)", args[0]))
	}
	return n
}
