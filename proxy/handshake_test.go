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
	// The recovered stage1 logs in anywhere: same token as the plain password.
	other := newSalt()
	if !bytes.Equal(backend.NativeScramble(other, stage1), mysql.CalcNativePassword(other, []byte("s3cret"))) {
		t.Fatal("scramble from stage1 differs from scramble from the password")
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
	p := []byte{byte(caps), byte(caps >> 8), byte(caps >> 16), byte(caps >> 24), 0, 0, 0, 1, 45}
	p = append(p, make([]byte, 23)...)
	p = append(p, user...)
	p = append(p, 0)
	p = wire.AppendLenenc(p, uint64(len(auth)))
	p = append(p, auth...)
	p = append(p, db...)
	p = append(p, 0)
	p = append(p, plugin...)
	return append(p, 0)
}

func TestParseHandshakeResponse(t *testing.T) {
	caps := serverCaps
	p := handshakeResponse(caps, "app", []byte("0123456789abcdefghij"), "shop", mysql.AUTH_NATIVE_PASSWORD)
	r, err := ParseHandshakeResponse(p)
	if err != nil {
		t.Fatal(err)
	}
	if r.User != "app" || r.Schema != "shop" || string(r.AuthData) != "0123456789abcdefghij" || r.AuthPlugin != mysql.AUTH_NATIVE_PASSWORD || r.Collation != 45 {
		t.Fatalf("parsed %+v", r)
	}
	if r, err := ParseHandshakeResponse(p[:32]); err != nil || !r.SSLRequest {
		t.Fatalf("SSL request: %+v %v", r, err)
	}
	for cut := 33; cut < len(p)-30; cut++ {
		_, _ = ParseHandshakeResponse(p[:cut]) // must not panic
	}
}

func FuzzParseClientPackets(f *testing.F) {
	f.Add(handshakeResponse(serverCaps, "app", []byte("0123456789abcdefghij"), "shop", mysql.AUTH_NATIVE_PASSWORD), uint32(serverCaps))
	f.Add([]byte("app\x00\x14aaaaaaaaaaaaaaaaaaaashop\x00\x2d\x00mysql_native_password\x00"), uint32(serverCaps))
	f.Fuzz(func(t *testing.T, p []byte, caps uint32) {
		_, _ = ParseHandshakeResponse(p)
		_, _ = parseChangeUser(p, caps)
		_, _ = backend.ParseGreeting(p)
	})
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

func newTestServer(t testing.TB, h slog.Handler) *Server {
	t.Helper()
	// A server address nothing listens on: logins that get that far fail
	// cleanly at the connect step.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cl := backend.NewCluster([]backend.ServerSpec{{Name: "db1", Address: addr}}, backend.Options{ConnectTimeout: time.Second})
	srv, err := NewServer(Options{
		Users:            []User{{Name: "app", Password: "pw"}, {Name: "h", PasswordHash: "*A4B6157319038724E3560894F7F932C8886EBFCF"}, {Name: "nopw"}},
		HandshakeTimeout: time.Second,
		MaxPacketSize:    1 << 20,
		Cluster:          cl,
		Logger:           slog.New(h),
	})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// FuzzSessionLogin plays arbitrary client bytes against a session's login:
// the session must answer or close, never panic.
func FuzzSessionLogin(f *testing.F) {
	f.Add(wirePacket(handshakeResponse(serverCaps, "app", mysql.CalcNativePassword(make([]byte, 20), []byte("pw")), "", mysql.AUTH_NATIVE_PASSWORD), 1))
	f.Add(wirePacket(handshakeResponse(serverCaps, "app", []byte{1, 2}, "", mysql.AUTH_CACHING_SHA2_PASSWORD), 1))
	f.Add(wirePacket(handshakeResponse(serverCaps, "h", nil, "", "client_ed25519"), 1))
	f.Add([]byte{1, 0, 0, 1, 0})
	h := &panicCatcher{}
	srv := newTestServer(f, h)
	f.Fuzz(func(t *testing.T, in []byte) {
		client, server := net.Pipe()
		sess := newSession(srv, 1, server)
		done := make(chan struct{})
		go sess.run(func() { close(done) })
		go io.Copy(io.Discard, client)
		_ = client.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		_, _ = client.Write(in)
		client.Close()
		<-done
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
