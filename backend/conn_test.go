package backend

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"database/sql"
	"encoding/pem"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/internal/fakemysql"
	"switchyard/internal/mysqltest"
	"switchyard/wire"
)

// Logging in to a server: both auth plugins, TLS, the ways a login fails,
// and the connection's own lifecycle (Alive, Abort, Close).

// TestLoginPlugins: the proxy logs in whichever plugin the server announces.
// caching_sha2_password's first login is a full authentication (the password
// RSA-encrypted under the key the proxy asks for, as there is no TLS); the
// fake then caches it and the second login takes the fast path, which has
// its own packet sequence to get right.
func TestLoginPlugins(t *testing.T) {
	for _, plugin := range []string{mysql.AUTH_NATIVE_PASSWORD, mysql.AUTH_CACHING_SHA2_PASSWORD} {
		t.Run(plugin, func(t *testing.T) {
			fake := fakemysql.Start(t, fakemysql.Options{AuthPlugin: plugin, Version: "10.11.42-MariaDB-" + plugin})
			srv := serverAt(fake.Addr())
			for i := range 2 { // full, then fast authentication
				cn := mustDial(t, srv, DialOptions{Creds: appCreds, Schema: "shop"})
				res, err := cn.Query("SELECT USER(), DATABASE()")
				if err != nil {
					t.Fatalf("login %d: query: %v", i+1, err)
				}
				if got := res.Rows[0][0].String; !strings.HasPrefix(got, "app@") {
					t.Errorf("login %d: logged in as %q, want app", i+1, got)
				}
				if got := res.Rows[0][1].String; got != "shop" {
					t.Errorf("login %d: schema %q, want the login schema shop", i+1, got)
				}
				if got := cn.ServerVersion(); got != "10.11.42-MariaDB-"+plugin {
					t.Errorf("ServerVersion %q", got)
				}
				if cn.Capabilities()&mysql.CLIENT_SESSION_TRACK == 0 || cn.Capabilities()&mysql.CLIENT_DEPRECATE_EOF != 0 {
					t.Errorf("negotiated %#x: session tracking is always asked for, DEPRECATE_EOF never", cn.Capabilities())
				}
			}
		})
	}
}

// TestLoginCachingSha2OverTLS: with backend TLS the connection is encrypted
// (the server sees TLS) and caching_sha2_password's full authentication
// sends the password in the clear inside it, then fast authentication works.
func TestLoginCachingSha2OverTLS(t *testing.T) {
	serverTLS, clientTLS := selfSignedTLS(t)
	fake := fakemysql.Start(t, fakemysql.Options{
		AuthPlugin: mysql.AUTH_CACHING_SHA2_PASSWORD,
		TLS:        serverTLS,
		Handle: func(c *fakemysql.Conn, q string) *fakemysql.Result {
			if q == "SELECT tls" {
				return &fakemysql.Result{Columns: []string{"tls"}, Rows: [][]sql.NullString{{{String: strconv.FormatBool(c.TLS()), Valid: true}}}}
			}
			return nil
		},
	})
	c := clusterOver(t, Options{TLS: clientTLS}, fake)
	for i := range 2 {
		cn := mustConnect(t, c, c.Servers()[0], appDial)
		res, err := cn.Query("SELECT tls")
		if err != nil {
			t.Fatal(err)
		}
		if res.Rows[0][0].String != "true" {
			t.Fatalf("login %d: the server saw no TLS", i+1)
		}
		// Over TLS Alive cannot peek at the socket; it trusts the
		// connection rather than failing it.
		if !cn.Alive() {
			t.Errorf("login %d: a healthy TLS connection is not Alive", i+1)
		}
	}
}

// TestLoginTLSRequiredButNotOffered: backend_tls must not silently fall back
// to plain text when the server does not offer TLS.
func TestLoginTLSRequiredButNotOffered(t *testing.T) {
	_, clientTLS := selfSignedTLS(t)
	fake := fakemysql.Start(t, fakemysql.Options{})
	c := clusterOver(t, Options{TLS: clientTLS}, fake)
	_, err := c.Connect(context.Background(), c.Servers()[0], appDial)
	if err == nil || !strings.Contains(err.Error(), "does not offer TLS") {
		t.Fatalf("err %v, want backend_tls refused for a server without TLS", err)
	}
}

