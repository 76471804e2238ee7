package proxy

// A raw MySQL client built on package wire, for the protocol corners: it
// logs in with exactly the capabilities a test chooses (TLS and
// compression included), sends commands packet by packet, and reads every
// response with a wire.Walker, checking that it is well-formed for what
// the client negotiated: sequence ids, EOF packets or OK-0xfe terminators
// per CLIENT_DEPRECATE_EOF, session state in OK packets only with
// CLIENT_SESSION_TRACK.

import (
	"bufio"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/wire"
)

// rawCaps are the capabilities a raw client asks for unless told otherwise.
const rawCaps = mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_PLUGIN_AUTH |
	mysql.CLIENT_TRANSACTIONS | mysql.CLIENT_MULTI_RESULTS | mysql.CLIENT_PS_MULTI_RESULTS | mysql.CLIENT_LONG_FLAG |
	mysql.CLIENT_MULTI_STATEMENTS | mysql.CLIENT_LOCAL_FILES

type rawClient struct {
	t        testing.TB
	tcp      net.Conn
	nc       net.Conn // tcp, or TLS over it
	br       *bufio.Reader
	out      io.Writer // nc, or compressed framing over it
	seq      uint8
	caps     uint32 // asked for until the greeting, then negotiated
	compress bool
	greeting *wire.Greeting
	scramble []byte
	// What the last login or change of user went through.
	switched bool   // an auth switch request came
	sha2Path string // "fast", "full" or ""
}

type rawLogin struct {
	user, pass, schema string
	caps               uint32 // 0: rawCaps (plus CLIENT_CONNECT_WITH_DB with a schema)
	plugin             string // the plugin the first answer is for; "": the greeting's
	tls                bool   // upgrade to TLS first
	// pubKey: answer caching_sha2_password's full authentication without
	// TLS with this key at once, instead of asking for the server's.
	pubKey *rsa.PublicKey
}

// dial connects a raw client to the proxy without logging in.
func (h *harness) dial(t testing.TB) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	return &rawClient{t: t, tcp: nc, nc: nc, br: bufio.NewReader(nc), out: nc}
}

// login dials and logs in, failing the test on a refusal.
func (h *harness) login(t testing.TB, l rawLogin) *rawClient {
	t.Helper()
	rc := h.dial(t)
	if err := rc.login(l); err != nil {
		t.Fatalf("login as %s: %v", l.user, err)
	}
	return rc
}

// readGreeting reads the server's greeting.
func (rc *rawClient) readGreeting() *wire.Greeting {
	rc.t.Helper()
	rc.seq = 0
	g, err := wire.ParseGreeting(rc.read())
	if err != nil {
		rc.t.Fatalf("greeting: %v", err)
	}
	rc.greeting, rc.scramble = g, g.AuthData
	return g
}

// login runs the connection phase; a refusal is returned as *mysql.MyError.
func (rc *rawClient) login(l rawLogin) error {
	rc.t.Helper()
	g := rc.readGreeting()
	caps := l.caps
	if caps == 0 {
		caps = rawCaps
		if l.schema != "" {
			caps |= mysql.CLIENT_CONNECT_WITH_DB
		}
	}
	if l.tls {
		caps |= mysql.CLIENT_SSL
		rc.write(wire.AppendHandshakeResponse(nil, &wire.HandshakeResponse{Capabilities: caps, MaxPacketSize: 1 << 24,
			Collation: 45, SSLRequest: true}))
		if err := rc.upgradeTLS(); err != nil {
			rc.t.Fatalf("TLS handshake: %v", err)
		}
	}
	plugin := l.plugin
	if plugin == "" {
		plugin = g.AuthPlugin
	}
	rc.caps = caps & g.Capabilities
	rc.write(wire.AppendHandshakeResponse(nil, &wire.HandshakeResponse{
		Capabilities: caps, MaxPacketSize: 1 << 24, Collation: 45, User: l.user,
		AuthData: authAnswer(plugin, rc.scramble, l.pass), Schema: l.schema, AuthPlugin: plugin,
	}))
	if err := rc.authResult(l.pass, l.pubKey); err != nil {
		return err
	}
	if rc.caps&mysql.CLIENT_COMPRESS != 0 {
		rc.compress = true
	}
	return nil
}

// upgradeTLS runs the TLS handshake after an SSL request.
func (rc *rawClient) upgradeTLS() error {
	tc := tls.Client(rc.tcp, testCert().client)
	if err := tc.Handshake(); err != nil {
		return err
	}
	rc.nc, rc.out, rc.br = tc, tc, bufio.NewReader(tc)
	return nil
}

func authAnswer(plugin string, scramble []byte, pass string) []byte {
	if pass == "" {
		return nil
	}
	if plugin == mysql.AUTH_CACHING_SHA2_PASSWORD {
		return mysql.CalcCachingSha2Password(scramble, []byte(pass))
	}
	return mysql.CalcNativePassword(scramble, []byte(pass))
}

