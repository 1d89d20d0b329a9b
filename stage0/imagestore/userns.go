package imagestore

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"strconv"
	"syscall"

	"github.com/kite-runtime/kite/pkg/idmap"
	"github.com/kite-runtime/kite/stage0/imageindex"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"go.podman.io/storage/pkg/unshare"
)

// insideEnv marks the copy of kite-image that runs inside the store's user namespace.
const insideEnv = "_KITE_IMAGE_USERNS"

// InUserNamespace reports whether this process is the copy of kite-image that RunInUserNamespace
// started.
func InUserNamespace() bool { return os.Getenv(insideEnv) == "1" }

// RunInUserNamespace runs this program again, with the same arguments, inside a new user and mount
// namespace, and returns its exit status.
//
// containers/storage must work inside the user namespace whose mapping extracted the layers
// (DESIGN.md section 2), so the store is only ever opened there:
//   - unprivileged: 0 → the caller, 1..N → the caller's /etc/subuid and /etc/subgid ranges, set by
//     newuidmap/newgidmap, as storage's unshare.MaybeReexecUsingUserNamespace does. Without ranges
//     the namespace maps the caller alone and storage ignores chown errors.
//   - root: the identity mapping of every id. The store then runs "rootless": the overlay driver
//     keeps its metadata in user.overlay.* xattrs and mounts with userxattr, which is what stage1
//     needs, since it mounts the layers from inside a user namespace where trusted.overlay.* xattrs
//     are invisible.
//
// storage's MaybeReexecUsingUserNamespace is not used: it has no identity mode for root, and on
// failure it logs through logrus and exits 1, where kite must exit 125 with a fix.
func RunInUserNamespace() (int, error) {
	cmd := unshare.Command(append([]string{os.Args[0] + "-in-a-user-namespace"}, os.Args[1:]...)...)
	cmd.Env = append(os.Environ(), insideEnv+"=1")
	cmd.UnshareFlags = syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS
	if os.Geteuid() == 0 {
		all := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 4294967295}}
		cmd.UidMappings, cmd.GidMappings = all, all
		cmd.GidMappingsEnableSetgroups = true
		// unshare.IsRootless is what makes storage behave rootless; as root it only looks at this
		// variable (Cmd.Start sets it for unprivileged callers itself).
		cmd.Env = append(cmd.Env, unshare.UsernsEnvName+"=done")
	} else {
		uids, gids, ranges, err := rootlessMappings()
		if err != nil {
			return 0, err
		}
		cmd.UidMappings, cmd.GidMappings = uids, gids
		// newuidmap/newgidmap are needed for ranges; without them the kernel lets an
		// unprivileged process map its own ids, after setgroups is denied (user_namespaces(7)).
		cmd.UseNewuidmap, cmd.UseNewgidmap = ranges, ranges
		cmd.GidMappingsEnableSetgroups = ranges
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// The child must not outlive kite-image's parent half, which kite waits for.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}

	// Forward what would end us to the child, which cleans up a half-done fetch before it exits.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("create a user namespace for the image store: %w; check that user namespaces are enabled (sysctl user.max_user_namespaces > 0, kernel.unprivileged_userns_clone=1)", err)
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		ws := exitErr.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ws.ExitStatus(), nil
	}
	if err != nil {
		return 0, fmt.Errorf("run kite-image in its user namespace: %w", err)
	}
	return 0, nil
}

// rootlessMappings returns the caller's mappings, 0 → the caller and 1..N → its subordinate
// ranges, and whether there are ranges.
func rootlessMappings() (uids, gids []specs.LinuxIDMapping, ranges bool, err error) {
	uid, gid := os.Getuid(), os.Getgid()
	uids = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(uid), Size: 1}}
	gids = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(gid), Size: 1}}
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		// Without a name there are no /etc/subuid entries to find.
		return uids, gids, false, nil
	}
	subU, subG, err := unshare.GetSubIDMappings(u.Username, u.Username)
	if err != nil || len(subU) == 0 || len(subG) == 0 {
		return uids, gids, false, nil
	}
	// Without the setuid helpers only the caller's own ids can be mapped: fall back to that, as
	// with no ranges; kite warns on every run and says what to install.
	for _, tool := range []string{"newuidmap", "newgidmap"} {
		if _, err := exec.LookPath(tool); err != nil {
			return uids, gids, false, nil
		}
	}
	return idmap.Follow(uids, subU), idmap.Follow(gids, subG), true, nil
}

// CurrentIDMappings reads the mappings of the user namespace this process runs in: the truth that
// stage1 must reproduce, whatever RunInUserNamespace asked for (storage's unshare falls back to a
// single mapping when newuidmap fails).
func CurrentIDMappings() (uids, gids []specs.LinuxIDMapping, err error) {
	if uids, err = idmap.Read("/proc/self/uid_map"); err != nil {
		return nil, nil, err
	}
	if gids, err = idmap.Read("/proc/self/gid_map"); err != nil {
		return nil, nil, err
	}
	return uids, gids, nil
}

// singleID reports whether the store runs with one uid or gid only, so that files owned by other
// ids cannot be created.
func singleID(uids, gids []specs.LinuxIDMapping) bool {
	return imageindex.IsSingleMapping(uids) || imageindex.IsSingleMapping(gids)
}
