// Command probe is copied into kite's test images and reports what a containerized app sees:
// identity, privileges, mounts and fds (info), file owners (stat), signal delivery (trap), reaping
// (zombies), stdio plumbing (output), exit codes (exit), system call filters (syscall),
// networks (interfaces, serve, connect) and escape attempts (tiocsti, watch, swap, setcap,
// as-user). Its JSON is defined in tests/probe/report.
//
// It must stay static (CGO_ENABLED=0) because test images have no libc. It must not open fds the
// app did not inherit, or `probe info` would report them as leaked: so it reads /proc with raw
// open(2) (os.Open registers files with the netpoller, which leaves an epoll fd and an eventfd
// open), and the go:debug line below makes the runtime close the cgroup cpu files it has kept open
// since Go 1.25 to adjust GOMAXPROCS.
//
//go:debug containermaxprocs=0
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `usage:
  probe [info]         print one JSON object describing this process (tests/probe/report.Report)
  probe stat PATH...   print one JSON line per path (report.Stat)
  probe trap SIGNAME   print "ready", wait for the signal, print "got SIGNAME"; exit 3 after 30s
  probe zombies        print how many processes in /proc are zombies
  probe output BYTES   write BYTES pattern bytes to stdout and to stderr in alternating 4 KiB chunks
  probe exit N         exit with status N
  probe listen         serve socket activation's descriptor 3: echo one line, then report LISTEN_* and the fds
  probe notify MSG     send MSG to $NOTIFY_SOCKET (sd_notify)
  probe syscall NAME   make system call NAME (getppid, keyctl, mount), print "NAME: ok" or "NAME: ERRNO"
  probe interfaces     print the network interfaces' names, one a line
  probe serve tcp|udp PORT
                       listen on PORT, print "ready", answer one request with "pod got: " and it
  probe connect [-wait] tcp|udp HOST:PORT
                       send "hello", print the answer (HOST gateway: the default route's);
                       -wait: try a refused connection again for up to 10s
  probe tiocsti FD TEXT
                       push TEXT into the input of the terminal on FD (TIOCSTI), print "tiocsti: ok|ERRNO"
  probe watch SECONDS [STOPFILE]
                       print "ready", try for SECONDS (or until STOPFILE exists) to attach to and
                       read other processes' /proc entries (mem, environ, exe, exe-write, fd),
                       then print a JSON line per success
  probe swap A B SECONDS
                       print "ready", exchange the names A and B (renameat2) for SECONDS
  probe setcap PATH    give PATH all file capabilities, print "setcap: ok|ERRNO"
  probe as-user UID PROG ARGS...
                       exec PROG as UID and GID UID, without supplementary groups
`

// Exit statuses of the probe itself; `probe exit N` uses N instead.
const (
	exitOK      = 0
	exitFailed  = 1
	exitUsage   = 2
	exitTimeout = 3
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "info"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "info":
		return cmdInfo(stdout, stderr)
	case "stat":
		return cmdStat(args, stdout, stderr)
	case "trap":
		return cmdTrap(args, stdout, stderr)
	case "zombies":
		return cmdZombies(stdout, stderr)
	case "output":
		return cmdOutput(args, stdout, stderr)
	case "exit":
		return cmdExit(args, stderr)
	case "listen":
		return cmdListen(stdout, stderr)
	case "notify":
		return cmdNotify(args, stderr)
	case "syscall":
		return cmdSyscall(args, stdout, stderr)
	case "interfaces":
		return cmdInterfaces(stdout, stderr)
	case "serve":
		return cmdServe(args, stdout, stderr)
	case "connect":
		return cmdConnect(args, stdout, stderr)
	case "tiocsti":
		return cmdTIOCSTI(args, stdout, stderr)
	case "watch":
		return cmdWatch(args, stdout, stderr)
	case "swap":
		return cmdSwap(args, stdout, stderr)
	case "setcap":
		return cmdSetcap(args, stdout, stderr)
	case "as-user":
		return cmdAsUser(args, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "probe: unknown command %q\n%s", cmd, usage)
	return exitUsage
}

// usageError prints msg and the usage text and returns the usage exit status.
func usageError(stderr io.Writer, msg string) int {
	fmt.Fprintf(stderr, "probe: %s\n%s", msg, usage)
	return exitUsage
}