// TestLoginFromStage1: a user whose config holds only the native password
// hash logs in with SHA1(password), recovered from the client's own login.
// caching_sha2_password needs the password itself, and says so.
func TestLoginFromStage1(t *testing.T) {
	stage1 := sha1.Sum([]byte("secret"))
	creds := Credentials{User: "app", Stage1: stage1[:], HasPassword: true}

	native := fakemysql.Start(t, fakemysql.Options{})
	cn := mustDial(t, serverAt(native.Addr()), DialOptions{Creds: creds})
	if err := cn.Exec("SELECT 1"); err != nil {
		t.Fatalf("query after a login by Stage1: %v", err)
	}

	sha2 := fakemysql.Start(t, fakemysql.Options{AuthPlugin: mysql.AUTH_CACHING_SHA2_PASSWORD})
	_, err := dial(context.Background(), serverAt(sha2.Addr()), DialOptions{Creds: creds, timeout: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "only knows a mysql_native_password hash") {
		t.Fatalf("caching_sha2_password with only a hash: err %v", err)
	}
}

// TestLoginRefusedByServer: the server's own refusals come back as the bare
// *mysql.MyError, not wrapped, so the proxy can pass the code to its client.
func TestLoginRefusedByServer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		plugin string
		opt    DialOptions
		code   uint16
	}{
		{"wrong password native", mysql.AUTH_NATIVE_PASSWORD, DialOptions{Creds: Credentials{User: "app", Plain: "nope", HasPassword: true}}, mysql.ER_ACCESS_DENIED_ERROR},
		{"wrong password caching_sha2", mysql.AUTH_CACHING_SHA2_PASSWORD, DialOptions{Creds: Credentials{User: "app", Plain: "nope", HasPassword: true}}, mysql.ER_ACCESS_DENIED_ERROR},
		{"no password given", mysql.AUTH_NATIVE_PASSWORD, DialOptions{Creds: Credentials{User: "app"}}, mysql.ER_ACCESS_DENIED_ERROR},
		{"unknown user", mysql.AUTH_NATIVE_PASSWORD, DialOptions{Creds: Credentials{User: "who", Plain: "secret", HasPassword: true}}, mysql.ER_ACCESS_DENIED_ERROR},
		{"unknown schema", mysql.AUTH_NATIVE_PASSWORD, DialOptions{Creds: appCreds, Schema: "nosuch"}, mysql.ER_BAD_DB_ERROR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := fakemysql.Start(t, fakemysql.Options{AuthPlugin: tc.plugin})
			c := clusterOver(t, Options{}, fake)
			_, err := c.Connect(context.Background(), c.Servers()[0], tc.opt)
			me, ok := err.(*mysql.MyError)
			if !ok {
				t.Fatalf("err %T %v, want a bare *mysql.MyError", err, err)
			}
			if me.Code != tc.code {
				t.Fatalf("code %d (%s), want %d", me.Code, me.Message, tc.code)
			}
			if n := c.Servers()[0].ConnErrors.Load(); n != 1 {
				t.Errorf("ConnErrors %d, want 1", n)
			}
		})
	}
}

