package syncproto

import (
	"errors"
	"io"
	"reflect"
	"testing"
)

func TestRoundTripAndEOF(t *testing.T) {
	p, c, err := Pair()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	want := Message{Type: Error, Code: 127, Text: "exec foo: not found"}
	if err := c.Send(want); err != nil {
		t.Fatal(err)
	}
	if err := c.Send(Message{Type: Exited, Status: 7 << 8}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	got, err := p.Recv()
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Recv = %+v, %v; want %+v", got, err, want)
	}
	// Datagrams keep their boundaries: the second message arrives whole and alone.
	if m, err := p.Recv(); err != nil || m.Type != Exited || m.Status != 7<<8 {
		t.Fatalf("second Recv = %+v, %v; want exited with status %d", m, err, 7<<8)
	}
	if _, err := p.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("Recv after the peer closed = %v, want io.EOF", err)
	}
}

func TestFromEnvRejectsGarbage(t *testing.T) {
	t.Setenv("_KITE_TEST_FD", "stdin")
	if _, err := FromEnv("_KITE_TEST_FD"); err == nil {
		t.Fatal("FromEnv accepted a non-number")
	}
}
