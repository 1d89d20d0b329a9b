package poddir

import (
	"bytes"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// OCI marks a pod that is a container of kite's OCI runtime (kite oci): a pod of one app whose
// directory is the container's state directory. Its init stops once the container is created and
// runs the app only when kite oci start asks, and its hooks run at the points runtime-spec's
// lifecycle names.
type OCI struct {
	ID string `json:"id"`
	// Bundle is the bundle's absolute path, as the state reports it.
	Bundle      string            `json:"bundle"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Hooks       *specs.Hooks      `json:"hooks,omitempty"`
	// ConsoleSocket is where the controlling side of the app's terminal goes (create
	// --console-socket), when config.json asks for a terminal.
	ConsoleSocket string `json:"consoleSocket,omitempty"`
}

// Files of an OCI container's directory, beside the pod directory's.
const (
	// StartedFile is written by the monitor once the app runs: the container is running.
	StartedFile = "started"
	// StartSocket is where the monitor of a created container waits for kite oci start.
	StartSocket = "start.sock"
	// InitStartFile holds the init's start time (field 22 of /proc/PID/stat), which tells the
	// init from a later process of the same pid once its monitor is gone.
	InitStartFile = "init-start"
)

// ProcessStart reads the start time of process pid (clock ticks after boot), "" if it has
// ended (or is a zombie).
func ProcessStart(pid int) string {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	// The command name, in parentheses, may hold spaces: the fields follow its last ")".
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return ""
	}
	fields := strings.Fields(string(data[i+1:]))
	// fields[0] is field 3, the state; field 22 is the start time.
	if len(fields) < 20 || fields[0] == "Z" || fields[0] == "X" {
		return ""
	}
	return fields[19]
}

// ReadyFdEnv carries the pipe on which an OCI container's monitor tells kite oci create that the
// container is created, or why it is not (a ReadyMessage).
const ReadyFdEnv = "_KITE_READY_FD"

// InitPidfdEnv carries a pidfd of an OCI container's init to its monitor, which is the init's
// sibling, not its parent.
const InitPidfdEnv = "_KITE_INIT_PIDFD"

// ReadyMessage is the monitor's answer to kite oci create, and to kite oci start on StartSocket.
type ReadyMessage struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	Code  int    `json:"code,omitempty"`
}

// State is the runtime-spec state of a container (runtime.md, "State").
func (o *OCI) State(status string, pid int) specs.State {
	return specs.State{Version: specs.Version, ID: o.ID, Status: specs.ContainerState(status), Pid: pid, Bundle: o.Bundle, Annotations: o.Annotations}
}
