package poddir

import (
	"os"
	"strconv"
	"syscall"
)

// InheritedFd takes the descriptor that the environment variable name carries from kite to the
// process it started (SyncFdEnv, ReadyFdEnv, ...): the variable is unset, so that it reaches no
// further process, and the descriptor is marked close-on-exec, so that it reaches no app. It
// returns -1 when the variable names no descriptor above stdio.
func InheritedFd(name string) int {
	fd, err := strconv.Atoi(os.Getenv(name))
	os.Unsetenv(name)
	if err != nil || fd < 3 {
		return -1
	}
	syscall.CloseOnExec(fd)
	return fd
}
