// Package imagestore owns kite's image store: a containers/storage store below the data root,
// opened only inside kite-image's user namespace, the fetches into it, the records
// (stage0/imageindex) that let kite start pods from it without opening it, and the copied root
// filesystems that the vfs driver needs.
package imagestore

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/kite-runtime/kite/pkg/poddir"
	"github.com/kite-runtime/kite/stage0/datadir"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"go.podman.io/storage"
	graphdriver "go.podman.io/storage/drivers"
	"go.podman.io/storage/drivers/overlay"
	"go.podman.io/storage/pkg/unshare"
	storagetypes "go.podman.io/storage/types"
	"golang.org/x/sys/unix"
)

// idMapsFile records the id mappings the store's files were created under. containers/storage
// does not record them for a store run in a user namespace, and a store opened under other
// mappings (newuidmap failed this time, or /etc/subuid changed) would create files with owners
// that the pods of the images already stored do not share.
const idMapsFile = "kite-idmaps.json"

// lockFile serialises kite-image's changes to a store, so that the clean-up after a failed fetch
// removes only what that fetch left behind.
const lockFile = "kite-image.lock"

// Store is an open image store.
type Store struct {
	storage.Store
	// UIDs and GIDs are the mappings of the user namespace the store runs in.
	UIDs, GIDs []specs.LinuxIDMapping
	lock       *os.File
}

// Drivers are the graph drivers kite can use; "" picks one (see chooseDriver).
var Drivers = []string{"overlay", "vfs"}

// Open opens the store below dir, holding kite-image's lock on it until Close. It must run inside
// the namespace RunInUserNamespace creates. driver is the graph driver the user asked for, or ""
// for kite's choice.
func Open(dir datadir.Dir, driver string) (*Store, error) {
	if !unshare.IsRootless() || os.Geteuid() != 0 {
		return nil, errors.New("open the image store: kite-image must open it inside its own user namespace")
	}
	uids, gids, err := CurrentIDMappings()
	if err != nil {
		return nil, fmt.Errorf("open the image store: %w", err)
	}
	graphRoot, runRoot := dir.Storage(), dir.StorageRun()
	for _, d := range []string{graphRoot, runRoot} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open the image store: %w", err)
		}
	}
	lock, err := os.OpenFile(filepath.Join(graphRoot, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the image store: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		lock.Close()
		return nil, fmt.Errorf("lock the image store %s: %w", graphRoot, os.NewSyscallError("flock", err))
	}
	if err := checkIDMaps(graphRoot, uids, gids); err != nil {
		lock.Close()
		return nil, fmt.Errorf("open the image store %s: %w", graphRoot, err)
	}
	driver, how, err := chooseDriver(graphRoot, runRoot, driver)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("open the image store %s: %w", graphRoot, err)
	}
	st, err := getStore(graphRoot, runRoot, driver, singleID(uids, gids))
	if err != nil && how == automatic && driver == "overlay" && unsupported(err) {
		slog.Debug("the overlay driver is unusable here; using the vfs driver", "error", err)
		removeEmptyOverlayHome(graphRoot)
		driver = "vfs"
		st, err = getStore(graphRoot, runRoot, driver, singleID(uids, gids))
	}
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("open the image store %s with the %s driver: %w", graphRoot, driver, err)
	}
	return &Store{Store: st, UIDs: uids, GIDs: gids, lock: lock}, nil
}

func getStore(graphRoot, runRoot, driver string, singleID bool) (storage.Store, error) {
	slog.Debug("opening image store", "graphroot", graphRoot, "runroot", runRoot, "driver", driver)
	opts := storagetypes.StoreOptions{
		GraphRoot:       graphRoot,
		RunRoot:         runRoot,
		GraphDriverName: driver,
	}
	if driver == "overlay" {
		// No mount_program, ever (DESIGN.md section 2): the overlay driver would record it in the
		// store and every later user would mount through fuse-overlayfs. skip_mount_home keeps
		// the driver from making its home a private bind mount, which nothing here needs.
		opts.GraphDriverOptions = []string{"overlay.mount_program=", "overlay.skip_mount_home=true"}
	}
	if singleID {
		// Only one id exists in the namespace: files of other owners are extracted as owned by it.
		opts.GraphDriverOptions = append(opts.GraphDriverOptions, driver+".ignore_chown_errors=true")
	}
	return storage.GetStore(opts)
}

// unsupported reports whether a driver failed to start because the host cannot run it.
func unsupported(err error) bool {
	return errors.Is(err, graphdriver.ErrNotSupported) || errors.Is(err, graphdriver.ErrPrerequisites) || errors.Is(err, graphdriver.ErrIncompatibleFS)
}

// removeEmptyOverlayHome removes what a failed start of the overlay driver leaves in a new store;
// an overlay home left behind would make the store look like an overlay store.
func removeEmptyOverlayHome(graphRoot string) {
	home := filepath.Join(graphRoot, "overlay")
	_ = os.Remove(filepath.Join(home, ".has-mount-program"))
	_ = os.Remove(filepath.Join(home, "l"))
	_ = os.Remove(home)
}

