// Package pod owns creating a pod directory: allocating its UUID, writing the documents stage1
// reads, and moving it into the run state under its lock, ready for stage1.
package pods

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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

// Contents is what a pod directory holds for one app.
type Contents struct {
	// ImageRef is the image as the user named it; Image its record.
	ImageRef string
	Image    *imageindex.Record
	// CopyDir is the pod's own copy of the image for a store without overlayfs (Image.Driver
	// "vfs"), else empty.
	CopyDir string
	Spec    *specs.Spec
	// EmptyVolumes lists the empty volumes stage1 makes.
	EmptyVolumes []poddir.EmptyVolume
	// SeccompFilter is Spec's seccomp profile compiled to BPF; nil when Spec has none.
	SeccompFilter []byte
	// Name names the pod ("" for none); no other pod may have it.
	Name string
	// Prepare leaves the pod prepared (kite prepare) instead of ready to run now.
	Prepare bool
	// RemoveOnExit has the monitor remove the pod when it ends (--rm).
	RemoveOnExit bool
}

// Create writes the pod directory for one app under its lock, in the embryo state, then moves it
// to the run state (or the prepared one), still locked. On failure nothing is left behind.
func Create(d datadir.Dir, id string, c Contents) (_ *Locked, err error) {
	rec, s := c.Image, c.Spec
	if (s.Linux.Seccomp != nil) != (c.SeccompFilter != nil) {
		return nil, errors.New("create pod: the seccomp profile and its compiled filter must come together")
	}
	embryos := d.PodsIn(poddir.EmbryoDir)
	if err := os.MkdirAll(embryos, 0o700); err != nil {
		return nil, fmt.Errorf("create pod: %w", err)
	}
	dir := filepath.Join(embryos, id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create pod: %w", err)
	}
	lock, err := os.Open(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("create pod: %w", err)
	}
	defer func() {
		if err != nil {
			lock.Close()
			os.RemoveAll(dir)
		}
	}()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return nil, fmt.Errorf("lock pod %s: %w", id, err)
	}
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
	for _, sub := range []string{poddir.RootfsDir, poddir.UpperDir, poddir.WorkDir} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("create pod: %w", err)
		}
	}
	podDoc := poddir.Pod{
		SchemaVersion: poddir.SchemaVersion, UUID: id, Name: c.Name, Hostname: s.Hostname, Created: time.Now().UTC(), RemoveOnExit: c.RemoveOnExit,
		Apps: []poddir.App{{Name: appName(rec), Image: c.ImageRef, ImageID: rec.ID, ManifestDigest: rec.ManifestDigest}},
	}
	// stage1 finds the upper and work dirs where the pod will be once it runs.
	layers, err := rootfsDoc(rec, c.CopyDir, filepath.Join(d.PodsIn(poddir.RunDir), id))
	if err != nil {
		return nil, err
	}
	layers.EmptyVolumes = c.EmptyVolumes
	if c.SeccompFilter != nil {
		if err := os.WriteFile(filepath.Join(dir, poddir.SeccompFile), c.SeccompFilter, 0o600); err != nil {
			return nil, fmt.Errorf("create pod: %w", err)
		}
	}
	for name, doc := range map[string]any{poddir.ConfigFile: s, poddir.PodFile: podDoc, poddir.RootfsFile: layers} {
		if err := poddir.CreateJSON(dir, name, doc); err != nil {
			return nil, fmt.Errorf("create pod: %w", err)
		}
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

func appName(rec *imageindex.Record) string {
	name := rec.Name
	if i := strings.LastIndexAny(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	if i := strings.LastIndexAny(name, ":@"); i >= 0 {
		name = name[:i]
	}
	if name == "" {
		return "app"
	}
	return name
}