// TestLoginUnreachable: a server that cannot be reached gives an error that
// names it, so the operator knows which one.
func TestLoginUnreachable(t *testing.T) {
	down := fakemysql.Start(t, fakemysql.Options{})
	down.SetDown(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	for name, addr := range map[string]string{"accept and close": down.Addr(), "nothing listening": dead} {
		t.Run(name, func(t *testing.T) {
			_, err := dial(context.Background(), &Server{Name: "dbX", Address: addr}, DialOptions{Creds: appCreds, timeout: 5 * time.Second})
			if err == nil {
				t.Fatal("logged in to an unreachable server")
			}
			var me *mysql.MyError
			if errors.As(err, &me) {
				t.Fatalf("err %v is a server error; nothing answered", err)
			}
			if !containsAll(err.Error(), "server dbX", addr) {
				t.Fatalf("err %q does not name the server and its address", err)
			}
		})
	}
}

// TestLoginTimeouts: a server that accepts but never greets cannot hold a
// login forever: the caller's context deadline, its cancellation, and the
// cluster's connect timeout each end it.
func TestLoginTimeouts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // accept and say nothing
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	srv := &Server{Name: "mute", Address: ln.Addr().String()}
	for _, tc := range []struct {
		name string
		run  func() error
	}{
		{"context deadline", func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			_, err := dial(ctx, srv, appDial)
			return err
		}},
		{"context cancelled", func() error {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			_, err := dial(ctx, srv, appDial)
			return err
		}},
		{"cluster connect timeout", func() error {
			c := NewCluster([]ServerSpec{{Name: "mute", Address: srv.Address}}, Options{ConnectTimeout: 50 * time.Millisecond, Logger: discardLogger()})
			_, err := c.Connect(context.Background(), c.Servers()[0], appDial)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { done <- tc.run() }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), "server mute") {
					t.Fatalf("err %v, want a login failure naming the server", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("login to a mute server did not end")
			}
		})
	}
}

