package sockpeek

import (
	"net"
	"testing"
	"time"
)

// TestPeek: nothing waiting, bytes waiting (and still there after the
// peek), the peer gone; a connection without a socket reports neither.
func TestPeek(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	p := New(server)
	if data, closed := p.Peek(); data || closed {
		t.Fatalf("idle socket: data %v, closed %v", data, closed)
	}
	if _, err := client.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the byte", func() bool { data, _ := p.Peek(); return data })
	b := make([]byte, 1)
	if _, err := server.Read(b); err != nil || b[0] != 'x' {
		t.Fatalf("the peeked byte was consumed: %q, %v", b, err)
	}
	client.Close()
	waitFor(t, "the close", func() bool { _, closed := p.Peek(); return closed })

	a, _ := net.Pipe()
	defer a.Close()
	if data, closed := New(a).Peek(); data || closed {
		t.Fatalf("pipe: data %v, closed %v", data, closed)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s seen", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestExpiredDeadlineIsNotClosed: a live peer whose socket has an expired
// read deadline (a client's idle deadline, kept from an earlier wait, while
// its long statement runs) is not reported closed. Before, Peek read
// through the deadline check and took its error for a closed socket, and
// the gone-client watcher killed live clients mid-statement (found in
// review).
func TestExpiredDeadlineIsNotClosed(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	peer, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(-time.Second))
	if _, closed := New(c).Peek(); closed {
		t.Fatal("the peer is alive, but Peek says closed (an expired read deadline)")
	}
}