// authResult follows the server's login packets to OK or ERR.
func (rc *rawClient) authResult(pass string, pubKey *rsa.PublicKey) error {
	rc.t.Helper()
	rc.switched, rc.sha2Path = false, ""
	scramble := rc.scramble
	for {
		p := rc.read()
		switch {
		case p[0] == wire.OKHeader:
			ok, err := wire.ParseOK(p)
			if err != nil {
				rc.t.Fatal(err)
			}
			if ok.Status&mysql.SERVER_STATUS_AUTOCOMMIT == 0 {
				rc.t.Fatalf("login OK status %#x without autocommit", ok.Status)
			}
			return nil
		case p[0] == wire.ErrHeader:
			return wire.ParseErr(p)
		case wire.IsAuthSwitchRequest(p):
			sw, err := wire.ParseAuthSwitchRequest(p)
			if err != nil {
				rc.t.Fatal(err)
			}
			rc.switched, scramble = true, sw.Data
			rc.write(authAnswer(sw.Plugin, scramble, pass))
		case wire.IsAuthMoreData(p):
			d, err := wire.ParseAuthMoreData(p)
			if err != nil {
				rc.t.Fatal(err)
			}
			switch d[0] {
			case wire.CachingSha2FastAuthOK:
				rc.sha2Path = "fast"
			case wire.CachingSha2FullAuth:
				rc.sha2Path = "full"
				if _, ok := rc.nc.(*tls.Conn); ok {
					rc.write(wire.AppendClearPassword(nil, pass))
					continue
				}
				key := pubKey
				if key == nil {
					rc.write(wire.AppendPublicKeyRequest(nil))
					pemKey, err := wire.ParseAuthMoreData(rc.read())
					if err != nil {
						rc.t.Fatal(err)
					}
					block, _ := pem.Decode(pemKey)
					if block == nil {
						rc.t.Fatalf("no PEM public key: %q", pemKey)
					}
					pub, err := x509.ParsePKIXPublicKey(block.Bytes)
					if err != nil {
						rc.t.Fatal(err)
					}
					key = pub.(*rsa.PublicKey)
				}
				enc, err := mysql.EncryptPassword(pass, scramble, key)
				if err != nil {
					rc.t.Fatal(err)
				}
				rc.write(enc)
			default:
				rc.t.Fatalf("unexpected auth more data %x", d)
			}
		default:
			rc.t.Fatalf("unexpected login packet %x", p)
		}
	}
}

// readPacket reads the next packet, which must carry the next sequence id.
func (rc *rawClient) readPacket() ([]byte, error) {
	p, next, err := wire.ReadPacket(rc.br, nil, 1<<26, rc.seq)
	if err != nil {
		return nil, err
	}
	rc.seq = next
	return p, nil
}

func (rc *rawClient) read() []byte {
	rc.t.Helper()
	p, err := rc.readPacket()
	if err != nil {
		rc.t.Fatalf("read: %v", err)
	}
	return p
}

