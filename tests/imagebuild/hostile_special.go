package imagebuild

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"errors"
	"maps"
	"path"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Special files: device nodes of host devices, FIFOs, setuid and setgid executables, and
// extended attributes a kernel acts on (file capabilities, overlayfs's own opaque and redirect
// marks). They are legitimate in a tar, so a runtime may store them; what it must not do is let
// them reach a host device, grant privilege beyond the pod's user namespace, or change what the
// overlay shows.

// Names of the special files, for the caller's checks from inside the pod.
const (
	HostileCharDevice  = "/hostile-dev-mem"   // char 1:1, the host's /dev/mem
	HostileKmsgDevice  = "/hostile-dev-kmsg"  // char 1:11, the host's /dev/kmsg
	HostileDiskDevices = "/hostile-disks"     // a directory of block devices (sd, vd, nvme, dm, loop)
	HostileFIFO        = "/hostile-fifo"      // a FIFO
	HostileSetuid      = "/hostile-setuid"    // the probe, owned by 0:0, mode 4755
	HostileSetgid      = "/hostile-setgid"    // the probe, owned by 0:0, mode 2755
	HostileFileCaps    = "/hostile-file-caps" // the probe with security.capability: cap_sys_admin,cap_sys_module+ep
	// HostileOpaqueDir is /etc again with an overlay opaque mark: honoured, it would hide the
	// base layer's /etc/passwd.
	HostileOpaqueDir = "/etc"
	// HostileRedirectDir is a new, empty directory with an overlay redirect mark naming /etc (and,
	// in the canary variant, the canary): honoured, it would show that directory's content.
	HostileRedirectDir = "/hostile-redirect"
)

// HostileDiskNumbers are the block devices of HostileDiskDevices, as major:minor, named after them.
var HostileDiskNumbers = map[string][2]int64{
	"sda": {8, 0}, "vda": {253, 0}, "xvda": {202, 0}, "nvme0n1": {259, 0}, "dm-0": {254, 0}, "loop0": {7, 0},
}

func specialCases() []HostileCase {
	return []HostileCase{
		{"device-char-mem", "a character device 1:1 (the host's /dev/mem) and 1:11 (/dev/kmsg)", HostileCharDevices},
		{"device-block-disks", "block devices with the numbers of the usual host disks", HostileBlockDevices},
		{"device-through-symlink", "a symlink to the canary, then a character device behind it", HostileDeviceThroughSymlink},
		{"fifo-inside", "a FIFO in the image", HostileFIFOInside},
		{"fifo-dotdot", "a FIFO whose name climbs to the canary", HostileFIFODotDot},
		{"setuid-root", "the probe as a setuid and a setgid root executable", HostileSetuidRoot},
		{"xattr-security-capability", "the probe with a security.capability xattr granting cap_sys_admin and cap_sys_module", HostileFileCapability},
		{"xattr-trusted-overlay-opaque", "/etc again with trusted.overlay.opaque=y", HostileTrustedOpaque},
		{"xattr-user-overlay-opaque", "/etc again with user.overlay.opaque=y (the mark of a rootless overlay)", HostileUserOpaque},
		{"xattr-overlay-redirect", "a new directory with trusted. and user.overlay.redirect=/etc", HostileOverlayRedirect},
		{"xattr-overlay-redirect-canary", "a new directory with trusted. and user.overlay.redirect naming the canary", HostileOverlayRedirectCanary},
	}
}

// baseFile returns the content of the file name ("/usr/bin/probe") in o.Base.
func baseFile(o HostileOptions, name string) ([]byte, error) {
	for _, e := range o.Base {
		if e.Type == tar.TypeReg && clean(e.Name) == clean(name) {
			return e.Content, nil
		}
	}
	return nil, errors.New("hostile image: the base layer has no " + name)
}

// HostileCharDevices: /hostile-dev-mem (char 1:1) and /hostile-dev-kmsg (char 1:11).
func HostileCharDevices(dir string, o HostileOptions) error {
	return writeHostileLayer(dir, o,
		Entry{Name: clean(HostileCharDevice), Type: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 1},
		Entry{Name: clean(HostileKmsgDevice), Type: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 11})
}

// HostileBlockDevices: /hostile-disks/NAME, a block device for each of HostileDiskNumbers.
func HostileBlockDevices(dir string, o HostileOptions) error {
	entries := []Entry{Dir(HostileDiskDevices, 0o755, 0, 0)}
	for _, name := range slices.Sorted(maps.Keys(HostileDiskNumbers)) {
		n := HostileDiskNumbers[name]
		entries = append(entries, Entry{Name: clean(HostileDiskDevices + "/" + name), Type: tar.TypeBlock, Mode: 0o666, Devmajor: n[0], Devminor: n[1]})
	}
	return writeHostileLayer(dir, o, entries...)
}

// HostileDeviceThroughSymlink: dev-link -> /CANARY, then dev-link/mem, a character device 1:1.
func HostileDeviceThroughSymlink(dir string, o HostileOptions) error {
	return writeHostileLayer(dir, o,
		RawSymlink("dev-link", o.Canary),
		Entry{Name: "dev-link/mem", Type: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 1})
}

// HostileFIFOInside: /hostile-fifo, a FIFO.
func HostileFIFOInside(dir string, o HostileOptions) error {
	return writeHostileLayer(dir, o, Entry{Name: clean(HostileFIFO), Type: tar.TypeFifo, Mode: 0o666})
}

