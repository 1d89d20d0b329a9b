package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kite-runtime/kite/pkg/poddir"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Volume is a named volume of the pod (rkt's --volume).
type Volume struct {
	Name string
	// Kind is "host" (a directory or file of the host) or "empty" (a new directory in the pod).
	Kind      string
	Source    string // host: absolute path
	ReadOnly  bool
	Recursive bool   // host: bind the mounts below the source too
	Mode      uint32 // empty
	UID, GID  uint32 // empty: owner, as ids inside the pod
}

// MountPoint puts a volume at a path in the app (rkt's --mount).
type MountPoint struct {
	Volume, Target string
}

// validVolumeName reports whether name is lowercase letters and digits, joined by single - _ or .
// characters (rkt's volume names).
func validVolumeName(name string) bool {
	sep := true // at the start, as after a separator, a letter or digit must come
	for _, c := range name {
		switch {
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
			sep = false
		case (c == '-' || c == '_' || c == '.') && !sep:
			sep = true
		default:
			return false
		}
	}
	return !sep
}

const volumeForms = "NAME,kind=host,source=PATH[,readOnly=true][,recursive=false], NAME,kind=empty[,mode=0755][,uid=N][,gid=N], or SOURCE:TARGET[:ro]"

// ParseVolume parses a --volume value: rkt's NAME,kind=...,KEY=VALUE... or the shorthand
// SOURCE:TARGET[:ro|:rw], which also mounts the volume it defines (returned as the MountPoint).
// n numbers the volume when the shorthand needs a name for it.
func ParseVolume(s string, n int) (Volume, *MountPoint, error) {
	if strings.HasPrefix(s, "/") || strings.HasPrefix(s, ".") {
		return parseShorthand(s, n)
	}
	fields := strings.Split(s, ",")
	v := Volume{Name: fields[0], Recursive: true, Mode: 0o755}
	if !validVolumeName(v.Name) {
		return v, nil, fmt.Errorf("--volume %q: the name %q must be lowercase letters and digits, joined by - _ or .; use %s", s, v.Name, volumeForms)
	}
	for _, f := range fields[1:] {
		key, value, ok := strings.Cut(f, "=")
		if !ok {
			return v, nil, fmt.Errorf("--volume %q: %q is not KEY=VALUE; use %s", s, f, volumeForms)
		}
		var err error
		switch key {
		case "kind":
			v.Kind = value
		case "source":
			v.Source = value
		case "readOnly":
			v.ReadOnly, err = strconv.ParseBool(value)
		case "recursive":
			v.Recursive, err = strconv.ParseBool(value)
		case "mode":
			var m uint64
			m, err = strconv.ParseUint(value, 8, 32)
			v.Mode = uint32(m)
			if err == nil && m > 0o7777 {
				err = fmt.Errorf("more than 07777")
			}
		case "uid", "gid":
			var id uint64
			id, err = strconv.ParseUint(value, 10, 32)
			if key == "uid" {
				v.UID = uint32(id)
			} else {
				v.GID = uint32(id)
			}
		default:
			return v, nil, fmt.Errorf("--volume %q: unknown key %q; use %s", s, key, volumeForms)
		}
		if err != nil {
			return v, nil, fmt.Errorf("--volume %q: %s=%s: %w", s, key, value, err)
		}
	}
	switch v.Kind {
	case "host":
		if v.Source == "" {
			return v, nil, fmt.Errorf("--volume %q: a host volume needs source=PATH", s)
		}
		src, err := hostSource(v.Source)
		if err != nil {
			return v, nil, fmt.Errorf("--volume %q: %w", s, err)
		}
		v.Source = src
	case "empty":
		if v.Source != "" {
			return v, nil, fmt.Errorf("--volume %q: an empty volume has no source", s)
		}
	default:
		return v, nil, fmt.Errorf("--volume %q: kind must be host or empty; use %s", s, volumeForms)
	}
	return v, nil, nil
}

