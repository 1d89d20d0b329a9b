// Package pod owns creating a pod directory: allocating its UUID, writing the documents stage1
// reads, and moving it into the run state under its lock, ready for stage1.
package pods

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/kite-runtime/kite/pkg/poddir"
	"github.com/kite-runtime/kite/stage0/datadir"
	"github.com/kite-runtime/kite/stage0/imageindex"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// New allocates a random (version 4, RFC 9562) pod UUID; its short form names the default hostname.
func New() (string, error) {
	var b [16]byte
	// getrandom(2) directly: crypto/rand would link the FIPS DRBG, whose initialisation costs
	// milliseconds at every start of kite.
	if _, err := unix.Getrandom(b[:], 0); err != nil {
		return "", fmt.Errorf("allocate a pod UUID: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}

// ShortID is the first eight hex digits of a pod UUID.
func ShortID(id string) string { return id[:8] }

// App is what a pod directory holds for one app.
type App struct {
	// Name names the app in the pod: unique in it, and the name of its directory.
	Name string
	// ImageRef is the image as the user named it; Image its record.
	ImageRef string
	Image    *imageindex.Record
	// CopyDir is the pod's own copy of the image for a store without overlayfs (Image.Driver
	// "vfs"), else empty.
	CopyDir string
	// Spec is the app's config.json.
	Spec *specs.Spec
	// EmptyVolumes lists the empty volumes stage1 makes for the app's mounts.
	EmptyVolumes []poddir.EmptyVolume
	// SeccompFilter is Spec's seccomp profile compiled to BPF; nil when Spec has none.
	SeccompFilter []byte
}

// Contents is what a pod directory holds.
type Contents struct {
	Apps []App
	// Name names the pod ("" for none); no other pod may have it.
	Name string
	// Prepare leaves the pod prepared (kite prepare) instead of ready to run now.
	Prepare bool
	// RemoveOnExit has the monitor remove the pod when it ends (--rm).
	RemoveOnExit bool
	// ExitPolicy is poddir.ExitAll, ExitAny or ExitAnyFailure ("": ExitAnyFailure).
	ExitPolicy string
	// Network is the pod's network (pod.json); Files are files the pod directory holds for it,
	// by path in the directory (poddir.HostsFile, ...).
	Network *poddir.Network
	Files   map[string][]byte
}

// PodSpec is the pod's config.json: what the apps share, taken from the first app's (namespaces,
// id maps, hostname, limits, annotations).
func PodSpec(app *specs.Spec) *specs.Spec {
	return &specs.Spec{
		Version:  app.Version,
		Hostname: app.Hostname,
		Linux: &specs.Linux{
			UIDMappings: app.Linux.UIDMappings, GIDMappings: app.Linux.GIDMappings,
			Namespaces: app.Linux.Namespaces, Resources: app.Linux.Resources,
		},
		Annotations: app.Annotations,
	}
}

// Create writes the pod directory under its lock, in the embryo state, then moves it to the run
// state (or the prepared one), still locked. On failure nothing is left behind.
func Create(d datadir.Dir, id string, c Contents) (_ *Locked, err error) {
	if len(c.Apps) == 0 {
		return nil, errors.New("create pod: it has no app")
	}
	// The pod has one user namespace: every image must have been stored under its id maps.
	for _, app := range c.Apps[1:] {
		if !reflect.DeepEqual(app.Spec.Linux.UIDMappings, c.Apps[0].Spec.Linux.UIDMappings) ||
			!reflect.DeepEqual(app.Spec.Linux.GIDMappings, c.Apps[0].Spec.Linux.GIDMappings) {
			return nil, fmt.Errorf("create pod: the images of apps %s and %s were stored under different id maps; fetch them into one store", c.Apps[0].Name, app.Name)
		}
	}
	if c.ExitPolicy == "" {
		c.ExitPolicy = poddir.ExitAnyFailure
	}
	embryos := d.PodsIn(poddir.EmbryoDir)
	if err := os.MkdirAll(embryos, 0o700); err != nil {
		return nil, fmt.Errorf("create pod: %w", err)
	}
	dir := filepath.Join(embryos, id)
	lock, err := lockedDir(embryos, id)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			lock.Close()
			os.RemoveAll(dir)
		}
	}()
	if c.Name != "" {
		if err := reserveName(d, c.Name, id); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				ReleaseName(d, c.Name, id)
			}
		}()
	}
	first := c.Apps[0].Spec
	podDoc := poddir.Pod{
		SchemaVersion: poddir.SchemaVersion, UUID: id, Name: c.Name, Hostname: first.Hostname, Created: time.Now().UTC(),
		RemoveOnExit: c.RemoveOnExit, ExitPolicy: c.ExitPolicy, Network: c.Network,
	}
	for name, data := range c.Files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, fmt.Errorf("create pod: %w", err)
		}
		// Readable by every user of the pod, as the files they stand for are.
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return nil, fmt.Errorf("create pod: %w", err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, poddir.RootfsDir), 0o755); err != nil {
		return nil, fmt.Errorf("create pod: %w", err)
	}
	for _, app := range c.Apps {
		if err := createApp(d, id, dir, app); err != nil {
			return nil, err
		}
		podDoc.Apps = append(podDoc.Apps, poddir.App{Name: app.Name, Image: app.ImageRef, ImageID: app.Image.ID, ManifestDigest: app.Image.ManifestDigest})
	}
	for name, doc := range map[string]any{poddir.ConfigFile: PodSpec(first), poddir.PodFile: podDoc} {
		if err := poddir.CreateJSON(dir, name, doc); err != nil {
			return nil, fmt.Errorf("create pod: %w", err)
		}
	}
	if err := reserveSpace(filepath.Join(dir, poddir.ExitStatusReserveFile), exitStatusReserve); err != nil {
		return nil, fmt.Errorf("create pod: %w", err)
	}
	l := &Locked{Pod: &Pod{UUID: id, Dir: dir, State: Embryo, Manifest: &podDoc}, lock: lock}
	to, state := poddir.RunDir, Running
	if c.Prepare {
		to, state = poddir.PreparedDir, Prepared
	}
	err = l.Move(d, to)
	dir = l.Dir // where the cleanup of a failure finds it
	if err != nil {
		return nil, fmt.Errorf("create pod: %w", err)
	}
	l.State = state
	return l, nil
}