// write sends one packet with the next sequence id.
func (rc *rawClient) write(payload []byte) {
	rc.t.Helper()
	b, next := wire.AppendPacket(nil, payload, rc.seq)
	rc.seq = next
	if _, err := rc.out.Write(b); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

// command sends a command packet: sequence id 0, and, when compressed, a
// new compressed frame sequence too. The previous response must have been
// read exactly to its end.
func (rc *rawClient) command(payload []byte) {
	rc.t.Helper()
	if n := rc.br.Buffered(); n != 0 {
		rc.t.Fatalf("%d bytes left over after the previous response", n)
	}
	rc.seq = 0
	if rc.compress {
		cz := wire.NewCompressed(rc.nc, 1<<26, nil)
		rc.br.Reset(cz)
		rc.out = cz
	}
	rc.write(payload)
}

type rawPacket struct {
	kind wire.Kind
	p    []byte
}

// response reads a whole response of the given shape and checks each
// packet against what the client negotiated.
func (rc *rawClient) response(shape wire.Shape) []rawPacket {
	rc.t.Helper()
	var w wire.Walker
	deprecateEOF := rc.caps&mysql.CLIENT_DEPRECATE_EOF != 0
	w.Reset(shape, deprecateEOF)
	var out []rawPacket
	for !w.Done() {
		p := rc.read()
		kind, err := w.Next(p, len(p))
		if err != nil {
			rc.t.Fatalf("response packet %d (%x): %v", len(out), p, err)
		}
		rc.checkPacket(kind, p)
		out = append(out, rawPacket{kind, p})
	}
	return out
}

// checkPacket checks a response packet against the client's capabilities.
func (rc *rawClient) checkPacket(kind wire.Kind, p []byte) {
	rc.t.Helper()
	deprecateEOF := rc.caps&mysql.CLIENT_DEPRECATE_EOF != 0
	switch kind {
	case wire.KindDefsEOF:
		if deprecateEOF {
			rc.t.Fatalf("EOF after definitions sent to a CLIENT_DEPRECATE_EOF client")
		}
	case wire.KindEOF:
		if classic := wire.IsClassicEOF(p); classic == deprecateEOF {
			rc.t.Fatalf("terminator %x: classic EOF %v, client negotiated CLIENT_DEPRECATE_EOF %v", p, classic, deprecateEOF)
		}
	}
	if kind == wire.KindOK || (kind == wire.KindEOF && !wire.IsClassicEOF(p)) {
		ok, err := wire.ParseOK(p)
		if err != nil {
			rc.t.Fatalf("OK packet %x: %v", p, err)
		}
		if rc.caps&mysql.CLIENT_SESSION_TRACK == 0 && ok.Status&mysql.SERVER_SESSION_STATE_CHANGED != 0 {
			rc.t.Fatalf("OK packet %x carries session state to a client without CLIENT_SESSION_TRACK", p)
		}
	}
}

// query sends a COM_QUERY and returns its response.
func (rc *rawClient) query(q string) []rawPacket {
	rc.t.Helper()
	rc.command(wire.AppendCommand(nil, mysql.COM_QUERY, q))
	return rc.response(wire.ShapeResult)
}

// cmd sends a command with a one-packet (or field list, ...) response.
func (rc *rawClient) cmd(cmd byte, arg string, shape wire.Shape) []rawPacket {
	rc.t.Helper()
	rc.command(wire.AppendCommand(nil, cmd, arg))
	return rc.response(shape)
}

// mustOK returns the OK packet that ends a response.
func (rc *rawClient) mustOK(resp []rawPacket) wire.OK {
	rc.t.Helper()
	last := resp[len(resp)-1]
	if last.kind != wire.KindOK {
		if last.kind == wire.KindErr {
			rc.t.Fatalf("want OK, got %v", wire.ParseErr(last.p))
		}
		rc.t.Fatalf("want OK, got kind %d %x", last.kind, last.p)
	}
	ok, err := wire.ParseOK(last.p)
	if err != nil {
		rc.t.Fatal(err)
	}
	return ok
}

// mustErr returns the ERR packet that ends a response.
func (rc *rawClient) mustErr(resp []rawPacket) *mysql.MyError {
	rc.t.Helper()
	last := resp[len(resp)-1]
	if last.kind != wire.KindErr {
		rc.t.Fatalf("want ERR, got kind %d %x", last.kind, last.p)
	}
	return wire.ParseErr(last.p)
}

// queryErr runs q and returns the error it ends with.
func (rc *rawClient) queryErr(q string) *mysql.MyError {
	rc.t.Helper()
	return rc.mustErr(rc.query(q))
}

// rows returns the text rows of a response (all its result sets), NULL as
// "NULL"; an ERR fails the test.
func (rc *rawClient) rows(resp []rawPacket) [][]string {
	rc.t.Helper()
	var rows [][]string
	for _, rp := range resp {
		switch rp.kind {
		case wire.KindErr:
			rc.t.Fatalf("query failed: %v", wire.ParseErr(rp.p))
		case wire.KindRow:
			r, err := wire.ParseTextRow(rp.p, nil)
			if err != nil {
				rc.t.Fatal(err)
			}
			var row []string
			for _, v := range r {
				if v.Valid {
					row = append(row, v.String)
				} else {
					row = append(row, "NULL")
				}
			}
			rows = append(rows, row)
		}
	}
	return rows
}

// value runs q and returns the single value of its single row.
func (rc *rawClient) value(q string) string {
	rc.t.Helper()
	rows := rc.rows(rc.query(q))
	if len(rows) != 1 || len(rows[0]) != 1 {
		rc.t.Fatalf("%s: rows %v, want one value", q, rows)
	}
	return rows[0][0]
}

// terminatorStatus is the status flags of the packet that ends a response
// (or a result in it).
func terminatorStatus(t testing.TB, p []byte) uint16 {
	t.Helper()
	if p[0] == wire.OKHeader || !wire.IsClassicEOF(p) {
		ok, err := wire.ParseOK(p)
		if err != nil {
			t.Fatal(err)
		}
		return ok.Status
	}
	st, err := wire.EOFStatus(p)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// prepare prepares q and returns the prepare OK the client saw.
func (rc *rawClient) prepare(q string) wire.PrepareOK {
	rc.t.Helper()
	rc.command(wire.AppendCommand(nil, mysql.COM_STMT_PREPARE, q))
	resp := rc.response(wire.ShapePrepare)
	if resp[0].kind != wire.KindPrepareOK {
		rc.t.Fatalf("prepare %q: %v", q, wire.ParseErr(resp[0].p))
	}
	ok, err := wire.ParsePrepareOK(resp[0].p)
	if err != nil {
		rc.t.Fatal(err)
	}
	return ok
}

// execute sends a COM_STMT_EXECUTE and returns the response.
func (rc *rawClient) execute(id uint32, flags byte, bind bool, params ...any) []rawPacket {
	rc.t.Helper()
	rc.command(executePacket(id, flags, bind, params...))
	return rc.response(wire.ShapeResult)
}

// executePacket builds a COM_STMT_EXECUTE with int64 or string parameters
// (nil for NULL); bind says whether it carries their types (the
// new-params-bound flag).
func executePacket(id uint32, flags byte, bind bool, params ...any) []byte {
	p := []byte{mysql.COM_STMT_EXECUTE}
	p = binary.LittleEndian.AppendUint32(p, id)
	p = append(p, flags)
	p = binary.LittleEndian.AppendUint32(p, 1)
	if len(params) == 0 {
		return p
	}
	nulls := make([]byte, (len(params)+7)/8)
	var types, values []byte
	for i, v := range params {
		switch v := v.(type) {
		case nil:
			nulls[i/8] |= 1 << (i % 8)
			types = append(types, mysql.MYSQL_TYPE_NULL, 0)
		case int64:
			types = append(types, mysql.MYSQL_TYPE_LONGLONG, 0)
			values = binary.LittleEndian.AppendUint64(values, uint64(v))
		case string:
			types = append(types, mysql.MYSQL_TYPE_VAR_STRING, 0)
			values = wire.AppendLenencString(values, v)
		}
	}
	p = append(p, nulls...)
	if !bind {
		p = append(p, 0)
		return append(p, values...)
	}
	p = append(p, 1)
	p = append(p, types...)
	return append(p, values...)
}

func stmtPacket(cmd byte, id uint32) []byte {
	return binary.LittleEndian.AppendUint32([]byte{cmd}, id)
}

func fetchPacket(id, rows uint32) []byte {
	return binary.LittleEndian.AppendUint32(stmtPacket(mysql.COM_STMT_FETCH, id), rows)
}

func longDataPacket(id uint32, param uint16, data string) []byte {
	p := stmtPacket(mysql.COM_STMT_SEND_LONG_DATA, id)
	p = binary.LittleEndian.AppendUint16(p, param)
	return append(p, data...)
}

// binaryRows decodes the binary-protocol rows of a response whose columns
// are all strings (the fakes send VAR_STRING only).
func binaryRows(t testing.TB, resp []rawPacket) [][]string {
	t.Helper()
	cols := 0
	var rows [][]string
	for _, rp := range resp {
		switch rp.kind {
		case wire.KindErr:
			t.Fatalf("execution failed: %v", wire.ParseErr(rp.p))
		case wire.KindColumnCount:
			n, _, err := wire.Lenenc(rp.p)
			if err != nil {
				t.Fatal(err)
			}
			cols = int(n)
		case wire.KindRow:
			rows = append(rows, binaryRow(t, rp.p, cols))
		}
	}
	return rows
}

func binaryRow(t testing.TB, p []byte, n int) []string {
	t.Helper()
	if p[0] != 0 {
		t.Fatalf("binary row header %x", p[0])
	}
	bitmap := p[1 : 1+(n+7+2)/8]
	rest := p[1+len(bitmap):]
	row := make([]string, n)
	for i := range n {
		if bitmap[(i+2)/8]&(1<<((i+2)%8)) != 0 {
			row[i] = "NULL"
			continue
		}
		v, used, err := wire.LenencString(rest)
		if err != nil {
			t.Fatal(err)
		}
		row[i], rest = string(v), rest[used:]
	}
	return row
}

// expectClosed fails the test unless the proxy closes the connection (after
// any packets still to come, which are returned).
func (rc *rawClient) expectClosed() [][]byte {
	rc.t.Helper()
	_ = rc.tcp.SetReadDeadline(time.Now().Add(15 * time.Second))
	var got [][]byte
	for {
		p, next, err := wire.ReadPacket(rc.br, nil, 1<<26, rc.seq)
		switch {
		case err == nil:
			rc.seq = next
			got = append(got, p)
			continue
		case errors.Is(err, os.ErrDeadlineExceeded):
			rc.t.Fatalf("the proxy did not close the connection")
		case !isDisconnect(err):
			rc.t.Fatalf("read: %v", err)
		}
		return got
	}
}

// errPacket returns the ERR packet among packets, failing if there is none.
func errPacket(t testing.TB, packets [][]byte) *mysql.MyError {
	t.Helper()
	for _, p := range packets {
		if p[0] == wire.ErrHeader {
			return wire.ParseErr(p)
		}
	}
	t.Fatalf("no ERR packet among %x", packets)
	return nil
}
