// Package poddir owns the pod directory: the contract between stage0, which writes it, and stage1,
// which executes it. Everything stage1 needs to know about a pod is in these files; new features
// extend the JSON documents here, never stage1's command line.
package poddir

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// File and directory names inside a pod directory. Each app has a directory of its own, AppDir,
// with its ConfigFile, RootfsFile, SeccompFile, UpperDir and WorkDir; the pod's ConfigFile holds
// what the apps share.
const (
	ConfigFile     = "config.json" // OCI runtime-spec: the pod's namespaces, id maps, hostname, limits; an app's process, root, mounts, seccomp
	PodFile        = "pod.json"    // Pod: identity and the apps' images
	AppsDir        = "apps"        // AppsDir/NAME: one directory per app
	RootfsFile     = "rootfs.json" // Rootfs: how to assemble an app's root filesystem
	SeccompFile    = "seccomp.bpf" // an app's seccomp filter compiled to BPF (struct sock_filter[])
	PidFile        = "pid"         // host PID of the pod's init, written once it runs
	CgroupFile     = "cgroup"      // the pod's own cgroup directory, when it has limits
	ExitStatusFile = "exit-status" // ExitStatus, written when the pod ends
	RootfsDir      = "rootfs"      // mount point of the pod's root, with each app's root filesystem below it
	NotifyDir      = "notify"      // holds NotifySocket, the pod's end of sd_notify, bound into the first app
	UpperDir       = "upper"       // an app's overlay upper dir: its writes
	WorkDir        = "work"        // an app's overlay work dir

	// ExitStatusReserveFile holds disk space set aside for ExitStatusFile when the pod is
	// written, and is removed just before that is written.
	ExitStatusReserveFile = "exit-status.reserve"
)

// Directories of DATA/pods, one per stage of a pod's life (stage0/pods has the whole lifecycle).
// stage1 moves a pod itself only to remove it when it ends (--rm).
const (
	EmbryoDir        = "embryo"         // being written by kite
	PreparedDir      = "prepared"       // written by kite prepare
	RunDir           = "run"            // handed to stage1
	ExitedGarbageDir = "exited-garbage" // exited, marked by kite gc
	GarbageDir       = "garbage"        // being removed
)

// Environment variables that carry file descriptors (and the init's PID) across stage0's exec of
// stage1.
const (
	// PreserveFDsAnnotation, in config.json, is how many descriptors from 3 on the app gets from
	// the caller (--preserve-fds).
	PreserveFDsAnnotation = "org.kite-runtime.preserve-fds"
	LockFdEnv             = "_KITE_LOCK_FD"
	SyncFdEnv             = "_KITE_SYNC_FD"
	InitPidEnv            = "_KITE_INIT_PID" // host PID of the pod's init, forked by stage0, for the monitor
	// NotifyFdEnv carries the socket the app's sd_notify messages arrive on (NotifySocket);
	// SdNotifyEnv tells the monitor how to pass readiness on: container or started.
	NotifyFdEnv = "_KITE_NOTIFY_FD"
	SdNotifyEnv = "_KITE_SD_NOTIFY"
	// RawTerminalEnv tells the monitor to put the caller's terminal (stdin) in raw mode for the
	// pod's life, so that every key reaches the app's terminal (--tty with --interactive).
	RawTerminalEnv = "_KITE_RAW_TERMINAL"
)

// NotifySocket is the socket the pod's first app sends sd_notify messages to, in NotifyDir, and
// AppNotifySocket where the app finds it (its NOTIFY_SOCKET).
const (
	NotifySocket    = "notify.sock"
	AppNotifyDir    = "/run/kite/notify"
	AppNotifySocket = AppNotifyDir + "/" + NotifySocket
)

// DefaultPath is the app's PATH when the image sets none: stage0 puts it in config.json, and
// stage1 searches it for the app when the environment somehow lacks PATH.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// SchemaVersion is the version of every JSON document in this package.
const SchemaVersion = 1

// AppDir is the directory of app name, relative to the pod directory.
func AppDir(name string) string { return filepath.Join(AppsDir, name) }

// Exit policies: when a pod with several apps ends.
const (
	// ExitAll: when every app has ended.
	ExitAll = "all"
	// ExitAny: as soon as one app has ended.
	ExitAny = "any"
	// ExitAnyFailure: when every app has ended, or as soon as one fails.
	ExitAnyFailure = "any-failure"
)

// Pod is pod.json.
type Pod struct {
	SchemaVersion int       `json:"schemaVersion"`
	UUID          string    `json:"uuid"`
	Name          string    `json:"name,omitempty"`
	Hostname      string    `json:"hostname"`
	Created       time.Time `json:"created"`
	Apps          []App     `json:"apps"`
	// RemoveOnExit has the monitor remove the pod once it has ended (--rm).
	RemoveOnExit bool `json:"removeOnExit,omitempty"`
	// ExitPolicy says when the pod ends (ExitAll, ExitAny, ExitAnyFailure).
	ExitPolicy string `json:"exitPolicy"`
	// Network is the pod's network; nil in pods of kites that knew only the host's.
	Network *Network `json:"network,omitempty"`
	// OCI is set in a container of kite's OCI runtime.
	OCI *OCI `json:"oci,omitempty"`
}

// App names one app of the pod and the image it runs.
type App struct {
	Name           string `json:"name"`
	Image          string `json:"image"`          // the reference the user gave
	ImageID        string `json:"imageID"`        // the store's image ID
	ManifestDigest string `json:"manifestDigest"` // digest of the manifest it was fetched by
}

