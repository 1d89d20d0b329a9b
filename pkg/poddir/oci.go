package poddir

import specs "github.com/opencontainers/runtime-spec/specs-go"

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
)

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
