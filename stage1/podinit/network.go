package podinit

import (
	"fmt"
	"os"

	"github.com/kite-runtime/kite/pkg/syncproto"
	"golang.org/x/sys/unix"
)

// loopbackUp brings up lo, which a new network namespace has down.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up lo: %w", os.NewSyscallError("SIOCGIFFLAGS", err))
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up lo: %w", os.NewSyscallError("SIOCSIFFLAGS", err))
	}
	return nil
}

// awaitNetwork waits until the monitor says the pod's network is up, so that the apps start
// with it.
func awaitNetwork(conn *syncproto.Conn) error {
	m, err := conn.Recv()
	if err != nil {
		return fmt.Errorf("wait for the pod's network: %w", err)
	}
	if m.Type != syncproto.Network {
		return fmt.Errorf("wait for the pod's network: the monitor sent %q", m.Type)
	}
	return nil
}