// Rootfs is rootfs.json: exactly one of Overlay and Bind is set.
type Rootfs struct {
	SchemaVersion int      `json:"schemaVersion"`
	Overlay       *Overlay `json:"overlay,omitempty"`
	// Bind is a complete, private root filesystem directory to bind-mount: the pod's copy of the
	// image in a store that cannot use overlayfs (the vfs driver).
	Bind string `json:"bind,omitempty"`
	// EmptyVolumes are made before the mounts that use them.
	EmptyVolumes []EmptyVolume `json:"emptyVolumes,omitempty"`
}

// EmptyVolume is a volume of kind empty: a directory in the pod directory, made by stage1 with the
// owner and mode the user gave (ids inside the pod). config.json's bind mounts name it by its path
// relative to the pod directory.
type EmptyVolume struct {
	Dir  string `json:"dir"`
	Mode uint32 `json:"mode"`
	UID  uint32 `json:"uid"`
	GID  uint32 `json:"gid"`
}

// Overlay describes an overlayfs root: the stored layers, read-only, under a per-pod upper dir.
type Overlay struct {
	// Home is the directory the lower entries are relative to. Mounting from inside it with short
	// relative names keeps long layer chains within the one page mount(2) accepts for options.
	Home string `json:"home"`
	// Lower lists the layer directories, top-most first, relative to Home.
	Lower []string `json:"lower"`
	Upper string   `json:"upper"` // absolute
	Work  string   `json:"work"`  // absolute
	// UserXattr is set when the layers keep overlay metadata in user.overlay.* xattrs, as a store
	// populated inside a user namespace does.
	UserXattr bool `json:"userxattr"`
}

// ExitStatus is exit-status.
type ExitStatus struct {
	SchemaVersion int       `json:"schemaVersion"`
	Finished      time.Time `json:"finished"`
	// Code is the pod's exit status as a shell sees it (128+N for signal N).
	Code int `json:"code"`
	// Signal names the signal that killed the app, if one did.
	Signal string `json:"signal,omitempty"`
	// Apps are each app's own ending, in pod.json's order; an app that never ran is left out.
	Apps []AppExit `json:"apps,omitempty"`
}

// AppExit is how one app ended.
type AppExit struct {
	Name   string `json:"name"`
	Code   int    `json:"code"`
	Signal string `json:"signal,omitempty"`
}

// EnterPlan is what kite enter hands kite-stage1 enter on descriptor 3: the command to start
// inside the pod, restricted as the app is. kite-stage1 enter runs in the pod's namespaces but
// outside its pid namespace, where neither the pod directory nor /proc/self can be read.
type EnterPlan struct {
	// App names the app to enter as; Process is its, with the command's arguments.
	App     string         `json:"app"`
	Process *specs.Process `json:"process"`
	// UIDMappings and GIDMappings are the pod's id maps; SetgroupsDenied says whether its user
	// namespace denies setgroups(2).
	UIDMappings     []specs.LinuxIDMapping `json:"uidMappings"`
	GIDMappings     []specs.LinuxIDMapping `json:"gidMappings"`
	SetgroupsDenied bool                   `json:"setgroupsDenied,omitempty"`
	// LastCap is the kernel's last capability (/proc/sys/kernel/cap_last_cap).
	LastCap int `json:"lastCap"`
	// SeccompFilter is the app's compiled filter (seccomp.bpf), if it has one.
	SeccompFilter []byte `json:"seccompFilter,omitempty"`
}

// ReadJSON decodes dir/name into v.
func ReadJSON(dir, name string, v any) error {
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("parse %s: %w", filepath.Join(dir, name), err)
	}
	return nil
}

// WriteJSON writes v to dir/name atomically: a reader sees the old file or the whole new one.
func WriteJSON(dir, name string, v any) error {
	data, err := encode(name, v)
	if err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(dir, name), data, 0o644)
}

// CreateJSON writes v to the new file dir/name, for directories no other process reads yet (an
// embryo pod), where the temporary file and rename of WriteJSON would buy nothing.
func CreateJSON(dir, name string, v any) error {
	data, err := encode(name, v)
	if err != nil {
		return err
	}
	p := filepath.Join(dir, name)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

func encode(name string, v any) ([]byte, error) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", name, err)
	}
	return append(data, '\n'), nil
}

// WriteFileAtomic writes data to a temporary file beside path and renames it over path. It does
// not fsync: every file kite writes this way is either rewritten on the next use (image records)
// or describes a pod that a crash ends anyway, and a reader never sees a partial file.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// PodCgroup is the cgroup directory that CgroupFile in podDir names; "" when the pod has none.
func PodCgroup(podDir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(podDir, CgroupFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	return strings.TrimSpace(string(data)), err
}

// MaxPreservedFDs is the most descriptors a pod can be given: descriptors are C ints, so the last
// one, 3+n-1, must be one.
const MaxPreservedFDs = math.MaxInt32 - 3

// PreservedFDs reads PreserveFDsAnnotation from config.json's annotations: how many descriptors
// from 3 on the app gets.
func PreservedFDs(annotations map[string]string) (int, error) {
	v, ok := annotations[PreserveFDsAnnotation]
	if !ok {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > MaxPreservedFDs {
		return 0, fmt.Errorf("config.json: annotation %s=%q is not a count from 0 to %d", PreserveFDsAnnotation, v, MaxPreservedFDs)
	}
	return n, nil
}
