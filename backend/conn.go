package backend

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/wire"
)

// Credentials are what the proxy knows of a user's secret. Plain is empty when
// the config holds only a mysql_native_password hash; Stage1 (SHA1(password))
// is then recovered from the client's own login, which is all a native-password
// login to the server needs.
type Credentials struct {
	User   string
	Plain  string
	Stage1 []byte
	// HasPassword is false for an account with an empty password.
	HasPassword bool
}

// DialOptions describe the session a new server connection should start with.
type DialOptions struct {
	Creds     Credentials
	Schema    string
	Collation uint8
	// Capabilities the client negotiated; the server connection uses the
	// subset that both the server and the proxy's forwarding support, so that
	// packets can pass through unchanged.
	Capabilities uint32
	TLS          *tls.Config
	Timeout      time.Duration
	// Readers lends read buffers; nil gives each response its own.
	Readers *ReaderPool
}

// Capabilities the proxy never asks a server for: compression and TLS are
// handled per hop, connection attributes are the proxy's own business.
const strippedCaps = mysql.CLIENT_SSL | mysql.CLIENT_COMPRESS | mysql.CLIENT_CONNECT_ATTRS |
	mysql.CLIENT_ZSTD_COMPRESSION_ALGORITHM | mysql.CLIENT_OPTIONAL_RESULTSET_METADATA |
	mysql.CLIENT_QUERY_ATTRIBUTES | mysql.CLIENT_SSL_VERIFY_SERVER_CERT | mysql.CLIENT_REMEMBER_OPTIONS |
	mysql.CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS

// ServerCapabilities are the client capabilities that matter to a server
// connection: the ones it is opened with. Sessions whose capabilities agree
// on these may share connections.
// Session tracking is always asked for: the proxy reads the session state
// changes (and, for read-your-writes, the GTID) that OK packets then carry,
// and strips them for clients that did not ask.
//
// CLIENT_DEPRECATE_EOF is never asked for: the proxy converts classic EOF
// packets for clients that negotiated it, so clients with and without it
// share server connections.
func ServerCapabilities(client uint32) uint32 {
	return (client | requiredCaps | mysql.CLIENT_SESSION_TRACK) &^ (strippedCaps | mysql.CLIENT_DEPRECATE_EOF)
}

// requiredCaps are what the proxy's own decoding of OK/ERR/handshake assumes.
const requiredCaps = mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION |
	mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_TRANSACTIONS

// Conn is one connection to a server. It is used by one session at a time and
// is not safe for concurrent use.
type Conn struct {
	nc     net.Conn
	br     *bufio.Reader
	Server *Server

	// Capabilities negotiated with the server.
	Capabilities  uint32
	ServerVersion string
	ConnectionID  uint32
	// Status is the server status flags from the last terminating packet.
	Status uint16

	// broken is set when the connection can no longer be trusted to be at a
	// packet boundary; it is then closed instead of reused.
	broken bool
	// LastUsed is when the connection last finished a command.
	LastUsed time.Time
	// Created is when the connection was opened, for pool.max_lifetime.
	Created time.Time
	// slot: the connection holds one of its server's max_connections slots.
	slot   bool
	closed bool
	// Key is the pool the connection belongs to.
	Key PoolKey
	// State is the session state the connection carries: the log entries
	// it has run since its login or last reset. StateHash fingerprints it.
	State     []StateEntry
	StateHash uint64
	// prepared maps statement text to the server's statement id on this
	// connection; prepOrder is their preparation order, for eviction.
	prepared  map[string]uint32
	prepOrder []string
	// lastColumns are the column names of the last Query's result.
	lastColumns []string
	readers     *ReaderPool
	trackGTID   bool // the session tracks last_gtid
}

// ReaderPool holds the read buffers of server connections: a connection
// only needs one while a response is being read, so idle connections hold
// none. A Cluster owns one and hands it to the connections it opens.
type ReaderPool struct{ p sync.Pool }

func (rp *ReaderPool) get() *bufio.Reader {
	if rp != nil {
		if br, ok := rp.p.Get().(*bufio.Reader); ok {
			return br
		}
	}
	return bufio.NewReaderSize(nil, 32<<10)
}

func (rp *ReaderPool) put(br *bufio.Reader) {
	br.Reset(nil)
	if rp != nil {
		rp.p.Put(br)
	}
}

