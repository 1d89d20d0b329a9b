package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// socketActivate starts systemd-socket-activate on a port of the test's choosing with kite run
// behind it, and waits until it says that it, and not another program, listens there.
func socketActivate(t *testing.T, dir string, accept bool, app ...string) string {
	t.Helper()
	tool, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		needHost(t, "systemd-socket-activate is not installed (apt-get install systemd)")
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	args := []string{"-l", addr}
	if accept {
		args = append(args, "--accept")
	}
	args = append(args, filepath.Join(binDir, "kite"), "--dir", dir, "run", layoutRef("busybox"), "--")
	cmd := exec.Command(tool, append(args, app...)...)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	want := "Listening on " + addr + " as 3."
	for deadline := time.Now().Add(waitTimeout); !strings.Contains(stderr.String(), want); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("systemd-socket-activate did not say %q: %s", want, stderr.String())
		}
	}
	return addr
}

// listenReport is what `probe listen` sends back after the echo.
type listenReport struct {
	ListenFDs string `json:"listen_fds"`
	ListenPID string `json:"listen_pid"`
	PID       int    `json:"pid"`
	FDs       []int  `json:"fds"`
}

// echo sends a line to addr and reads back the echo and the probe's report.
func echo(t *testing.T, addr, line string) listenReport {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(runTimeout))
	if _, err := fmt.Fprintln(conn, line); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	got, err := r.ReadString('\n')
	if err != nil || got != line+"\n" {
		t.Fatalf("echo of %q: %q, %v", line, got, err)
	}
	doc, err := r.ReadString('\n')
	var rep listenReport
	if err != nil || json.Unmarshal([]byte(doc), &rep) != nil {
		t.Fatalf("the probe's report: %q, %v", doc, err)
	}
	return rep
}

// TestSocketActivation runs kite behind systemd-socket-activate: the app gets the listening
// socket as descriptor 3 and nothing else, LISTEN_FDS=1 and LISTEN_PID its own pid. With --accept,
// each connection gets a pod of its own, with the connection as descriptor 3.
func TestSocketActivation(t *testing.T) {
	dir := sharedDir(t, "busybox")
	for _, accept := range []bool{false, true} {
		t.Run(fmt.Sprintf("accept=%t", accept), func(t *testing.T) {
			before := len(listPods(t, dir))
			addr := socketActivate(t, dir, accept, "probe", "listen")
			connections := 1
			if accept {
				connections = 2
			}
			for i := range connections {
				rep := echo(t, addr, "hello "+strconv.Itoa(i))
				if rep.ListenFDs != "1" || rep.ListenPID != strconv.Itoa(rep.PID) || !slices.Equal(rep.FDs, []int{0, 1, 2, 3}) {
					t.Errorf("the app saw LISTEN_FDS=%q LISTEN_PID=%q as pid %d, with descriptors %v; want 1, its pid, and 0-3",
						rep.ListenFDs, rep.ListenPID, rep.PID, rep.FDs)
				}
			}
			// Each connection's kite run has ended (or ends soon): one pod each.
			for deadline := time.Now().Add(waitTimeout); len(listPods(t, dir)) < before+connections; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("%d pods after %d connections, want %d", len(listPods(t, dir)), connections, before+connections)
				}
			}
		})
	}
	// Descriptors of socket activation meant for another process stay kite's.
	r := kiteWith(t, dir, &options{env: []string{"LISTEN_FDS=1", "LISTEN_PID=1"}}, "run", layoutRef("busybox"), "--", "sh", "-c", "echo ${LISTEN_FDS:-none}")
	wantCode(t, r, 0, "kite run with another process's LISTEN_FDS")
	if strings.TrimSpace(r.Stdout) != "none" {
		t.Errorf("the app got LISTEN_FDS=%s meant for pid 1", r.Stdout)
	}
}

// notifyListener is a NOTIFY_SOCKET, as systemd makes for a Type=notify unit: a datagram socket
// whose messages the test reads with their arrival times.
type notifyListener struct {
	path string
	conn *net.UnixConn
}

type notification struct {
	at   time.Time
	text string
}

func newNotifyListener(t *testing.T) *notifyListener {
	t.Helper()
	dir := newScratchDir(t, "notify-")
	path := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &notifyListener{path: path, conn: conn}
}

// read returns what arrives until timeout passes without a message.
func (l *notifyListener) read(timeout time.Duration) []notification {
	var out []notification
	buf := make([]byte, 4096)
	for {
		l.conn.SetReadDeadline(time.Now().Add(timeout))
		n, err := l.conn.Read(buf)
		if err != nil {
			return out
		}
		out = append(out, notification{time.Now(), string(buf[:n])})
	}
}