func parseShorthand(s string, n int) (Volume, *MountPoint, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return Volume{}, nil, fmt.Errorf("--volume %q: use %s", s, volumeForms)
	}
	v := Volume{Name: "volume-" + strconv.Itoa(n), Kind: "host", Recursive: true}
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
			v.ReadOnly = true
		case "rw":
		default:
			return v, nil, fmt.Errorf("--volume %q: the option after the target must be ro or rw", s)
		}
	}
	src, err := hostSource(parts[0])
	if err != nil {
		return v, nil, fmt.Errorf("--volume %q: %w", s, err)
	}
	v.Source = src
	return v, &MountPoint{Volume: v.Name, Target: parts[1]}, nil
}

// hostSource makes a host path absolute and checks that it exists: a missing source is the
// user's mistake, not something to create.
func hostSource(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(abs); err != nil {
		return "", fmt.Errorf("source %s: %w; create it first, or fix the path", abs, unwrapPathError(err))
	}
	return abs, nil
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// ParseMount parses a --mount value: volume=NAME,target=PATH.
func ParseMount(s string) (MountPoint, error) {
	var m MountPoint
	for _, f := range strings.Split(s, ",") {
		key, value, _ := strings.Cut(f, "=")
		switch key {
		case "volume":
			m.Volume = value
		case "target":
			m.Target = value
		default:
			return m, fmt.Errorf("--mount %q: unknown key %q; use volume=NAME,target=PATH", s, key)
		}
	}
	if m.Volume == "" || m.Target == "" {
		return m, fmt.Errorf("--mount %q: use volume=NAME,target=PATH", s)
	}
	return m, nil
}

// volumeMounts turns the pod's volumes and an app's mount points into the app's config.json
// mounts and the empty volumes stage1 makes for it. Every mount must name a volume.
func volumeMounts(vols []Volume, points []MountPoint) ([]specs.Mount, []poddir.EmptyVolume, error) {
	byName := map[string]Volume{}
	for _, v := range vols {
		if _, dup := byName[v.Name]; dup {
			return nil, nil, fmt.Errorf("--volume %s is given twice", v.Name)
		}
		byName[v.Name] = v
	}
	used := map[string]bool{}
	var mounts []specs.Mount
	var empty []poddir.EmptyVolume
	for _, p := range points {
		v, ok := byName[p.Volume]
		if !ok {
			return nil, nil, fmt.Errorf("--mount volume=%s: no --volume %s is given", p.Volume, p.Volume)
		}
		if !filepath.IsAbs(p.Target) {
			return nil, nil, fmt.Errorf("--mount volume=%s,target=%s: the target must be an absolute path", p.Volume, p.Target)
		}
		m := specs.Mount{Destination: filepath.Clean(p.Target), Type: "bind", Options: []string{"bind"}}
		if v.Recursive || v.Kind == "empty" {
			m.Options = []string{"rbind"}
		}
		if v.ReadOnly {
			m.Options = append(m.Options, "ro")
		}
		switch v.Kind {
		case "host":
			m.Source = v.Source
		case "empty":
			// Relative to the pod directory; stage1 makes it once, however many mounts use it.
			m.Source = filepath.Join("volumes", v.Name)
			if !used[v.Name] {
				empty = append(empty, poddir.EmptyVolume{Dir: m.Source, Mode: v.Mode, UID: v.UID, GID: v.GID})
			}
		}
		used[v.Name] = true
		mounts = append(mounts, m)
	}
	return mounts, empty, nil
}

// CheckVolumesMounted checks that some app of the pod mounts every volume: one that none does is
// a mistake to point out.
func CheckVolumesMounted(vols []Volume, points []MountPoint) error {
	used := map[string]bool{}
	for _, p := range points {
		used[p.Volume] = true
	}
	for _, v := range vols {
		if !used[v.Name] {
			return fmt.Errorf("--volume %s is not mounted: add --mount volume=%s,target=PATH", v.Name, v.Name)
		}
	}
	return nil
}
