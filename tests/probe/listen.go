package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// listenReport is what `probe listen` tells its client after the echo.
type listenReport struct {
	ListenFDs  string `json:"listen_fds"`
	ListenPID  string `json:"listen_pid"`
	PID        int    `json:"pid"`
	FDs        []int  `json:"fds"`
	FDNames    string `json:"listen_fdnames"`
	NotifySock string `json:"notify_socket"`
}

// cmdListen serves socket activation's descriptor 3 (sd_listen_fds(3)): a listening socket, from
// which it accepts one connection, or a connection (systemd's Accept=yes). It reads one line from
// the connection and writes it back, then a JSON listenReport line, and exits.
func cmdListen(stdout, stderr io.Writer) int {
	r := listenReport{ListenFDs: os.Getenv("LISTEN_FDS"), ListenPID: os.Getenv("LISTEN_PID"), PID: os.Getpid(),
		FDNames: os.Getenv("LISTEN_FDNAMES"), NotifySock: os.Getenv("NOTIFY_SOCKET")}
	// The descriptors first, before the connection adds one.
	fds, err := openFDs()
	if err != nil {
		fmt.Fprintln(stderr, "probe:", err)
		return exitFailed
	}
	for _, fd := range fds {
		r.FDs = append(r.FDs, fd.FD)
	}
	conn := 3
	if listening, err := unix.GetsockoptInt(3, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil {
		fmt.Fprintln(stderr, "probe: descriptor 3 is not a socket:", err)
		return exitFailed
	} else if listening == 1 {
		if conn, _, err = unix.Accept(3); err != nil {
			fmt.Fprintln(stderr, "probe: accept:", err)
			return exitFailed
		}
	}
	f := os.NewFile(uintptr(conn), "connection")
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil {
		fmt.Fprintln(stderr, "probe: read:", err)
		return exitFailed
	}
	doc, _ := json.Marshal(r)
	if _, err := fmt.Fprintf(f, "%s%s\n", line, doc); err != nil {
		fmt.Fprintln(stderr, "probe: write:", err)
		return exitFailed
	}
	f.Close()
	return exitOK
}

// cmdNotify sends msg to $NOTIFY_SOCKET as one datagram, as sd_notify(3) does.
func cmdNotify(args []string, stderr io.Writer) int {
	if len(args) != 1 {
		return usageError(stderr, "notify needs one message, e.g. READY=1")
	}
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		fmt.Fprintln(stderr, "probe: NOTIFY_SOCKET is not set")
		return exitFailed
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		fmt.Fprintln(stderr, "probe:", err)
		return exitFailed
	}
	defer unix.Close(fd)
	if err := unix.Sendto(fd, []byte(args[0]), 0, &unix.SockaddrUnix{Name: addr}); err != nil {
		fmt.Fprintln(stderr, "probe: send to", addr+":", err)
		return exitFailed
	}
	return exitOK
}