// Close shuts the store down and releases the lock.
func (s *Store) Close() error {
	_, err := s.Shutdown(false)
	s.lock.Close()
	if err != nil {
		return fmt.Errorf("close the image store: %w", err)
	}
	return nil
}

// How chooseDriver chose a driver.
type choice int

const (
	existing  choice = iota // the store's own
	automatic               // for a new store, by what the host can do
	requested               // for a new store, as the user asked
)

// chooseDriver picks the graph driver: the one the store already uses, else the one the user
// asked for, else overlay when this host can mount it natively, else vfs. A store never changes
// driver: its layers would vanish. containers/storage records the driver only by the existence
// of <graphroot>/<driver>-layers (and <graphroot>/<driver>), which is what is checked here.
func chooseDriver(graphRoot, runRoot, want string) (driver string, how choice, err error) {
	var used []string
	for _, d := range Drivers {
		if _, err := os.Stat(filepath.Join(graphRoot, d+"-layers")); err == nil {
			used = append(used, d)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", existing, err
		}
	}
	overlayHome := filepath.Join(graphRoot, "overlay")
	switch len(used) {
	case 2:
		return "", existing, errors.New("it holds both an overlay and a vfs store; remove one of them")
	case 1:
		if want != "" && want != used[0] {
			return "", existing, fmt.Errorf("it uses the %s driver, and a store never changes driver; for --storage-driver=%s use another --dir", used[0], want)
		}
		if used[0] == "overlay" {
			if flag, err := os.ReadFile(filepath.Join(overlayHome, ".has-mount-program")); err == nil && strings.TrimSpace(string(flag)) == "true" {
				return "", existing, fmt.Errorf("it was set up to mount layers through a FUSE mount program, which kite does not use; remove %s", graphRoot)
			}
		}
		return used[0], existing, nil
	}
	if want == "vfs" {
		return want, requested, nil
	}
	// SupportsNativeOverlay test-mounts an overlay in overlayHome (caching the answer in the run
	// root). Deciding here, before the driver starts, keeps the overlay driver from picking up
	// fuse-overlayfs from PATH on a host without native overlay.
	ok, err := overlay.SupportsNativeOverlay(overlayHome, filepath.Join(runRoot, "overlay"))
	switch {
	case (err != nil || !ok) && want == "overlay":
		removeEmptyOverlayHome(graphRoot)
		return "", requested, fmt.Errorf("overlayfs cannot be mounted here (%v); use --storage-driver=vfs", err)
	case err != nil || !ok:
		slog.Debug("native overlay is unusable here; using the vfs driver", "error", err)
		removeEmptyOverlayHome(graphRoot)
		return "vfs", automatic, nil
	case want == "overlay":
		return "overlay", requested, nil
	}
	return "overlay", automatic, nil
}

type idMaps struct {
	UIDMap []specs.LinuxIDMapping `json:"uidMap"`
	GIDMap []specs.LinuxIDMapping `json:"gidMap"`
}

// checkIDMaps records the mappings of a new store, and refuses to open a store created under other
// mappings.
func checkIDMaps(graphRoot string, uids, gids []specs.LinuxIDMapping) error {
	p := filepath.Join(graphRoot, idMapsFile)
	now := idMaps{UIDMap: uids, GIDMap: gids}
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		data, err = json.Marshal(now)
		if err != nil {
			return err
		}
		return poddir.WriteFileAtomic(p, append(data, '\n'), 0o600)
	}
	if err != nil {
		return err
	}
	var then idMaps
	if err := json.Unmarshal(data, &then); err != nil {
		return fmt.Errorf("parse %s: %w", p, err)
	}
	if !reflect.DeepEqual(then, now) {
		return fmt.Errorf("its files were created with uid map %s and gid map %s, but this user namespace has %s and %s; "+
			"check that newuidmap and newgidmap work and that /etc/subuid and /etc/subgid did not change, or start a new store with another --dir",
			formatIDMap(then.UIDMap), formatIDMap(then.GIDMap), formatIDMap(uids), formatIDMap(gids))
	}
	return nil
}

func formatIDMap(m []specs.LinuxIDMapping) string {
	parts := make([]string, len(m))
	for i, e := range m {
		parts[i] = fmt.Sprintf("%d:%d:%d", e.ContainerID, e.HostID, e.Size)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// layerDir returns the directory of the files of layer id: the overlay driver's diff directory,
// or the vfs driver's whole copy.
func layerDir(driver graphdriver.Driver, id string) (string, error) {
	if driver.String() == "vfs" {
		// For vfs, Get only names the layer's directory; nothing is mounted.
		dir, err := driver.Get(id, graphdriver.MountOpts{})
		if err != nil {
			return "", fmt.Errorf("find the directory of layer %s: %w", id, err)
		}
		return dir, nil
	}
	meta, err := driver.Metadata(id)
	if err != nil || meta["UpperDir"] == "" {
		return "", fmt.Errorf("find the directory of layer %s: %w", id, err)
	}
	return meta["UpperDir"], nil
}