// HostileFIFODotDot: ../../…/CANARY/fifo-by-dotdot, a FIFO.
func HostileFIFODotDot(dir string, o HostileOptions) error {
	return writeHostileLayer(dir, o, Entry{Name: Climbing(o.Canary) + "/fifo-by-dotdot", Type: tar.TypeFifo, Mode: 0o666})
}

// HostileSetuidRoot: the probe as /hostile-setuid (4755) and /hostile-setgid (2755), owned by 0:0.
func HostileSetuidRoot(dir string, o HostileOptions) error {
	probe, err := baseFile(o, "/usr/bin/probe")
	if err != nil {
		return err
	}
	return writeHostileLayer(dir, o,
		File(HostileSetuid, 0o4755, 0, 0, probe),
		File(HostileSetgid, 0o2755, 0, 0, probe))
}

// Capability numbers (linux/capability.h).
const (
	capSysModule = 16
	capSysAdmin  = 21
)

// fileCapability is a VFS_CAP_REVISION_2 security.capability value (linux/capability.h,
// struct vfs_cap_data): permitted caps, effective flag set, nothing inheritable.
func fileCapability(caps ...uint) []byte {
	var lo, hi uint32
	for _, c := range caps {
		if c < 32 {
			lo |= 1 << c
		} else {
			hi |= 1 << (c - 32)
		}
	}
	const revision2, effective = 0x02000000, 0x000001
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], revision2|effective)
	binary.LittleEndian.PutUint32(b[4:], lo) // permitted, low word
	binary.LittleEndian.PutUint32(b[12:], hi)
	return b
}

// xattrEntry is a tar entry with extended attributes, written as PAX SCHILY.xattr. records.
type xattrEntry struct {
	Entry
	xattrs map[string]string
}

// xattrLayer writes entries with archive/tar, their xattrs as PAX records.
func xattrLayer(entries ...xattrEntry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Typeflag: e.Type, Name: e.Name, Linkname: e.Linkname, Mode: e.Mode, Uid: e.UID, Gid: e.GID, ModTime: epoch, Format: tar.FormatPAX}
		if e.Type == tar.TypeReg {
			hdr.Size = int64(len(e.Content))
		}
		if len(e.xattrs) > 0 {
			hdr.PAXRecords = map[string]string{}
			for k, v := range e.xattrs {
				hdr.PAXRecords["SCHILY.xattr."+k] = v
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.Content); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeXattrLayer(dir string, o HostileOptions, entries ...xattrEntry) error {
	raw, err := xattrLayer(entries...)
	if err != nil {
		return err
	}
	return writeHostileRaw(dir, o, ocispec.ImageConfig{}, raw)
}

// HostileFileCapability: the probe as /hostile-file-caps, with security.capability granting
// cap_sys_admin and cap_sys_module, permitted and effective.
func HostileFileCapability(dir string, o HostileOptions) error {
	probe, err := baseFile(o, "/usr/bin/probe")
	if err != nil {
		return err
	}
	return writeXattrLayer(dir, o, xattrEntry{
		Entry:  File(HostileFileCaps, 0o755, 0, 0, probe),
		xattrs: map[string]string{"security.capability": string(fileCapability(capSysAdmin, capSysModule))},
	})
}

func opaqueEtc(dir string, o HostileOptions, xattr string) error {
	return writeXattrLayer(dir, o, xattrEntry{
		Entry:  Dir(HostileOpaqueDir, 0o755, 0, 0),
		xattrs: map[string]string{xattr: "y"},
	})
}

// HostileTrustedOpaque: /etc/ again, marked trusted.overlay.opaque=y.
func HostileTrustedOpaque(dir string, o HostileOptions) error {
	return opaqueEtc(dir, o, "trusted.overlay.opaque")
}

// HostileUserOpaque: /etc/ again, marked user.overlay.opaque=y, which an overlay mounted with
// userxattr (rootless) reads as its own.
func HostileUserOpaque(dir string, o HostileOptions) error {
	return opaqueEtc(dir, o, "user.overlay.opaque")
}

func redirect(dir string, o HostileOptions, target string) error {
	return writeXattrLayer(dir, o, xattrEntry{
		Entry:  Dir(HostileRedirectDir, 0o755, 0, 0),
		xattrs: map[string]string{"trusted.overlay.redirect": target, "user.overlay.redirect": target},
	})
}

// HostileOverlayRedirect: /hostile-redirect/, marked overlay.redirect=/etc (trusted and user).
func HostileOverlayRedirect(dir string, o HostileOptions) error {
	return redirect(dir, o, "/etc")
}

// HostileOverlayRedirectCanary: /hostile-redirect/, marked overlay.redirect naming the canary by
// its absolute path and, climbing, by a relative one (the kernel takes one value; the absolute
// one is tried here and the relative one goes to the user. namespace).
func HostileOverlayRedirectCanary(dir string, o HostileOptions) error {
	return writeXattrLayer(dir, o, xattrEntry{
		Entry: Dir(HostileRedirectDir, 0o755, 0, 0),
		xattrs: map[string]string{
			"trusted.overlay.redirect": path.Clean(o.Canary),
			"user.overlay.redirect":    strings.TrimSuffix(Climbing(o.Canary), "/"),
		},
	})
}
