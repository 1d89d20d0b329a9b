package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/kite-runtime/kite/tests/probe/report"
)

func cmdInfo(stdout, stderr io.Writer) int {
	r := gatherInfo()
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		fmt.Fprintf(stderr, "probe: write report: %v\n", err)
		return exitFailed
	}
	if len(r.Errors) > 0 {
		for _, e := range r.Errors {
			fmt.Fprintf(stderr, "probe: %s\n", e)
		}
		return exitFailed
	}
	return exitOK
}

// gatherInfo fills a Report from the kernel, collecting what it cannot read in Errors so one missing
// file (e.g. /proc not mounted) still leaves the rest of the report usable.
func gatherInfo() report.Report {
	r := report.Report{
		UID:    os.Getuid(),
		GID:    os.Getgid(),
		EUID:   os.Geteuid(),
		EGID:   os.Getegid(),
		Groups: []int{},
		Env:    os.Environ(),
		PID:    os.Getpid(),
		PPID:   os.Getppid(),
		FDs:    []report.FD{},
		Mounts: []report.Mount{},
	}
	fail := func(err error) { r.Errors = append(r.Errors, err.Error()) }

	if groups, err := unix.Getgroups(); err != nil {
		fail(fmt.Errorf("getgroups: %w", err))
	} else if groups != nil {
		r.Groups = groups
	}

	if b, err := readFile("/proc/self/uid_map"); err != nil {
		fail(err)
	} else {
		r.UIDMap = string(b)
	}
	if b, err := readFile("/proc/self/gid_map"); err != nil {
		fail(err)
	} else {
		r.GIDMap = string(b)
	}

	if b, err := readFile("/proc/self/status"); err != nil {
		fail(err)
	} else {
		st := parseStatus(string(b))
		for _, f := range []struct {
			key string
			dst *string
		}{{"CapInh", &r.CapInh}, {"CapPrm", &r.CapPrm}, {"CapEff", &r.CapEff}, {"CapBnd", &r.CapBnd}, {"CapAmb", &r.CapAmb}} {
			v, ok := st[f.key]
			if !ok {
				fail(fmt.Errorf("read /proc/self/status: no %s line", f.key))
			}
			*f.dst = v
		}
		for _, f := range []struct {
			key string
			dst *int
		}{{"NoNewPrivs", &r.NoNewPrivs}, {"Seccomp", &r.Seccomp}} {
			v, err := strconv.Atoi(st[f.key])
			if err != nil {
				fail(fmt.Errorf("read /proc/self/status: %s: %w", f.key, err))
			}
			*f.dst = v
		}
	}

	// uname(2) rather than os.Hostname, which reads /proc/sys/kernel/hostname through os.Open.
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		fail(os.NewSyscallError("uname", err))
	} else {
		r.Hostname = unix.ByteSliceToString(uts.Nodename[:])
	}

	r.Namespaces = map[string]string{}
	for _, ns := range []string{"user", "mnt", "pid", "uts", "ipc", "net", "cgroup"} {
		buf := make([]byte, 64)
		if n, err := unix.Readlink("/proc/self/ns/"+ns, buf); err != nil {
			fail(&os.PathError{Op: "readlink", Path: "/proc/self/ns/" + ns, Err: err})
		} else {
			r.Namespaces[ns] = string(buf[:n])
		}
	}

	// getcwd(2) rather than os.Getwd, which returns $PWD when it names the same directory and so
	// would hide what the runtime actually set.
	if cwd, err := unix.Getwd(); err != nil {
		fail(os.NewSyscallError("getcwd", err))
	} else {
		r.Cwd = cwd
	}

	if fds, err := openFDs(); err != nil {
		fail(err)
	} else {
		r.FDs = fds
	}

	if b, err := readFile("/proc/self/mountinfo"); err != nil {
		fail(err)
	} else if mounts, err := parseMountinfo(string(b)); err != nil {
		fail(err)
	} else {
		r.Mounts = mounts
	}
	return r
}

// openFDs lists /proc/self/fd, leaving out the descriptor used to read that directory.
func openFDs() ([]report.FD, error) {
	const dir = "/proc/self/fd"
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	d := os.NewFile(uintptr(dfd), dir)
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	fds := []report.FD{}
	for _, name := range names {
		n, err := strconv.Atoi(name)
		if err != nil || n == dfd {
			continue
		}
		target, err := os.Readlink(dir + "/" + name)
		if err != nil {
			return nil, err
		}
		fds = append(fds, report.FD{FD: n, Target: target})
	}
	slices.SortFunc(fds, func(a, b report.FD) int { return a.FD - b.FD })
	return fds, nil
}