// TestSdNotify runs kite under a NOTIFY_SOCKET: in container mode (the default) the app's own
// READY=1 reaches it, when the app sends it, with MAINPID the pid of kite run (the monitor, which
// systemd watches); in started mode kite says READY=1 itself; in ignore mode nothing comes. The
// app never sees the host's socket.
func TestSdNotify(t *testing.T) {
	dir := sharedDir(t, "busybox")
	for _, mode := range []string{"", "started", "ignore"} {
		t.Run("mode="+mode, func(t *testing.T) {
			l := newNotifyListener(t)
			args := []string{"run"}
			if mode != "" {
				args = append(args, "--sd-notify="+mode)
			}
			app := `echo "NOTIFY_SOCKET=$NOTIFY_SOCKET"; touch /run/kite/notify/x 2>/dev/null && echo WRITABLE; sleep 0.4; [ -n "$NOTIFY_SOCKET" ] && probe notify "READY=1
STATUS=serving
MAINPID=2"; sleep 0.3`
			began := time.Now()
			p := start(t, dir, &options{env: []string{"NOTIFY_SOCKET=" + l.path}}, append(args, layoutRef("busybox"), "--", "sh", "-c", app)...)
			got := l.read(1500 * time.Millisecond)
			r := finish(t, p)
			wantCode(t, r, 0, "the app")
			if strings.Contains(r.Stdout, l.path) {
				t.Errorf("the app saw the host's socket: %q", r.Stdout)
			}
			mainpid := fmt.Sprintf("MAINPID=%d", p.cmd.Process.Pid)
			switch mode {
			case "":
				if len(got) != 1 || got[0].text != mainpid+"\nREADY=1\nSTATUS=serving" {
					t.Fatalf("notifications %+v, want the app's READY=1 and STATUS with %s only", got, mainpid)
				}
				if got[0].at.Sub(began) < 400*time.Millisecond {
					t.Errorf("READY=1 came %s after the start, before the app sent it", got[0].at.Sub(began))
				}
				if !strings.Contains(r.Stdout, "NOTIFY_SOCKET=/run/kite/notify/notify.sock") {
					t.Errorf("the app's NOTIFY_SOCKET: %q", r.Stdout)
				}
				if strings.Contains(r.Stdout, "WRITABLE") {
					t.Errorf("the app can write where its sd_notify socket is, into the pod directory")
				}
			case "started":
				if len(got) != 1 || got[0].text != mainpid+"\nREADY=1" {
					t.Fatalf("notifications %+v, want kite's READY=1 with %s", got, mainpid)
				}
				if !strings.Contains(r.Stdout, "NOTIFY_SOCKET=\n") {
					t.Errorf("the app has a NOTIFY_SOCKET in started mode: %q", r.Stdout)
				}
			case "ignore":
				if len(got) != 0 {
					t.Fatalf("notifications %+v, want none", got)
				}
			}
		})
	}
	r := kite(t, dir, "run", "--sd-notify=started", layoutRef("busybox"), "--", "true")
	wantCode(t, r, 125, "--sd-notify=started without NOTIFY_SOCKET")
}

// verifyUnits runs systemd-analyze verify (--user for user units) on units in dir, with a runtime
// directory of the test's own.
func verifyUnits(t *testing.T, dir string, user bool, units ...string) {
	t.Helper()
	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		needHost(t, "systemd-analyze is not installed (apt-get install systemd)")
	}
	args := []string{"verify"}
	if user {
		args = []string{"--user", "verify"}
	}
	for _, u := range units {
		args = append(args, filepath.Join(dir, u))
	}
	// A short runtime directory: the host's own user units put socket paths in it, which
	// must fit in 108 bytes.
	runtimeDir, err := os.MkdirTemp("/tmp", "kx")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(runtimeDir)
	cmd := exec.Command(tool, args...)
	cmd.Env = mergeEnv(os.Environ(), []string{"XDG_RUNTIME_DIR=" + runtimeDir})
	out, err := cmd.CombinedOutput()
	// What it says of the host's own units is not kite's business; of kite's, it is.
	if err != nil || strings.Contains(string(out), "kite") {
		t.Errorf("systemd-analyze %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestSystemdUnits checks the units shipped in contrib/systemd and those kite generate systemd
// writes with systemd-analyze verify (with kite's own path in place of /usr/local/bin/kite).
func TestSystemdUnits(t *testing.T) {
	contrib := filepath.Join(filepath.Dir(binDir), "contrib", "systemd")
	entries, err := os.ReadDir(contrib)
	if err != nil {
		t.Fatalf("the shipped units: %v", err)
	}
	dir := newScratchDir(t, "units-")
	for _, e := range entries {
		unit := strings.ReplaceAll(string(readFile(t, filepath.Join(contrib, e.Name()))), "/usr/local/bin/kite", filepath.Join(binDir, "kite"))
		writeFile(t, filepath.Join(dir, e.Name()), unit)
	}
	verifyUnits(t, dir, false, "kite-web.service")
	// A template is verified through an instance of it.
	verifyUnits(t, dir, true, "kite-web-user.service", "kite-echo.socket", "kite-echo@1.service", "kite-gc.service", "kite-gc.timer")

	data := sharedDir(t, "busybox")
	for _, tc := range []struct {
		name string
		args []string
		want []string // in the unit
	}{
		{"plain", []string{layoutRef("busybox")}, []string{"WantedBy=default.target", "--sd-notify=started", "--name busybox", "SuccessExitStatus=143"}},
		{"system", []string{"--system", "--name", "web", "-e", "GREETING=hello world", "--memory", "64m", layoutRef("busybox"), "--", "sh", "-c", "echo $HOME is 100%"},
			[]string{"WantedBy=multi-user.target", `"-e=GREETING=hello world"`, "--memory=64m", `"echo $$HOME is 100%%"`, "stop --uuid-file %t/kite-web.uuid"}},
		{"container", []string{"--sd-notify=container", "--name", "db", layoutRef("busybox")}, []string{"Type=notify", "--sd-notify=container"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := kite(t, data, append([]string{"generate", "systemd"}, tc.args...)...)
			wantCode(t, r, 0, "kite generate systemd")
			for _, w := range tc.want {
				if !strings.Contains(r.Stdout, w) {
					t.Errorf("the unit lacks %q:\n%s", w, r.Stdout)
				}
			}
			unit := "kite-" + tc.name + ".service"
			writeFile(t, filepath.Join(dir, unit), r.Stdout)
			verifyUnits(t, dir, tc.name != "system", unit)
		})
	}
	r := kite(t, data, "generate", "systemd", "-t", layoutRef("busybox"))
	wantCode(t, r, 125, "generate systemd -t")
}
