// Package mysqltest is what the test suites of the proxy, the backend and
// the fake server (internal/fakemysql) share: a raw MySQL client built on
// package wire, a self-signed TLS certificate, and small helpers for
// polling, leaks, errors and the fake server's command log. It holds no
// protocol knowledge of its own: every packet is built and read by wire.
//
// The raw client is for the protocol's corners that client libraries do
// not reach: it logs in with exactly the capabilities a test chooses (TLS,
// compression and the auth-data encoding included), sends commands packet
// by packet, and reads every response with a wire.Walker, checking that it
// is well-formed for what the client negotiated: sequence ids, EOF packets
// or OK-0xfe terminators per CLIENT_DEPRECATE_EOF, session state in OK
// packets only with CLIENT_SESSION_TRACK.
package mysqltest

import (
	"bufio"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/wire"
)

// maxPacket bounds what the client reads in one packet.
const maxPacket = 1 << 26

// Client is a raw client connection. Its fields are the test's to read and,
// for the protocol's corners (a wrong sequence id, bytes written around
// the framing), to set.
type Client struct {
	T testing.TB
	// TCP is the socket; Conn is TCP, or the TLS connection over it.
	TCP, Conn net.Conn
	// Reader reads Conn, or the compressed stream over it.
	Reader *bufio.Reader
	// Seq is the sequence id of the next packet, either way.
	Seq uint8
	// Caps are the capabilities the client asks for until the greeting,
	// then the negotiated ones.
	Caps uint32
	// Compress: CLIENT_COMPRESS was negotiated; each command starts a new
	// compressed stream.
	Compress bool
	// TLSConfig is the client's side of a TLS upgrade.
	TLSConfig *tls.Config
	Greeting  *wire.Greeting
	// Scramble is the greeting's, for answers computed by the test.
	Scramble []byte
	// What the last login or change of user went through: Switched, an
	// auth switch request came (the last one in Switch); Sha2Path,
	// caching_sha2_password's "fast" or "full" authentication, or "".
	Switched bool
	Switch   wire.AuthSwitchRequest
	Sha2Path string

	out io.Writer // Conn, or compressed framing over it
}

// Dial connects a client to addr without logging in; it asks for caps and
// upgrades to TLS with tlsConfig when a login asks for TLS. The connection
// closes when the test ends, and any read or write that takes more than 30
// seconds fails.
func Dial(t testing.TB, addr string, caps uint32, tlsConfig *tls.Config) *Client {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	return &Client{T: t, TCP: nc, Conn: nc, Reader: bufio.NewReader(nc), out: nc, Caps: caps, TLSConfig: tlsConfig}
}

// Login is what a client logs in with.
type Login struct {
	User, Pass, Schema string
	// Caps: what to ask for; 0, the client's Caps. A Schema adds
	// CLIENT_CONNECT_WITH_DB, TLS adds CLIENT_SSL.
	Caps uint32
	// Plugin is the plugin the first answer is for; "": the greeting's.
	Plugin string
	// TLS: upgrade to TLS first.
	TLS bool
	// PubKey: answer caching_sha2_password's full authentication without
	// TLS with this key at once, instead of asking for the server's.
	PubKey *rsa.PublicKey
}

// ReadGreeting reads the server's greeting.
func (c *Client) ReadGreeting() *wire.Greeting {
	c.T.Helper()
	c.Seq = 0
	g, err := wire.ParseGreeting(c.Read())
	if err != nil {
		c.T.Fatalf("greeting: %v", err)
	}
	c.Greeting, c.Scramble = g, g.AuthData
	return g
}

// Login reads the greeting and runs the connection phase; a refusal is
// returned as *mysql.MyError.
func (c *Client) Login(l Login) error {
	c.T.Helper()
	g := c.ReadGreeting()
	caps := l.Caps
	if caps == 0 {
		caps = c.Caps
	}
	if l.Schema != "" {
		caps |= mysql.CLIENT_CONNECT_WITH_DB
	}
	if l.TLS {
		caps |= mysql.CLIENT_SSL
		c.Write(wire.AppendHandshakeResponse(nil, &wire.HandshakeResponse{Capabilities: caps, MaxPacketSize: 1 << 24,
			Collation: 45, SSLRequest: true}))
		if err := c.UpgradeTLS(); err != nil {
			c.T.Fatalf("TLS handshake: %v", err)
		}
	}
	plugin := l.Plugin
	if plugin == "" {
		plugin = g.AuthPlugin
	}
	c.Caps = caps & g.Capabilities
	c.Write(wire.AppendHandshakeResponse(nil, &wire.HandshakeResponse{
		Capabilities: caps, MaxPacketSize: 1 << 24, Collation: 45, User: l.User,
		AuthData: AuthAnswer(plugin, c.Scramble, l.Pass), Schema: l.Schema, AuthPlugin: plugin,
	}))
	if err := c.AuthResult(l.Pass, l.PubKey); err != nil {
		return err
	}
	c.Compress = c.Caps&mysql.CLIENT_COMPRESS != 0
	return nil
}

