package syncproto

// Fuzz target for the monitor's and the init's decoding of a sync datagram. `make unit` runs its
// seeds; `make fuzz` fuzzes it for $(FUZZTIME).

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
)

// FuzzRecv sends any datagram over a real socketpair and checks Recv: an empty datagram reads as
// the peer's end (io.EOF), any other decodes exactly as JSON does its first maxMessage bytes
// (an error otherwise, never a panic), and a message received is sent and received again
// unchanged.
func FuzzRecv(f *testing.F) {
	for _, s := range []string{
		`{"type":"error","code":127,"message":"exec foo: not found"}`, `{"type":"exited","status":1792,"apps":[{"name":"a","status":9}]}`,
		`{"type":"started","pid":7}`, `{"type":"mapped"}`, ``, `null`, `{"type":1}`, `{"pid":1e400}`, `{"apps":[]}`, `{"message":"\ud800"}`,
		`{"type":"exited"} trailing`, `{"type":"a","type":"b"}`, `{"TYPE":"created"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 2*maxMessage {
			return // beyond what a socketpair's buffer takes in one datagram
		}
		p, c, err := Pair()
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		defer c.Close()
		if _, err := c.File().Write(data); err != nil {
			t.Fatalf("send %d bytes: %v", len(data), err)
		}
		m, err := p.Recv()
		if len(data) == 0 {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("an empty datagram: Recv = %+v, %v; want io.EOF", m, err)
			}
			return
		}
		var want Message
		wantErr := json.Unmarshal(data[:min(len(data), maxMessage)], &want)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("Recv(%q) = %+v, %v; JSON says %v", data, m, err, wantErr)
		}
		if err != nil {
			return
		}
		first, _ := json.Marshal(m)
		if w, _ := json.Marshal(want); !bytes.Equal(first, w) {
			t.Fatalf("Recv(%q) = %s, want %s", data, first, w)
		}
		if len(first) > maxMessage {
			return
		}
		if err := c.Send(m); err != nil {
			t.Fatal(err)
		}
		again, err := p.Recv()
		if err != nil {
			t.Fatalf("Recv of %s sent again: %v", first, err)
		}
		if second, _ := json.Marshal(again); !bytes.Equal(first, second) {
			t.Fatalf("%s sent again arrives as %s", first, second)
		}
	})
}