// Dial opens a connection to addr and logs in as opt.Creds.
func Dial(ctx context.Context, srv *Server, opt DialOptions) (*Conn, error) {
	if opt.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opt.Timeout)
		defer cancel()
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", srv.Address)
	if err != nil {
		return nil, fmt.Errorf("connect to server %s (%s): %w", srv.Name, srv.Address, err)
	}
	c := &Conn{nc: nc, Server: srv, Created: time.Now(), readers: opt.Readers}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	err = c.handshake(opt)
	if !stop() || err != nil {
		nc.Close()
		if err == nil {
			err = ctx.Err()
		}
		var me *mysql.MyError
		if errors.As(err, &me) {
			return nil, me
		}
		return nil, fmt.Errorf("log in to server %s (%s): %w", srv.Name, srv.Address, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

func (c *Conn) handshake(opt DialOptions) error {
	c.acquireReader()
	defer c.ReleaseReader()
	greeting, seq, err := wire.ReadPacket(c.br, nil, 1<<16)
	if err != nil {
		return err
	}
	hs, err := ParseGreeting(greeting)
	if err != nil {
		return err
	}
	c.ServerVersion, c.ConnectionID = hs.Version, hs.ConnectionID
	if hs.Capabilities&requiredCaps != requiredCaps {
		return fmt.Errorf("server lacks protocol 4.1 capabilities (%#x)", hs.Capabilities)
	}
	caps := ServerCapabilities(opt.Capabilities)
	caps &= hs.Capabilities
	caps |= mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA & hs.Capabilities
	if opt.Schema != "" {
		caps |= mysql.CLIENT_CONNECT_WITH_DB
	} else {
		caps &^= mysql.CLIENT_CONNECT_WITH_DB
	}
	seq++
	if opt.TLS != nil {
		if hs.Capabilities&mysql.CLIENT_SSL == 0 {
			return fmt.Errorf("backend_tls is configured but server %s does not offer TLS", c.Server.Name)
		}
		caps |= mysql.CLIENT_SSL
		req := make([]byte, 0, 36)
		req = append(req, 0, 0, 0, 0)
		req = appendHandshakeHead(req, caps, opt.Collation)
		wire.PutHeader(req, len(req)-4, seq)
		if _, err := c.nc.Write(req); err != nil {
			return err
		}
		seq++
		cfg := opt.TLS.Clone()
		if cfg.ServerName == "" {
			host, _, _ := net.SplitHostPort(c.Server.Address)
			cfg.ServerName = host
		}
		tc := tls.Client(c.nc, cfg)
		if err := tc.Handshake(); err != nil {
			return fmt.Errorf("TLS handshake: %w", err)
		}
		c.nc = tc
		c.br.Reset(tc)
	}
	c.Capabilities = caps

	plugin := hs.AuthPlugin
	if plugin != mysql.AUTH_NATIVE_PASSWORD && plugin != mysql.AUTH_CACHING_SHA2_PASSWORD {
		// Answer for native password and let the server switch us if needed.
		plugin = mysql.AUTH_NATIVE_PASSWORD
	}
	authResp, err := scramble(plugin, hs.Salt, opt.Creds)
	if err != nil {
		return err
	}
	resp := make([]byte, 0, 128)
	resp = append(resp, 0, 0, 0, 0)
	resp = appendHandshakeHead(resp, caps, opt.Collation)
	resp = append(resp, opt.Creds.User...)
	resp = append(resp, 0)
	if caps&mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
		resp = wire.AppendLenenc(resp, uint64(len(authResp)))
	} else {
		resp = append(resp, byte(len(authResp)))
	}
	resp = append(resp, authResp...)
	if caps&mysql.CLIENT_CONNECT_WITH_DB != 0 {
		resp = append(resp, opt.Schema...)
		resp = append(resp, 0)
	}
	resp = append(resp, plugin...)
	resp = append(resp, 0)
	if err := c.writePacket(resp, seq); err != nil {
		return err
	}
	return c.finishAuth(plugin, hs.Salt, opt.Creds)
}

// finishAuth reads the server's verdict, answering auth switches and the
// extra rounds of caching_sha2_password.
func (c *Conn) finishAuth(plugin string, salt []byte, creds Credentials) error {
	for range 4 {
		p, seq, err := wire.ReadPacket(c.br, nil, 1<<16)
		if err != nil {
			return err
		}
		if len(p) == 0 {
			return wire.ErrMalformed
		}
		switch p[0] {
		case wire.OKHeader:
			ok, err := wire.ParseOK(p)
			if err != nil {
				return err
			}
			c.Status = ok.Status
			return nil
		case wire.ErrHeader:
			return wire.ParseErr(p)
		case wire.EOFHeader: // auth switch request
			rest := p[1:]
			i := bytes.IndexByte(rest, 0)
			if i < 0 {
				return wire.ErrMalformed
			}
			plugin = string(rest[:i])
			salt = bytes.TrimSuffix(rest[i+1:], []byte{0})
			resp, err := scramble(plugin, salt, creds)
			if err != nil {
				return err
			}
			if err := c.writePacket(append(make([]byte, 4, 4+len(resp)), resp...), seq+1); err != nil {
				return err
			}
		case 0x01: // auth more data (caching_sha2_password)
			if plugin != mysql.AUTH_CACHING_SHA2_PASSWORD || len(p) < 2 {
				return fmt.Errorf("unexpected auth data from server for %s", plugin)
			}
			switch p[1] {
			case 3: // fast auth succeeded; OK follows
				continue
			case 4: // full auth: needs the plain password
				if creds.Plain == "" && creds.HasPassword {
					return fmt.Errorf("server %s wants the plain password for caching_sha2_password full authentication of %q, but the proxy only knows its hash", c.Server.Name, creds.User)
				}
				if _, isTLS := c.nc.(*tls.Conn); isTLS {
					pw := append([]byte(creds.Plain), 0)
					if err := c.writePacket(append(make([]byte, 4, 4+len(pw)), pw...), seq+1); err != nil {
						return err
					}
					continue
				}
				if err := c.writePacket([]byte{0, 0, 0, 0, 2}, seq+1); err != nil {
					return err
				}
				keyPkt, kseq, err := wire.ReadPacket(c.br, nil, 1<<16)
				if err != nil {
					return err
				}
				if len(keyPkt) < 2 || keyPkt[0] != 0x01 {
					return fmt.Errorf("server %s sent no public key", c.Server.Name)
				}
				pub, err := parsePublicKey(keyPkt[1:])
				if err != nil {
					return err
				}
				enc, err := mysql.EncryptPassword(creds.Plain, salt, pub)
				if err != nil {
					return err
				}
				if err := c.writePacket(append(make([]byte, 4, 4+len(enc)), enc...), kseq+1); err != nil {
					return err
				}
			default:
				return fmt.Errorf("unexpected caching_sha2_password state %d", p[1])
			}
		default:
			return fmt.Errorf("unexpected packet %#x during login", p[0])
		}
	}
	return errors.New("login did not finish")
}

func parsePublicKey(pemBytes []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("server public key is not PEM")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("server public key is not RSA")
	}
	return pub, nil
}