// UpgradeTLS runs the TLS handshake after an SSL request.
func (c *Client) UpgradeTLS() error {
	tc := tls.Client(c.TCP, c.TLSConfig)
	if err := tc.Handshake(); err != nil {
		return err
	}
	c.Conn, c.out, c.Reader = tc, tc, bufio.NewReader(tc)
	return nil
}

// AuthAnswer is a client's answer to scramble for plugin (native unless
// caching_sha2_password or mysql_old_password); nil for an empty password.
// A mysql_old_password answer ends with a NUL, as libmariadb sends it.
func AuthAnswer(plugin string, scramble []byte, pass string) []byte {
	switch plugin {
	case mysql.AUTH_CACHING_SHA2_PASSWORD:
		return mysql.CalcCachingSha2Password(scramble, []byte(pass))
	case mysql.AUTH_MYSQL_OLD_PASSWORD:
		if pass == "" {
			return nil
		}
		return append(wire.ScrambleOldPassword(scramble, wire.HashOldPassword([]byte(pass))), 0)
	}
	return mysql.CalcNativePassword(scramble, []byte(pass))
}

// AuthResult follows the server's login packets to OK or ERR, answering
// auth switches and caching_sha2_password's full authentication (in the
// clear over TLS, else encrypted with pubKey or the key it asks for). The
// OK must say autocommit.
func (c *Client) AuthResult(pass string, pubKey *rsa.PublicKey) error {
	c.T.Helper()
	c.Switched, c.Switch, c.Sha2Path = false, wire.AuthSwitchRequest{}, ""
	scramble := c.Scramble
	for {
		p := c.Read()
		switch {
		case p[0] == wire.OKHeader:
			ok, err := wire.ParseOK(p)
			if err != nil {
				c.T.Fatal(err)
			}
			if ok.Status&mysql.SERVER_STATUS_AUTOCOMMIT == 0 {
				c.T.Fatalf("login OK status %#x without autocommit", ok.Status)
			}
			return nil
		case p[0] == wire.ErrHeader:
			return wire.ParseErr(p)
		case wire.IsAuthSwitchRequest(p):
			sw, err := wire.ParseAuthSwitchRequest(p)
			if err != nil {
				c.T.Fatal(err)
			}
			// The old-style request keeps the scramble the client has.
			c.Switched, c.Switch = true, sw
			if !sw.OldStyle {
				scramble = sw.Data
			}
			c.Write(AuthAnswer(sw.Plugin, scramble, pass))
		case wire.IsAuthMoreData(p):
			d, err := wire.ParseAuthMoreData(p)
			if err != nil {
				c.T.Fatal(err)
			}
			switch d[0] {
			case wire.CachingSha2FastAuthOK:
				c.Sha2Path = "fast"
			case wire.CachingSha2FullAuth:
				c.Sha2Path = "full"
				c.fullAuth(pass, scramble, pubKey)
			default:
				c.T.Fatalf("unexpected auth more data %x", d)
			}
		default:
			c.T.Fatalf("unexpected login packet %x", p)
		}
	}
}

// fullAuth sends the password of caching_sha2_password's full
// authentication.
func (c *Client) fullAuth(pass string, scramble []byte, key *rsa.PublicKey) {
	c.T.Helper()
	if _, ok := c.Conn.(*tls.Conn); ok {
		c.Write(wire.AppendClearPassword(nil, pass))
		return
	}
	if key == nil {
		c.Write(wire.AppendPublicKeyRequest(nil))
		pemKey, err := wire.ParseAuthMoreData(c.Read())
		if err != nil {
			c.T.Fatal(err)
		}
		block, _ := pem.Decode(pemKey)
		if block == nil {
			c.T.Fatalf("no PEM public key: %q", pemKey)
		}
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			c.T.Fatal(err)
		}
		key = pub.(*rsa.PublicKey)
	}
	enc, err := mysql.EncryptPassword(pass, scramble, key)
	if err != nil {
		c.T.Fatal(err)
	}
	c.Write(enc)
}