// stagingPrefix names an embryo's directory while kite makes and locks it, before it takes the
// pod's name: kite gc takes an unlocked embryo for aborted, and a directory made and then locked
// would be one for an instant. stagingLock, in the pods directory, is held shared by each kite
// making one and exclusive by kite gc, which so finds only abandoned staging directories.
const (
	stagingPrefix = ".new-"
	stagingLock   = ".staging.lock"
)

// lockedDir makes the embryo directory embryos/id and returns it open and locked: it is made as
// a staging directory, locked, then renamed.
func lockedDir(embryos, id string) (*os.File, error) {
	guard, err := os.OpenFile(filepath.Join(filepath.Dir(embryos), stagingLock), os.O_RDONLY|os.O_CREATE, 0o600)
	if err == nil {
		err = unix.Flock(int(guard.Fd()), unix.LOCK_SH)
	}
	if err != nil {
		return nil, fmt.Errorf("create pod: %w", err)
	}
	defer guard.Close()
	staging := filepath.Join(embryos, stagingPrefix+id)
	if err := os.Mkdir(staging, 0o700); err != nil {
		return nil, fmt.Errorf("create pod: %w", err)
	}
	lock, err := os.Open(staging)
	if err == nil {
		if err = unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err == nil {
			err = os.Rename(staging, filepath.Join(embryos, id))
		}
		if err != nil {
			lock.Close()
		}
	}
	if err != nil {
		os.Remove(staging)
		return nil, fmt.Errorf("create pod %s: %w", id, err)
	}
	return lock, nil
}

