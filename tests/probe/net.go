package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// netTimeout bounds every wait of the network commands, so a test that goes wrong fails instead of
// hanging.
const netTimeout = 10 * time.Second

// cmdInterfaces prints the names of the network interfaces of the probe's network namespace, one
// a line, from /proc/net/dev.
func cmdInterfaces(stdout, stderr io.Writer) int {
	data, err := readFile("/proc/net/dev")
	if err != nil {
		fmt.Fprintln(stderr, "probe:", err)
		return exitFailed
	}
	for _, line := range strings.Split(string(data), "\n") {
		if name, _, ok := strings.Cut(line, ":"); ok && !strings.Contains(name, "|") {
			fmt.Fprintln(stdout, strings.TrimSpace(name))
		}
	}
	return exitOK
}

// cmdServe listens on PORT of every address for PROTO (tcp or udp), prints "ready", answers one
// request ("pod got: " and what came) and exits.
func cmdServe(args []string, stdout, stderr io.Writer) int {
	if len(args) != 2 {
		return usageError(stderr, "serve needs tcp|udp and a port")
	}
	addr := ":" + args[1]
	fail := func(err error) int { fmt.Fprintln(stderr, "probe:", err); return exitFailed }
	switch args[0] {
	case "tcp":
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintln(stdout, "ready")
		l.(*net.TCPListener).SetDeadline(time.Now().Add(netTimeout))
		c, err := l.Accept()
		if err != nil {
			return fail(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(netTimeout))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return fail(err)
		}
		_, err = fmt.Fprintf(c, "pod got: %s", line)
		if err != nil {
			return fail(err)
		}
	case "udp":
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			return fail(err)
		}
		defer c.Close()
		fmt.Fprintln(stdout, "ready")
		c.SetDeadline(time.Now().Add(netTimeout))
		buf := make([]byte, 1500)
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return fail(err)
		}
		if _, err := c.WriteTo(append([]byte("pod got: "), buf[:n]...), from); err != nil {
			return fail(err)
		}
	default:
		return usageError(stderr, "serve needs tcp or udp")
	}
	return exitOK
}

// cmdConnect sends "hello\n" to ADDR over PROTO and prints the answer's first line. A host of
// "gateway" is the default route's gateway. With -wait, a refused TCP connection is tried again
// for a while, as a server in the same pod may not listen yet.
func cmdConnect(args []string, stdout, stderr io.Writer) int {
	wait := len(args) > 0 && args[0] == "-wait"
	if wait {
		args = args[1:]
	}
	if len(args) != 2 || (args[0] != "tcp" && args[0] != "udp") {
		return usageError(stderr, "connect needs tcp|udp and HOST:PORT")
	}
	fail := func(err error) int { fmt.Fprintln(stderr, "probe:", err); return exitFailed }
	addr := args[1]
	if port, ok := strings.CutPrefix(addr, "gateway:"); ok {
		gw, err := defaultGateway()
		if err != nil {
			return fail(err)
		}
		addr = net.JoinHostPort(gw, port)
	}
	deadline := time.Now().Add(netTimeout)
	var c net.Conn
	var err error
	for {
		c, err = net.DialTimeout(args[0], addr, time.Until(deadline))
		if err == nil || !wait || !errors.Is(err, syscall.ECONNREFUSED) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	c.SetDeadline(deadline)
	if _, err := io.WriteString(c, "hello\n"); err != nil {
		return fail(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fail(err)
	}
	fmt.Fprint(stdout, line)
	return exitOK
}

// defaultGateway reads the IPv4 default route's gateway from /proc/net/route.
func defaultGateway() (string, error) {
	data, err := readFile("/proc/net/route")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 2 && f[1] == "00000000" {
			v, err := strconv.ParseUint(f[2], 16, 32)
			if err != nil {
				return "", err
			}
			ip := make(net.IP, 4)
			binary.LittleEndian.PutUint32(ip, uint32(v))
			return ip.String(), nil
		}
	}
	return "", errors.New("no default route")
}
