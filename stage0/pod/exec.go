package pod

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"

	"github.com/kite-runtime/kite/pkg/idmap"
	"github.com/kite-runtime/kite/pkg/poddir"
	"github.com/kite-runtime/kite/pkg/podfork"
	"github.com/kite-runtime/kite/pkg/syncproto"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Exec hands the pod to stage1 in this process: it forks the pod's init into the pod's
// namespaces, starts writing the init's id maps, and execs `kite-stage1 run` (the monitor), which
// waits for the maps, lets the init exec and supervises it. The fork happens immediately before the
// exec, so no running process shares memory with it for long (copy-on-write faults), and the id
// map helpers run while the monitor starts.
// It only returns on failure.
func Exec(stage1 string, p *Pod, s *specs.Spec) error {
	// The init's parent-death signal is tied to the forking thread, which must be the one that
	// execs (and so lives on as the monitor's main thread).
	runtime.LockOSThread()
	if s.Linux == nil {
		return fmt.Errorf("start pod %s: config.json has no linux section", p.UUID)
	}
	flags, err := podfork.CloneFlags(s.Linux.Namespaces)
	if err != nil {
		return err
	}
	// The caller's descriptors reach neither the init nor the monitor.
	if err := podfork.CloseExtraFDs(); err != nil {
		return err
	}
	maps, err := idmap.Prepare(s.Linux.UIDMappings, s.Linux.GIDMappings)
	if err != nil {
		return err
	}
	parent, child, err := syncproto.Pair()
	if err != nil {
		return err
	}
	childFd := int(child.File().Fd())
	// The monitor and the init are single-threaded at heart: one scheduler thread spares them the
	// idle threads (and their page faults) that one per CPU would cost on every start.
	env := append(os.Environ(), "GOMAXPROCS=1")
	initEnv := append(env[:len(env):len(env)], poddir.SyncFdEnv+"="+strconv.Itoa(childFd))
	pid, err := podfork.Start(flags, []string{stage1, "init", p.Dir}, initEnv, childFd)
	child.Close()
	if err != nil {
		return fmt.Errorf("start pod %s: %w", p.UUID, err)
	}
	// Start mapping the init's ids; the helpers run while this process execs the monitor, which
	// waits for them.
	helpers, err := maps.Start(pid)
	if err != nil {
		unix.Kill(pid, unix.SIGKILL)
		return err
	}
	keep := map[string]int{poddir.LockFdEnv: int(p.Lock.Fd()), poddir.SyncFdEnv: int(parent.File().Fd())}
	for name, fd := range keep {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
			return os.NewSyscallError("fcntl", err)
		}
		env = append(env, name+"="+strconv.Itoa(fd))
	}
	env = append(env, poddir.InitPidEnv+"="+strconv.Itoa(pid), poddir.IDMapHelpersEnv+"="+helpers.String())
	err = syscall.Exec(stage1, []string{"kite-stage1", "run", p.Dir}, env)
	// The init reads end-of-file on its socket once this process exits, and exits too.
	return fmt.Errorf("exec %s: %w", stage1, err)
}
