package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kite-runtime/kite/tests/probe/report"
)

// readFile reads a /proc file without os.Open, which would start the netpoller (see the package
// comment). os.NewFile does not register a blocking fd with the poller.
func readFile(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	return io.ReadAll(f)
}

// parseStatus returns the "Key:\tvalue" lines of /proc/<pid>/status (proc(5)).
func parseStatus(data string) map[string]string {
	fields := make(map[string]string)
	for line := range strings.Lines(data) {
		key, value, ok := strings.Cut(line, ":")
		if ok {
			fields[key] = strings.TrimSpace(value)
		}
	}
	return fields
}

// parseMountinfo parses /proc/<pid>/mountinfo (proc(5)):
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//	(1)(2)(3)   (4)   (5)      (6)      (7)   (8) (9)   (10)         (11)
//
// Field 7 is zero or more optional fields ended by the "-" separator, so fields after it are
// counted from the separator.
func parseMountinfo(data string) ([]report.Mount, error) {
	mounts := []report.Mount{}
	for line := range strings.Lines(data) {
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			continue
		}
		// Spaces inside paths are escaped as \040, so a single space always separates fields.
		f := strings.Split(line, " ")
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || len(f) < sep+4 {
			return nil, fmt.Errorf("parse mountinfo line %q: no \"-\" separator followed by 3 fields", line)
		}
		mounts = append(mounts, report.Mount{
			Root:         unescapeOctal(f[3]),
			MountPoint:   unescapeOctal(f[4]),
			Options:      f[5],
			FSType:       f[sep+1],
			Source:       unescapeOctal(f[sep+2]),
			SuperOptions: f[sep+3],
		})
	}
	return mounts, nil
}

// unescapeOctal decodes the \ooo escapes the kernel's mangle() writes for space, tab, newline and
// backslash in mountinfo paths.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		// Only \000-\377 is a byte; anything else is kept literally.
		if s[i] == '\\' && i+3 < len(s) && s[i+1] >= '0' && s[i+1] <= '3' && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// procState returns the state letter of a /proc/<pid>/stat line. The command name in field 2 is in
// parentheses and may itself contain ") ", so the state is found after the last ')'.
func procState(stat string) (byte, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return 0, fmt.Errorf("parse stat %q: no state after the command name", stat)
	}
	return stat[i+2], nil
}