// scramble computes the login token for plugin. A native-password token needs
// only SHA1(password), which is what lets the proxy log in for users whose
// config holds just the password hash.
func scramble(plugin string, salt []byte, creds Credentials) ([]byte, error) {
	if !creds.HasPassword {
		return nil, nil
	}
	switch plugin {
	case mysql.AUTH_NATIVE_PASSWORD:
		stage1 := creds.Stage1
		if stage1 == nil {
			s := sha1.Sum([]byte(creds.Plain))
			stage1 = s[:]
		}
		return NativeScramble(salt, stage1), nil
	case mysql.AUTH_CACHING_SHA2_PASSWORD:
		if creds.Plain == "" {
			return nil, fmt.Errorf("server asks for caching_sha2_password for %q, but the proxy only knows a mysql_native_password hash", creds.User)
		}
		return mysql.CalcCachingSha2Password(salt, []byte(creds.Plain)), nil
	case mysql.AUTH_CLEAR_PASSWORD:
		return append([]byte(creds.Plain), 0), nil
	}
	return nil, fmt.Errorf("server asks for authentication plugin %q, which the proxy does not support", plugin)
}

// NativeScramble is SHA1(password) XOR SHA1(salt + SHA1(SHA1(password))).
func NativeScramble(salt, stage1 []byte) []byte {
	stage2 := sha1.Sum(stage1)
	h := sha1.New()
	h.Write(salt)
	h.Write(stage2[:])
	out := h.Sum(nil)
	for i := range out {
		out[i] ^= stage1[i]
	}
	return out
}

func appendHandshakeHead(b []byte, caps uint32, collation uint8) []byte {
	b = append(b, byte(caps), byte(caps>>8), byte(caps>>16), byte(caps>>24))
	b = append(b, 0, 0, 0, 1) // max packet size 16 MiB: only a hint to the server
	b = append(b, collation)
	return append(b, make([]byte, 23)...)
}

// Greeting is the decoded initial handshake packet of a server.
type Greeting struct {
	Version      string
	ConnectionID uint32
	Capabilities uint32
	Collation    uint8
	Status       uint16
	Salt         []byte
	AuthPlugin   string
}

