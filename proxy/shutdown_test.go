package proxy

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/internal/mysqltest"
	"switchyard/wire"
)

// TestShutdownCutsRunningStatement: a statement still running when
// shutdown's context ends is cut: Shutdown returns within its timeout plus
// a second, the server connection is aborted (the fake's SLEEP ends) and
// the client's connection closes.
func TestShutdownCutsRunningStatement(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret"})
	rc.Command(wire.AppendCommand(nil, mysql.COM_QUERY, "SELECT SLEEP(3600)"))
	mysqltest.Eventually(t, "the SLEEP to reach a replica", func() bool { return len(h.ran("SLEEP(3600)")) == 1 })
	const timeout = 300 * time.Millisecond
	start := time.Now()
	err := h.shutdown(timeout)
	if took := time.Since(start); took > timeout+time.Second {
		t.Fatalf("Shutdown took %v with a %v timeout", took, timeout)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want the context's error", err)
	}
	for _, p := range rc.ExpectClosed() {
		if p[0] != wire.ErrHeader {
			t.Fatalf("the cut statement answered %x", p)
		}
	}
	f := h.fake(h.ran("SLEEP(3600)")[0])
	mysqltest.Eventually(t, "the server's statement to end", func() bool { return f.Conns() == 0 })
}

// TestShutdownLetsTransactionFinish: a transaction open at shutdown may
// still commit before the timeout; then the session ends and Shutdown
// returns without cutting anything. No new client is accepted meanwhile.
func TestShutdownLetsTransactionFinish(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	rc := h.login(t, mysqltest.Login{User: "app", Pass: "secret"})
	rc.MustOK(rc.Query("BEGIN"))
	rc.MustOK(rc.Query("INSERT INTO t VALUES (1)"))
	done := make(chan error, 1)
	go func() { done <- h.shutdown(20 * time.Second) }()
	mysqltest.Eventually(t, "shutdown to begin", h.srv.isClosing)
	if nc, err := net.Dial("tcp", h.addr); err == nil {
		_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := nc.Read(make([]byte, 1)); err == nil {
			t.Fatal("a new client got a greeting during shutdown")
		}
		nc.Close()
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) with a transaction open", err)
	case <-time.After(100 * time.Millisecond):
	}
	if ok := rc.MustOK(rc.Query("COMMIT")); ok.Status&mysql.SERVER_STATUS_IN_TRANS != 0 {
		t.Fatal("still in a transaction")
	}
	rc.ExpectClosed()
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if !slices.Contains(h.fake(primaryName).Queries(), "COMMIT") {
		t.Fatal("COMMIT did not reach the primary")
	}
}

// TestShutdownClosesIdleClients: clients waiting for their next command
// outside a transaction are closed at once.
func TestShutdownClosesIdleClients(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	plain := h.login(t, mysqltest.Login{User: "app", Pass: "secret"})
	secure := h.login(t, mysqltest.Login{User: "app", Pass: "secret", TLS: true, Caps: rawCaps | mysql.CLIENT_COMPRESS})
	c := h.session(t, "app", "secret", "shop")
	mustValue(t, c, "SELECT 1")
	if err := h.shutdown(20 * time.Second); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	plain.ExpectClosed()
	secure.ExpectClosed()
	// Serve after Shutdown refuses.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.srv.Serve(l); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
	// And a connection that slipped past the listener is closed.
	client, server := net.Pipe()
	h.srv.start(server)
	if _, err := client.Read(make([]byte, 1)); err == nil {
		t.Fatal("a connection started after Shutdown got a greeting")
	}
	client.Close()
}
