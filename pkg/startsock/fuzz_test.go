package startsock

// Fuzz targets for the start socket's two decoders: the monitor's filter of requests (Accept) and
// kite oci start's reading of the monitor's answer (Request). `make unit` runs their seeds; `make
// fuzz` fuzzes each for $(FUZZTIME).

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/kite-runtime/kite/pkg/poddir"
	"golang.org/x/sys/unix"
)

// FuzzRequest answers kite oci start's request with any datagram and checks Request: an empty
// answer means no monitor waits (ErrNotWaiting), any other decodes exactly as JSON decodes its
// first 64 KiB (an error otherwise, never a panic).
func FuzzRequest(f *testing.F) {
	for _, s := range []string{`{"ok":true}`, `{"ok":false,"error":"exec: no such file","code":127}`, ``, `null`, `{"ok":"yes"}`, `{"code":1e99}`, `[`, `{"ok":true}{"ok":false}`} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	l, err := Listen(dir)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { l.Close(dir) })
	f.Fuzz(func(t *testing.T, answer []byte) {
		if len(answer) > 128<<10 {
			return // beyond what a socket's buffer takes in one datagram
		}
		served := make(chan error, 1)
		go func() {
			fd, _, err := unix.Accept4(l.fd, unix.SOCK_CLOEXEC)
			if err != nil {
				served <- err
				return
			}
			defer unix.Close(fd)
			buf := make([]byte, 64)
			if _, err := unix.Read(fd, buf); err != nil {
				served <- err
				return
			}
			_, err = unix.Write(fd, answer)
			served <- err
		}()
		m, err := Request(dir)
		select {
		case serr := <-served:
			if serr != nil {
				t.Fatalf("the fake monitor: %v", serr)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("Request answered %q = %+v, %v without asking the monitor", answer, m, err)
		}
		if len(answer) == 0 {
			if !errors.Is(err, ErrNotWaiting) {
				t.Fatalf("an empty answer: Request = %+v, %v; want ErrNotWaiting", m, err)
			}
			return
		}
		var want poddir.ReadyMessage
		wantErr := json.Unmarshal(answer[:min(len(answer), 64<<10)], &want)
		if (err != nil) != (wantErr != nil) || err == nil && m != want {
			t.Fatalf("Request answered %q = %+v, %v; want %+v, %v", answer, m, err, want, wantErr)
		}
	})
}

// FuzzAccept sends any request, then kite oci start's, and checks that the monitor's Accept takes
// the first only when it is exactly kite oci start's request, and that the answer reaches the
// connection it took.
func FuzzAccept(f *testing.F) {
	for _, s := range []string{request, "", "star", "start\x00", "START", "startstart", string(make([]byte, 100))} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	l, err := Listen(dir)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { l.Close(dir) })
	d, path, err := inDir(dir) // path names the socket through d, which must stay open
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { d.Close() })
	f.Fuzz(func(t *testing.T, req []byte) {
		if len(req) > 128<<10 {
			return
		}
		// Two clients, connected in order: the fuzzed request, then kite oci start's.
		var clients [2]int
		for i, r := range [][]byte{req, []byte(request)} {
			fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(fd)
			if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
				t.Fatal(err)
			}
			if _, err := unix.Write(fd, r); err != nil {
				t.Fatal(err)
			}
			clients[i] = fd
		}
		accepted := make(chan *Conn, 1)
		go func() {
			c, err := l.Accept()
			if err != nil {
				t.Error(err)
			}
			accepted <- c
		}()
		var c *Conn
		select {
		case c = <-accepted:
		case <-time.After(10 * time.Second):
			t.Fatalf("Accept took neither request (%q, then %q)", req, request)
		}
		if c == nil {
			return
		}
		want := poddir.ReadyMessage{OK: false, Error: "e", Code: 3}
		c.Reply(want)
		winner, loser := clients[1], clients[0]
		if string(req) == request {
			winner, loser = clients[0], clients[1]
		}
		buf := make([]byte, 1024)
		n, err := unix.Read(winner, buf)
		var got poddir.ReadyMessage
		if err != nil || json.Unmarshal(buf[:n], &got) != nil || got != want {
			t.Fatalf("request %q: the accepted client read %q, %v", req, buf[:max(n, 0)], err)
		}
		if string(req) == request {
			// The second, valid request is still queued: take and answer it too, so that the
			// next input starts with an empty queue.
			c2, err := l.Accept()
			if err != nil {
				t.Fatal(err)
			}
			c2.Reply(want)
			unix.Read(loser, buf)
			return
		}
		// The refused client's connection was closed unanswered.
		if n, err := unix.Read(loser, buf); n > 0 {
			t.Fatalf("request %q was refused but its client read %q, %v", req, buf[:n], err)
		}
	})
}