// TestLoginScripted covers the login exchanges the fake never produces:
// auth switches (to native password, to the clear-text plugin, to one the
// proxy lacks), an unknown plugin in the greeting, and servers that break
// the protocol. The scripted server checks what the proxy answers.
func TestLoginScripted(t *testing.T) {
	salt2 := []byte("ZYXWVUTSRQPONMLKJIHG")
	switchTo := func(plugin string, check func(s *scripted, resp []byte)) func(s *scripted, p *peer) {
		return func(s *scripted, p *peer) {
			if _, err := p.greet(mysql.AUTH_CACHING_SHA2_PASSWORD, 0); err != nil {
				return
			}
			p.write(wire.AppendAuthSwitchRequest(nil, wire.AuthSwitchRequest{Plugin: plugin, Data: salt2}))
			resp, err := p.read()
			if err != nil {
				return
			}
			check(s, resp)
			p.ok()
		}
	}
	for _, tc := range []struct {
		name    string
		script  func(s *scripted, p *peer)
		wantErr string // "": the login succeeds
	}{
		{"auth switch to native password", switchTo(mysql.AUTH_NATIVE_PASSWORD, func(s *scripted, resp []byte) {
			if !bytes.Equal(resp, mysql.CalcNativePassword(salt2, []byte("secret"))) {
				s.fail("native answer to the switch not scrambled with the new salt")
			}
		}), ""},
		{"auth switch to clear password on a plain connection: refused", func(s *scripted, p *peer) {
			if _, err := p.greet(mysql.AUTH_NATIVE_PASSWORD, 0); err == nil {
				p.write(wire.AppendAuthSwitchRequest(nil, wire.AuthSwitchRequest{Plugin: mysql.AUTH_CLEAR_PASSWORD}))
				if resp, err := p.read(); err == nil && len(resp) > 0 {
					s.fail("the password went out in the clear: " + strconv.Quote(string(resp)))
				}
			}
		}, "unencrypted"},
		{"auth switch to an unsupported plugin", func(s *scripted, p *peer) {
			if _, err := p.greet(mysql.AUTH_NATIVE_PASSWORD, 0); err == nil {
				p.write(wire.AppendAuthSwitchRequest(nil, wire.AuthSwitchRequest{Plugin: "client_ed25519", Data: salt2}))
				_, _ = p.read()
			}
		}, `plugin "client_ed25519"`},
		{"unknown plugin in the greeting: answer for native password", func(s *scripted, p *peer) {
			hr, err := p.greet("client_ed25519", 0)
			if err != nil {
				return
			}
			if hr.AuthPlugin != mysql.AUTH_NATIVE_PASSWORD || !bytes.Equal(hr.AuthData, mysql.CalcNativePassword(scriptSalt, []byte("secret"))) {
				s.fail("did not answer an unknown plugin for mysql_native_password")
			}
			if hr.User != "app" || hr.Capabilities&mysql.CLIENT_CONNECT_WITH_DB != 0 {
				s.fail("handshake response: wrong user or asks for a schema it has not got")
			}
			p.ok()
		}, ""},
		{"server without protocol 4.1", func(s *scripted, p *peer) {
			_, _ = p.greet(mysql.AUTH_NATIVE_PASSWORD, mysql.CLIENT_PLUGIN_AUTH|mysql.CLIENT_SECURE_CONNECTION)
		}, "protocol 4.1"},
		{"auth more data for native password", func(s *scripted, p *peer) {
			if _, err := p.greet(mysql.AUTH_NATIVE_PASSWORD, 0); err == nil {
				p.write(wire.AppendAuthMoreData(nil, []byte{wire.CachingSha2FastAuthOK}))
				_, _ = p.read()
			}
		}, "unexpected auth data"},
		{"unknown caching_sha2 state", func(s *scripted, p *peer) {
			if _, err := p.greet(mysql.AUTH_CACHING_SHA2_PASSWORD, 0); err == nil {
				p.write(wire.AppendAuthMoreData(nil, []byte{9}))
				_, _ = p.read()
			}
		}, "caching_sha2_password state 9"},
		{"public key not PEM", fullAuthKey([]byte("not a key")), "not PEM"},
		{"public key not RSA", fullAuthKey(ecdsaPublicPEM(t)), "not RSA"},
		{"public key packet missing", func(s *scripted, p *peer) {
			if _, err := p.greet(mysql.AUTH_CACHING_SHA2_PASSWORD, 0); err != nil {
				return
			}
			p.write(wire.AppendAuthMoreData(nil, []byte{wire.CachingSha2FullAuth}))
			if _, err := p.read(); err == nil {
				p.ok()
			}
		}, "sent no public key"},
		{"garbage packet", func(s *scripted, p *peer) {
			if _, err := p.greet(mysql.AUTH_NATIVE_PASSWORD, 0); err == nil {
				p.write([]byte{0x42, 1, 2})
				_, _ = p.read()
			}
		}, "unexpected packet"},
		{"empty packet", func(s *scripted, p *peer) {
			if _, err := p.greet(mysql.AUTH_NATIVE_PASSWORD, 0); err == nil {
				p.write(nil)
				_, _ = p.read()
			}
		}, "malformed"},
		{"switches that never end", func(s *scripted, p *peer) {
			if _, err := p.greet(mysql.AUTH_NATIVE_PASSWORD, 0); err != nil {
				return
			}
			for range 5 {
				p.write(wire.AppendAuthSwitchRequest(nil, wire.AuthSwitchRequest{Plugin: mysql.AUTH_NATIVE_PASSWORD, Data: salt2}))
				if _, err := p.read(); err != nil {
					return
				}
			}
		}, "login did not finish"},
		{"refused before the greeting (too many connections)", func(s *scripted, p *peer) {
			p.write(wire.AppendErr(nil, mysql.NewError(mysql.ER_CON_COUNT_ERROR, "Too many connections")))
		}, "ERROR 1040"},
		{"not a greeting", func(s *scripted, p *peer) {
			p.write([]byte{9, 'x', 0})
		}, "log in to server db1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startScripted(t, tc.script)
			cn, err := dial(context.Background(), serverAt(s.addr()), DialOptions{Creds: appCreds, timeout: 5 * time.Second})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("login: %v", err)
				}
				cn.Close()
				return
			}
			if err == nil {
				cn.Close()
				t.Fatalf("login succeeded, want an error with %q", tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err %q, want one with %q", err, tc.wantErr)
			}
		})
	}
}