// ChangeUser sends COM_CHANGE_USER answering for plugin (native when
// empty) with the login's scramble, and follows the exchange to OK or ERR.
func (c *Client) ChangeUser(user, pass, schema, plugin string) error {
	c.T.Helper()
	if plugin == "" {
		plugin = mysql.AUTH_NATIVE_PASSWORD
	}
	c.Command(wire.AppendChangeUser(nil, &wire.ChangeUser{User: user, AuthData: AuthAnswer(plugin, c.Scramble, pass),
		Schema: schema, Collation: 45, AuthPlugin: plugin}, c.Caps))
	return c.AuthResult(pass, nil)
}

// ReadPacket reads the next packet, which must carry the next sequence id.
func (c *Client) ReadPacket() ([]byte, error) {
	p, next, err := wire.ReadPacket(c.Reader, nil, maxPacket, c.Seq)
	if err != nil {
		return nil, err
	}
	c.Seq = next
	return p, nil
}

// Read is ReadPacket failing the test on an error.
func (c *Client) Read() []byte {
	c.T.Helper()
	p, err := c.ReadPacket()
	if err != nil {
		c.T.Fatalf("read: %v", err)
	}
	return p
}

// Write sends one packet with the next sequence id.
func (c *Client) Write(payload []byte) {
	c.T.Helper()
	b, next := wire.AppendPacket(nil, payload, c.Seq)
	c.Seq = next
	if _, err := c.out.Write(b); err != nil {
		c.T.Fatalf("write: %v", err)
	}
}

// Command sends a command packet: sequence id 0, and, when compressed, a
// new compressed stream too. The previous response must have been read
// exactly to its end.
func (c *Client) Command(payload []byte) {
	c.T.Helper()
	if n := c.Reader.Buffered(); n != 0 {
		c.T.Fatalf("%d bytes left over after the previous response", n)
	}
	c.Seq = 0
	if c.Compress {
		cz := wire.NewCompressed(c.Conn, maxPacket, nil)
		c.Reader.Reset(cz)
		c.out = cz
	}
	c.Write(payload)
}

// Packet is one packet of a response and what the walker took it for.
type Packet struct {
	Kind    wire.Kind
	Payload []byte
}

// Response reads a whole response of the given shape and checks each
// packet against what the client negotiated.
func (c *Client) Response(shape wire.Shape) []Packet {
	c.T.Helper()
	var w wire.Walker
	w.Reset(shape, c.Caps&mysql.CLIENT_DEPRECATE_EOF != 0)
	var out []Packet
	for !w.Done() {
		p := c.Read()
		kind, err := w.Next(p, len(p))
		if err != nil {
			c.T.Fatalf("response packet %d (%x): %v", len(out), p, err)
		}
		c.checkPacket(kind, p)
		out = append(out, Packet{kind, p})
	}
	return out
}

// checkPacket checks a response packet against the client's capabilities.
func (c *Client) checkPacket(kind wire.Kind, p []byte) {
	c.T.Helper()
	deprecateEOF := c.Caps&mysql.CLIENT_DEPRECATE_EOF != 0
	switch kind {
	case wire.KindDefsEOF:
		if deprecateEOF {
			c.T.Fatalf("EOF after definitions sent to a CLIENT_DEPRECATE_EOF client")
		}
	case wire.KindEOF:
		if classic := wire.IsClassicEOF(p); classic == deprecateEOF {
			c.T.Fatalf("terminator %x: classic EOF %v, client negotiated CLIENT_DEPRECATE_EOF %v", p, classic, deprecateEOF)
		}
	}
	if kind == wire.KindOK || (kind == wire.KindEOF && !wire.IsClassicEOF(p)) {
		ok, err := wire.ParseOK(p)
		if err != nil {
			c.T.Fatalf("OK packet %x: %v", p, err)
		}
		if c.Caps&mysql.CLIENT_SESSION_TRACK == 0 && ok.Status&mysql.SERVER_SESSION_STATE_CHANGED != 0 {
			c.T.Fatalf("OK packet %x carries session state to a client without CLIENT_SESSION_TRACK", p)
		}
	}
}

// Query sends a COM_QUERY and returns its response.
func (c *Client) Query(q string) []Packet {
	c.T.Helper()
	c.Command(wire.AppendCommand(nil, mysql.COM_QUERY, q))
	return c.Response(wire.ShapeResult)
}

