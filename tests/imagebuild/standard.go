package imagebuild

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Tags of the standard test images.
const (
	TagBusybox    = "busybox"
	TagMultilayer = "multilayer"
	TagUser       = "user"
)

// DefaultBusybox is where Debian's busybox-static package installs busybox.
const DefaultBusybox = "/bin/busybox"

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Users and groups of the standard images: uid/gid 1000 own files in the images, gid 2000 is a
// supplementary group, so tests can tell the primary group from additional ones.
const (
	passwd = "root:x:0:0:root:/root:/bin/sh\n" +
		"kiteuser:x:1000:1000:kite user:/home/kiteuser:/bin/sh\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
	group = "root:x:0:\n" +
		"kiteuser:x:1000:\n" +
		"kitegroup:x:2000:kiteuser\n" +
		"nogroup:x:65534:\n"
)

// StandardImages returns the images tests/ runs: busybox (a shell, applets and the probe),
// multilayer (busybox plus layers with an owned file, a whiteout and an opaque directory) and
// user (busybox running the probe as kiteuser).
func StandardImages(busyboxPath, probePath string) ([]Image, error) {
	base, err := BusyboxLayer(busyboxPath, probePath)
	if err != nil {
		return nil, err
	}
	files := []Entry{
		Dir("/data", 0o755, 1000, 1000),
		File("/data/gone", 0o644, 0, 0, []byte("gone\n")),
		File("/data/owned-by-1000", 0o644, 1000, 1000, []byte("kite\n")),
		Dir("/opaque", 0o755, 0, 0),
		File("/opaque/old", 0o644, 0, 0, []byte("old\n")),
	}
	// The parent directories come before the markers, as in layers diffed by real tools, so an
	// extractor that recreates a directory cannot drop its opaque marker.
	deletions := []Entry{
		Dir("/data", 0o755, 1000, 1000),
		Whiteout("/data/gone"),
		Dir("/opaque", 0o755, 0, 0),
		Opaque("/opaque"),
		File("/opaque/new", 0o644, 0, 0, []byte("new\n")),
	}
	return []Image{
		{
			Tag:    TagBusybox,
			Layers: [][]Entry{base},
			Config: ocispec.ImageConfig{Env: []string{defaultPath}, Cmd: []string{"/bin/sh"}},
		},
		{
			Tag:    TagMultilayer,
			Layers: [][]Entry{base, files, deletions},
			Config: ocispec.ImageConfig{
				Env:        []string{defaultPath, "KITE_IMAGE=multilayer"},
				Cmd:        []string{"/bin/sh"},
				WorkingDir: "/data",
			},
		},
		{
			Tag:    TagUser,
			Layers: [][]Entry{base},
			Config: ocispec.ImageConfig{
				User:       "kiteuser",
				Env:        []string{defaultPath},
				Entrypoint: []string{"/usr/bin/probe"},
				Cmd:        []string{"info"},
				WorkingDir: "/home/kiteuser",
			},
		},
	}, nil
}

// BusyboxLayer returns a root filesystem of the host's static busybox with a /bin symlink per
// applet, the probe at /usr/bin/probe, users and groups in /etc, and the usual empty directories.
// Both binaries must be static: the image has no libc or dynamic loader.
func BusyboxLayer(busyboxPath, probePath string) ([]Entry, error) {
	const fix = "install the static build: apt-get install busybox-static"
	busybox, err := readStatic(busyboxPath)
	if err != nil {
		return nil, fmt.Errorf("busybox: %w; %s", err, fix)
	}
	probe, err := readStatic(probePath)
	if err != nil {
		return nil, fmt.Errorf("probe: %w; build it with CGO_ENABLED=0 go build -o probe ./tests/probe", err)
	}
	out, err := exec.Command(busyboxPath, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("list busybox applets: run %s --list: %w", busyboxPath, err)
	}

	entries := []Entry{
		Dir("/bin", 0o755, 0, 0),
		Dir("/dev", 0o755, 0, 0),
		Dir("/etc", 0o755, 0, 0),
		Dir("/home", 0o755, 0, 0),
		Dir("/home/kiteuser", 0o755, 1000, 1000),
		Dir("/proc", 0o755, 0, 0),
		Dir("/root", 0o700, 0, 0),
		Dir("/sys", 0o755, 0, 0),
		Dir("/tmp", 0o1777, 0, 0),
		Dir("/usr", 0o755, 0, 0),
		Dir("/usr/bin", 0o755, 0, 0),
		Dir("/var", 0o755, 0, 0),
		File("/bin/busybox", 0o755, 0, 0, busybox),
		File("/usr/bin/probe", 0o755, 0, 0, probe),
		File("/etc/passwd", 0o644, 0, 0, []byte(passwd)),
		File("/etc/group", 0o644, 0, 0, []byte(group)),
	}
	applets := 0
	for applet := range strings.FieldsSeq(string(out)) {
		if applet == "busybox" || strings.Contains(applet, "/") {
			continue
		}
		entries = append(entries, Symlink("/bin/"+applet, "busybox"))
		applets++
	}
	if applets == 0 {
		return nil, fmt.Errorf("list busybox applets: %s --list printed none", busyboxPath)
	}
	// Sorted names put every directory before its contents and make the layer reproducible.
	slices.SortFunc(entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return entries, nil
}

// readStatic reads an executable that must be statically linked, i.e. an ELF file without a
// PT_INTERP header (no dynamic loader; static-pie binaries qualify).
func readStatic(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s does not exist", path)
	}
	if err != nil {
		return nil, err
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s is not an ELF executable: %w", path, err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return nil, fmt.Errorf("%s is dynamically linked", path)
		}
	}
	return data, nil
}
