package pods

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"

	"github.com/kite-runtime/kite/pkg/idmap"
	"github.com/kite-runtime/kite/pkg/phase"
	"github.com/kite-runtime/kite/pkg/podcgroup"
	"github.com/kite-runtime/kite/pkg/poddir"
	"github.com/kite-runtime/kite/pkg/podfork"
	"github.com/kite-runtime/kite/pkg/syncproto"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Exec hands the pod to stage1 in this process: it forks the pod's init into the pod's
// namespaces, writes the init's id maps, lets the init exec `kite-stage1 init`, and execs
// `kite-stage1 run` (the monitor), which supervises it. The fork happens as late as possible, so
// that little memory is shared copy-on-write with it, and the init's start overlaps with the
// monitor's.
// With cgroup, the init starts in a cgroup of the pod's own with config.json's limits. notify,
// when not nil, is the socket the app's sd_notify messages arrive on, for the monitor.
// It only returns on failure.
func Exec(stage1 string, p *Locked, s *specs.Spec, cgroup *podcgroup.Group, notify *os.File) error {
	var keep map[string]*os.File
	if notify != nil {
		keep = map[string]*os.File{poddir.NotifyFdEnv: notify}
	}
	return ExecDir(stage1, p.Dir, p.UUID, p.lock, s, cgroup, keep, false)
}

// ExecDir is Exec for the pod directory dir of pod id, whose lock this process holds: a pod of
// kite's, or, with oci, a container of kite oci. keep names descriptors the monitor gets, by the
// environment variables that carry them.
//
// A container of kite oci outlives kite oci create, whose caller (an engine's monitor, such as
// conmon) waits for the container's process to get its status: its init is forked as this
// process's sibling, so that it becomes that caller's child once kite oci create exits, and the
// monitor follows it through a pidfd instead of waiting for it.
func ExecDir(stage1, dir, id string, lock *os.File, s *specs.Spec, cgroup *podcgroup.Group, keep map[string]*os.File, oci bool) (err error) {
	// The init's parent-death signal is tied to the forking thread, which must be the one that
	// execs (and so lives on as the monitor's main thread).
	runtime.LockOSThread()
	if s.Linux == nil {
		return fmt.Errorf("start pod %s: config.json has no linux section", id)
	}
	flags, err := podfork.CloneFlags(s.Linux.Namespaces)
	if err != nil {
		return err
	}
	// The caller's descriptors reach neither the init nor the monitor, but for those the app is
	// to get.
	preserved, err := poddir.PreservedFDs(s.Annotations)
	if err != nil {
		return err
	}
	if err := podfork.CloseExtraFDs(3 + preserved); err != nil {
		return err
	}
	maps, err := idmap.Prepare(s.Linux.UIDMappings, s.Linux.GIDMappings)
	if err != nil {
		return err
	}
	var cgroupDir string
	if cgroup != nil {
		if cgroupDir, err = cgroup.Create(id, s.Linux.Resources); err != nil {
			return fmt.Errorf("start pod %s: %w", id, err)
		}
		defer func() {
			if err != nil {
				podcgroup.Remove(cgroupDir)
			}
		}()
		// The monitor removes it when the pod has ended.
		if err := poddir.WriteFileAtomic(filepath.Join(dir, poddir.CgroupFile), []byte(cgroupDir+"\n"), 0o644); err != nil {
			return err
		}
	}
	parent, child, err := syncproto.Pair()
	if err != nil {
		return err
	}
	childFd := int(child.File().Fd())
	env := podfork.RuntimeEnv(os.Environ())
	initEnv := append(env[:len(env):len(env)], poddir.SyncFdEnv+"="+strconv.Itoa(childFd))
	phase.Mark("kite", "fork init")
	restore, err := podfork.JoinPaths(s.Linux.Namespaces, s.Linux.Sysctl)
	if err != nil {
		return fmt.Errorf("start pod %s: %w", id, err)
	}
	pid, err := podfork.Start(flags, []string{stage1, "init", dir}, initEnv, childFd, int(parent.File().Fd()), oci)
	restore()
	child.Close()
	if err != nil {
		return fmt.Errorf("start pod %s: %w", id, err)
	}
	if oci {
		// Before anything can reap the init: the pidfd names this process for good.
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			unix.Kill(pid, unix.SIGKILL)
			return fmt.Errorf("start container %s: %w", id, os.NewSyscallError("pidfd_open", err))
		}
		keep[poddir.InitPidfdEnv] = os.NewFile(uintptr(fd), "init pidfd")
	}
	if cgroupDir != "" {
		// Before the init runs: the app inherits it.
		if err := podcgroup.Add(cgroupDir, pid); err != nil {
			unix.Kill(pid, unix.SIGKILL)
			return err
		}
	}
	// Map the init's ids and let it exec: its start then overlaps with the monitor's.
	if err := maps.Apply(pid); err != nil {
		unix.Kill(pid, unix.SIGKILL)
		return err
	}
	phase.Mark("kite", "ids mapped")
	if err := parent.Send(syncproto.Message{Type: syncproto.Mapped}); err != nil {
		unix.Kill(pid, unix.SIGKILL)
		return fmt.Errorf("start pod %s: %w", id, err)
	}
	fds := map[string]int{poddir.LockFdEnv: int(lock.Fd()), poddir.SyncFdEnv: int(parent.File().Fd())}
	for name, f := range keep {
		fds[name] = int(f.Fd())
	}
	for name, fd := range fds {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
			return os.NewSyscallError("fcntl", err)
		}
		env = append(env, name+"="+strconv.Itoa(fd))
	}
	env = append(env, poddir.InitPidEnv+"="+strconv.Itoa(pid))
	phase.Mark("kite", "exec monitor")
	err = syscall.Exec(stage1, []string{"kite-stage1", "run", dir}, env)
	// The init reads end-of-file on its socket once this process exits, and exits too.
	return fmt.Errorf("exec %s: %w", stage1, err)
}