// Cmd sends a command of one string argument and returns its response.
func (c *Client) Cmd(cmd byte, arg string, shape wire.Shape) []Packet {
	c.T.Helper()
	c.Command(wire.AppendCommand(nil, cmd, arg))
	return c.Response(shape)
}

// OKPacket returns the OK packet that ends a response, failing on anything
// else.
func (c *Client) OKPacket(resp []Packet) []byte {
	c.T.Helper()
	last := resp[len(resp)-1]
	if last.Kind != wire.KindOK {
		if last.Kind == wire.KindErr {
			c.T.Fatalf("want OK, got %v", wire.ParseErr(last.Payload))
		}
		c.T.Fatalf("want OK, got kind %d %x", last.Kind, last.Payload)
	}
	return last.Payload
}

// MustOK returns the decoded OK packet that ends a response.
func (c *Client) MustOK(resp []Packet) wire.OK {
	c.T.Helper()
	ok, err := wire.ParseOK(c.OKPacket(resp))
	if err != nil {
		c.T.Fatal(err)
	}
	return ok
}

// MustErr returns the ERR packet that ends a response.
func (c *Client) MustErr(resp []Packet) *mysql.MyError {
	c.T.Helper()
	last := resp[len(resp)-1]
	if last.Kind != wire.KindErr {
		c.T.Fatalf("want ERR, got kind %d %x", last.Kind, last.Payload)
	}
	return wire.ParseErr(last.Payload)
}

// QueryErr runs q and returns the error it ends with.
func (c *Client) QueryErr(q string) *mysql.MyError {
	c.T.Helper()
	return c.MustErr(c.Query(q))
}

// Rows returns the text rows of a response (all its result sets), NULL as
// "NULL"; an ERR in it fails the test.
func (c *Client) Rows(resp []Packet) [][]string {
	c.T.Helper()
	for _, rp := range resp {
		if rp.Kind == wire.KindErr {
			c.T.Fatalf("query failed: %v", wire.ParseErr(rp.Payload))
		}
	}
	return TextRows(c.T, resp)
}

// Value runs q and returns the single value of its single row.
func (c *Client) Value(q string) string {
	c.T.Helper()
	rows := c.Rows(c.Query(q))
	if len(rows) != 1 || len(rows[0]) != 1 {
		c.T.Fatalf("%s: rows %v, want one value", q, rows)
	}
	return rows[0][0]
}

// Prepare prepares q and returns the prepare OK the client saw.
func (c *Client) Prepare(q string) wire.PrepareOK {
	c.T.Helper()
	c.Command(wire.AppendCommand(nil, mysql.COM_STMT_PREPARE, q))
	resp := c.Response(wire.ShapePrepare)
	if resp[0].Kind != wire.KindPrepareOK {
		c.T.Fatalf("prepare %q: %v", q, wire.ParseErr(resp[0].Payload))
	}
	ok, err := wire.ParsePrepareOK(resp[0].Payload)
	if err != nil {
		c.T.Fatal(err)
	}
	return ok
}

// Execute sends a COM_STMT_EXECUTE (see ExecutePacket) and returns the
// response.
func (c *Client) Execute(id uint32, flags byte, bind bool, params ...any) []Packet {
	c.T.Helper()
	c.Command(ExecutePacket(id, flags, bind, params...))
	return c.Response(wire.ExecuteShape(flags))
}

// Fetch sends a COM_STMT_FETCH and returns the response.
func (c *Client) Fetch(id, rows uint32) []Packet {
	c.T.Helper()
	c.Command(FetchPacket(id, rows))
	return c.Response(wire.ShapeRows)
}

// ExpectClosed fails the test unless the server closes the connection
// (after any packets still to come, which are returned).
func (c *Client) ExpectClosed() [][]byte {
	c.T.Helper()
	_ = c.TCP.SetReadDeadline(time.Now().Add(15 * time.Second))
	var got [][]byte
	for {
		p, err := c.ReadPacket()
		switch {
		case err == nil:
			got = append(got, p)
			continue
		case errors.Is(err, os.ErrDeadlineExceeded):
			c.T.Fatalf("the server did not close the connection")
		case !isDisconnect(err):
			c.T.Fatalf("read: %v", err)
		}
		return got
	}
}

// isDisconnect is true for the ordinary ways a peer goes away.
func isDisconnect(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed)
}