// fullAuthKey is a caching_sha2_password server that asks for full
// authentication and answers the proxy's public key request with pemBytes.
func fullAuthKey(pemBytes []byte) func(s *scripted, p *peer) {
	return func(s *scripted, p *peer) {
		if _, err := p.greet(mysql.AUTH_CACHING_SHA2_PASSWORD, 0); err != nil {
			return
		}
		p.write(wire.AppendAuthMoreData(nil, []byte{wire.CachingSha2FullAuth}))
		req, err := p.read()
		if err != nil {
			return
		}
		if !wire.IsPublicKeyRequest(req) {
			s.fail("full authentication without TLS did not ask for the public key")
		}
		p.write(wire.AppendAuthMoreData(nil, pemBytes))
		_, _ = p.read()
	}
}

// ecdsaPublicPEM is a PEM public key that is not RSA.
func ecdsaPublicPEM(t *testing.T) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// TestConnLifecycle: Alive notices a connection the server closed, without
// blocking and without reading anything; Close says goodbye with COM_QUIT;
// an aborted connection is broken and gets no COM_QUIT.
func TestConnLifecycle(t *testing.T) {
	fake := fakemysql.Start(t, fakemysql.Options{})
	srv := serverAt(fake.Addr())

	killed := mustDial(t, srv, appDial)
	if !killed.Alive() || killed.Broken() {
		t.Fatal("a fresh connection is not Alive")
	}
	if !killed.Alive() { // peeking consumed nothing
		t.Fatal("a second Alive on a healthy connection failed")
	}
	id, _ := strconv.ParseUint(connID(t, killed), 10, 32)
	if !fake.Kill(uint32(id)) {
		t.Fatal("fake has no such connection")
	}
	mysqltest.Eventually(t, "Alive to notice the server closed the connection", func() bool { return !killed.Alive() })
	if !killed.Broken() {
		t.Error("a connection found dead is not marked broken")
	}
	if err := killed.Exec("SELECT 1"); err == nil {
		t.Error("query on a killed connection succeeded")
	}

	closed := mustDial(t, srv, appDial)
	id2 := connID(t, closed)
	fake.ResetLog()
	closed.Close()
	closed.Close() // twice is harmless
	mysqltest.Eventually(t, "COM_QUIT", func() bool { return len(fake.Log()) > 0 })
	if got := fake.Log()[0]; got.Cmd != mysql.COM_QUIT || strconv.Itoa(int(got.ConnID)) != id2 {
		t.Fatalf("server saw %+v, want COM_QUIT from connection %s", got, id2)
	}

	aborted := mustDial(t, srv, appDial)
	fake.ResetLog()
	aborted.Abort()
	if !aborted.Broken() || aborted.Alive() {
		t.Fatal("an aborted connection is not broken")
	}
	aborted.Close()
	mysqltest.Eventually(t, "the fake to drop the aborted connection", func() bool { return fake.Conns() == 0 })
	if sent := commands(fake.Log()); len(sent) != 0 { // the login's own record may land late
		t.Fatalf("aborted connection sent %v", sent)
	}
}

// TestAliveUnaskedData: bytes the server sent unasked (an error packet
// before it closes) mean the connection cannot be trusted.
func TestAliveUnaskedData(t *testing.T) {
	send := make(chan struct{})
	s := startScripted(t, func(s *scripted, p *peer) {
		if !p.loginOK() {
			return
		}
		if _, err := p.command(); err != nil {
			return
		}
		p.ok()
		select { // the client has read the answer: what follows is unasked
		case <-send:
		case <-time.After(5 * time.Second):
			return
		}
		p.seq = 0
		p.write(appendErr(mysql.ER_CON_COUNT_ERROR, "going away"))
		_, _ = p.command() // until the client closes
	})
	cn := mustDial(t, serverAt(s.addr()), appDial)
	if err := cn.Exec("DO 1"); err != nil {
		t.Fatal(err)
	}
	if !cn.Alive() {
		t.Fatal("not Alive before anything unasked came")
	}
	close(send)
	mysqltest.Eventually(t, "Alive to see the unasked packet", func() bool { return !cn.Alive() })
	if !cn.Broken() {
		t.Fatal("not marked broken")
	}
}