// ParseGreeting decodes a server's initial handshake (protocol 10) or returns
// the error the server sent instead (too many connections, host blocked, ...).
func ParseGreeting(p []byte) (*Greeting, error) {
	if len(p) > 0 && p[0] == wire.ErrHeader {
		return nil, wire.ParseErr(p)
	}
	if len(p) < 1 || p[0] != 10 {
		return nil, errors.New("server speaks an unsupported protocol version")
	}
	g := &Greeting{}
	rest := p[1:]
	i := bytes.IndexByte(rest, 0)
	if i < 0 {
		return nil, wire.ErrMalformed
	}
	g.Version = string(rest[:i])
	rest = rest[i+1:]
	if len(rest) < 4+8+1+2 {
		return nil, wire.ErrMalformed
	}
	g.ConnectionID = uint32(rest[0]) | uint32(rest[1])<<8 | uint32(rest[2])<<16 | uint32(rest[3])<<24
	salt := append([]byte(nil), rest[4:12]...)
	rest = rest[13:]
	g.Capabilities = uint32(rest[0]) | uint32(rest[1])<<8
	rest = rest[2:]
	if len(rest) < 1+2+2+1+10 {
		g.Salt = salt
		g.AuthPlugin = mysql.AUTH_NATIVE_PASSWORD
		return g, nil
	}
	g.Collation = rest[0]
	g.Status = uint16(rest[1]) | uint16(rest[2])<<8
	g.Capabilities |= (uint32(rest[3]) | uint32(rest[4])<<8) << 16
	authLen := int(rest[5])
	rest = rest[16:]
	if g.Capabilities&mysql.CLIENT_SECURE_CONNECTION != 0 {
		n := max(13, authLen-8)
		if len(rest) < n {
			return nil, wire.ErrMalformed
		}
		salt = append(salt, bytes.TrimSuffix(rest[:n], []byte{0})...)
		rest = rest[n:]
	}
	g.Salt = salt
	g.AuthPlugin = mysql.AUTH_NATIVE_PASSWORD
	if g.Capabilities&mysql.CLIENT_PLUGIN_AUTH != 0 {
		if i := bytes.IndexByte(rest, 0); i >= 0 {
			g.AuthPlugin = string(rest[:i])
		} else {
			g.AuthPlugin = string(rest)
		}
	}
	return g, nil
}

func (c *Conn) writePacket(withHeader []byte, seq uint8) error {
	wire.PutHeader(withHeader, len(withHeader)-4, seq)
	_, err := c.nc.Write(withHeader)
	return err
}

// acquireReader attaches a pooled read buffer for the duration of a response.
func (c *Conn) acquireReader() {
	if c.br == nil {
		c.br = c.readers.get()
		c.br.Reset(c.nc)
	}
}

// ReleaseReader gives the read buffer back once a response is complete. A
// buffer still holding unread bytes stays: they belong to this connection.
func (c *Conn) ReleaseReader() {
	c.LastUsed = time.Now()
	if c.br != nil && c.br.Buffered() == 0 {
		c.readers.put(c.br)
		c.br = nil
	}
}

// Reader returns the buffered reader for a response; call ReleaseReader when
// the response has been read to its end.
func (c *Conn) Reader() *bufio.Reader {
	c.acquireReader()
	return c.br
}

// Write sends bytes that are already framed as packets.
func (c *Conn) Write(framed []byte) error {
	_, err := c.nc.Write(framed)
	if err != nil {
		c.broken = true
	}
	return err
}

// SetDeadline bounds the next reads and writes on the connection.
func (c *Conn) SetDeadline(t time.Time) error { return c.nc.SetDeadline(t) }

// MarkBroken records that the connection is no longer at a packet boundary.
func (c *Conn) MarkBroken() { c.broken = true }

// Broken reports whether the connection must be closed instead of reused.
func (c *Conn) Broken() bool { return c.broken }

// Close closes the connection, sending COM_QUIT first when it is healthy so
// the server logs an orderly disconnect instead of an aborted one.
func (c *Conn) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	if c.slot {
		c.Server.releaseSlot()
	}
	if !c.broken {
		_ = c.nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		_, _ = c.nc.Write([]byte{1, 0, 0, 0, mysql.COM_QUIT})
	}
	if c.br != nil {
		c.readers.put(c.br)
		c.br = nil
	}
	return c.nc.Close()
}

// Alive reports whether the server has not closed the connection or sent
// anything unasked, checked without blocking. A server closes connections
// it kills or that idle past wait_timeout; finding that out before sending a
// statement lets the proxy reconnect instead of failing the statement.
func (c *Conn) Alive() bool {
	if c.broken {
		return false
	}
	if c.br != nil && c.br.Buffered() > 0 {
		return false
	}
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return true // TLS: records may arrive unasked; trust the connection
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := true
	var b [1]byte
	err = raw.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK:
		case rerr != nil, n == 0, n > 0:
			// Closed, failed, or data nobody asked for (an error packet
			// before a close): the connection cannot be trusted.
			alive = false
		}
		return true
	})
	if err != nil || !alive {
		c.broken = true
		return false
	}
	return true
}
