package proxy

import (
	"bytes"
	"context"
	"crypto/sha1"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/backend"
	"switchyard/wire"
)

func TestCheckNativeRecoversStage1(t *testing.T) {
	salt := newSalt()
	answer := mysql.CalcNativePassword(salt, []byte("s3cret"))
	s1 := sha1.Sum([]byte("s3cret"))
	s2 := sha1.Sum(s1[:])
	stage1, ok := checkNative(answer, salt, s2[:])
	if !ok || !bytes.Equal(stage1, s1[:]) {
		t.Fatalf("checkNative: ok=%v stage1=%x want %x", ok, stage1, s1)
	}
	if _, ok := checkNative(mysql.CalcNativePassword(salt, []byte("wrong")), salt, s2[:]); ok {
		t.Fatal("wrong password accepted")
	}
	if _, ok := checkNative([]byte{1, 2, 3}, salt, s2[:]); ok {
		t.Fatal("short answer accepted")
	}
}

func TestCheckSha2Fast(t *testing.T) {
	salt := newSalt()
	var c sha2Cache
	u := &User{Name: "u", Password: "pw"}
	c.put(u, "pw", nil)
	e, ok := c.get(u)
	if !ok {
		t.Fatal("cache miss after put")
	}
	if !checkSha2Fast(e.sha2, salt, mysql.CalcCachingSha2Password(salt, []byte("pw"))) {
		t.Fatal("right password rejected")
	}
	if checkSha2Fast(e.sha2, salt, mysql.CalcCachingSha2Password(salt, []byte("pX"))) {
		t.Fatal("wrong password accepted")
	}
	if _, ok := c.get(&User{Name: "u", Password: "pw"}); ok {
		t.Fatal("entry learned for another config entry was used")
	}
}

func handshakeResponse(caps uint32, user string, auth []byte, db, plugin string) []byte {
	return wire.AppendHandshakeResponse(nil, &wire.HandshakeResponse{Capabilities: caps, MaxPacketSize: 1 << 24,
		Collation: 45, User: user, AuthData: auth, Schema: db, AuthPlugin: plugin})
}

// panicCatcher is a slog handler that remembers whether a session panicked.
type panicCatcher struct {
	mu     sync.Mutex
	panics []string
}

func (h *panicCatcher) Enabled(context.Context, slog.Level) bool { return true }
func (h *panicCatcher) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panic") {
		h.mu.Lock()
		h.panics = append(h.panics, r.Message)
		h.mu.Unlock()
	}
	return nil
}
func (h *panicCatcher) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *panicCatcher) WithGroup(string) slog.Handler      { return h }

// newDeadEndServer returns a proxy whose only server address nothing
// listens on: logins that get that far fail cleanly at the connect step.
func newDeadEndServer(t testing.TB, h slog.Handler) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	log := slog.New(h)
	cl := backend.NewCluster([]backend.ServerSpec{{Name: "db1", Address: addr}}, backend.Options{ConnectTimeout: time.Second, Logger: log})
	srv, err := NewServer(Options{
		ListenerOptions: ListenerOptions{
			Users:            []User{{Name: "app", Password: "pw"}, {Name: "h", PasswordHash: "*A4B6157319038724E3560894F7F932C8886EBFCF"}, {Name: "nopw"}},
			HandshakeTimeout: time.Second,
			MaxPacketSize:    1 << 20,
			Logger:           log,
		},
		Servers: cl,
		Pool:    backend.NewPool(backend.PoolOptions{}, cl),
	})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// FuzzSessionLogin plays arbitrary client bytes against a connection's
// login: it must answer or close, never panic.
func FuzzSessionLogin(f *testing.F) {
	f.Add(wirePacket(handshakeResponse(serverCaps, "app", mysql.CalcNativePassword(make([]byte, 20), []byte("pw")), "", mysql.AUTH_NATIVE_PASSWORD), 1))
	f.Add(wirePacket(handshakeResponse(serverCaps, "app", []byte{1, 2}, "", mysql.AUTH_CACHING_SHA2_PASSWORD), 1))
	f.Add(wirePacket(handshakeResponse(serverCaps, "h", nil, "", "client_ed25519"), 1))
	f.Add(wirePacket(handshakeResponse(serverCaps, "nopw", nil, "", mysql.AUTH_NATIVE_PASSWORD), 1))
	f.Add([]byte{1, 0, 0, 1, 0})
	h := &panicCatcher{}
	srv := newDeadEndServer(f, h)
	f.Fuzz(func(t *testing.T, in []byte) {
		client, server := net.Pipe()
		go io.Copy(io.Discard, client)
		srv.start(server)
		_ = client.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		_, _ = client.Write(in)
		client.Close()
		srv.wg.Wait()
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.panics) > 0 {
			t.Fatalf("session panicked: %v", h.panics)
		}
	})
}

func wirePacket(p []byte, seq uint8) []byte {
	out, _ := wire.AppendPacket(nil, p, seq)
	return out
}