// createApp writes app's directory in the embryo pod dir.
func createApp(d datadir.Dir, id, dir string, app App) error {
	s := app.Spec
	if (s.Linux.Seccomp != nil) != (app.SeccompFilter != nil) {
		return errors.New("create pod: the seccomp profile and its compiled filter must come together")
	}
	appDir := filepath.Join(dir, poddir.AppDir(app.Name))
	for _, sub := range []string{poddir.UpperDir, poddir.WorkDir} {
		if err := os.MkdirAll(filepath.Join(appDir, sub), 0o755); err != nil {
			return fmt.Errorf("create pod: %w", err)
		}
	}
	// stage1 finds the upper and work dirs where the pod will be once it runs.
	layers, err := rootfsDoc(app.Image, app.CopyDir, filepath.Join(d.PodsIn(poddir.RunDir), id, poddir.AppDir(app.Name)))
	if err != nil {
		return err
	}
	layers.EmptyVolumes = app.EmptyVolumes
	if app.SeccompFilter != nil {
		if err := os.WriteFile(filepath.Join(appDir, poddir.SeccompFile), app.SeccompFilter, 0o600); err != nil {
			return fmt.Errorf("create pod: %w", err)
		}
	}
	for name, doc := range map[string]any{poddir.ConfigFile: s, poddir.RootfsFile: layers} {
		if err := poddir.CreateJSON(appDir, name, doc); err != nil {
			return fmt.Errorf("create pod: %w", err)
		}
	}
	return nil
}

func rootfsDoc(rec *imageindex.Record, copyDir, dir string) (*poddir.Rootfs, error) {
	switch rec.Driver {
	case "vfs":
		if copyDir == "" {
			return nil, errors.New("create pod: the image is stored without overlayfs and the pod has no copy of it")
		}
		return &poddir.Rootfs{SchemaVersion: poddir.SchemaVersion, Bind: copyDir}, nil
	case "overlay":
	default:
		return nil, fmt.Errorf("create pod: images stored with the %q driver cannot be run", rec.Driver)
	}
	o := &poddir.Overlay{
		Home:  rec.OverlayHome,
		Upper: filepath.Join(dir, poddir.UpperDir),
		Work:  filepath.Join(dir, poddir.WorkDir),
		// Every store kite fills is filled inside a user namespace (as root too).
		UserXattr: true,
	}
	for _, l := range rec.Layers {
		o.Lower = append(o.Lower, l.Link)
	}
	if len(o.Lower) == 0 {
		return nil, errors.New("create pod: the image has no layers")
	}
	return &poddir.Rootfs{SchemaVersion: poddir.SchemaVersion, Overlay: o}, nil
}

// AppName is the default name of an app that runs image rec: the last part of the image's name,
// without tag or digest.
func AppName(rec *imageindex.Record) string {
	name := rec.Name
	if i := strings.LastIndexAny(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	if i := strings.LastIndexAny(name, ":@"); i >= 0 {
		name = name[:i]
	}
	// "." or ".." would make the app's directory the apps directory or the pod's.
	if name == "" || name == "." || name == ".." {
		return "app"
	}
	return name
}

// exitStatusReserve is the space set aside for the pod's exit-status file and the temporary file
// it is renamed from: a few blocks, for a document of a few hundred bytes.
const exitStatusReserve = 16 << 10

// reserveSpace makes path a file of size allocated bytes. The monitor writes the pod's exit
// status when the pod ends, possibly after the app filled the disk (its upper directory is in
// the pod directory): it removes this file first, so that the status still finds room.
func reserveSpace(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = unix.Fallocate(int(f.Fd()), 0, 0, size)
	if errors.Is(err, unix.EOPNOTSUPP) {
		// Filesystems without fallocate(2) allocate what is written.
		_, err = f.Write(make([]byte, size))
	} else if err != nil {
		err = &os.PathError{Op: "fallocate", Path: path, Err: err}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
