package fakemysql

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	driver "github.com/go-sql-driver/mysql"

	"switchyard/wire"
)

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// myErr returns the server error code in err (go-sql-driver's or go-mysql's
// error type), or 0.
func myErr(err error) (uint16, string, string) {
	var de *driver.MySQLError
	if errors.As(err, &de) {
		return de.Number, string(de.SQLState[:]), de.Message
	}
	var me *mysql.MyError
	if errors.As(err, &me) {
		return me.Code, me.State, me.Message
	}
	return 0, "", ""
}

func wantCode(t *testing.T, err error, code uint16) {
	t.Helper()
	if got, _, _ := myErr(err); got != code {
		t.Fatalf("error %v: want code %d", err, code)
	}
}

// openDB opens a go-sql-driver pool on s with extra DSN parameters.
func openDB(t *testing.T, s *Server, user, pass, schema, params string) *sql.DB {
	t.Helper()
	dsn := fmt.Sprintf("%s:%s@tcp(%s)/%s?compress=false&timeout=5s", user, pass, s.Addr(), schema)
	if params != "" {
		dsn += "&" + params
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// selfSignedTLS returns a server config with a fresh self-signed certificate
// for 127.0.0.1 and a client config that trusts it.
func selfSignedTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "fakemysql"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	client = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	return server, client
}

// noLeaks records the goroutine count and, at cleanup, waits for it to come
// back down after the servers and clients of the test are gone. It must be
// called before they start, so its cleanup runs after theirs.
func noLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("goroutines: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

// rawClient speaks the protocol packet by packet, with wire, checking the
// sequence ids of what the server sends and walking every response with
// wire.Walker.
type rawClient struct {
	t        *testing.T
	nc       net.Conn
	br       *bufio.Reader
	seq      uint8
	caps     uint32
	greeting *wire.Greeting
	scramble []byte
	// What the last login or change user went through.
	switched bool   // an auth switch request came
	sha2Path string // "fast", "full" or ""
}

// rawCaps are the capabilities a raw client asks for by default.
const rawCaps = mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_PLUGIN_AUTH |
	mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | mysql.CLIENT_TRANSACTIONS | mysql.CLIENT_MULTI_RESULTS |
	mysql.CLIENT_PS_MULTI_RESULTS | mysql.CLIENT_LONG_FLAG

func dialRaw(t *testing.T, s *Server, caps uint32) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	return &rawClient{t: t, nc: nc, br: bufio.NewReader(nc), caps: caps}
}

// loginRaw dials and logs in, failing the test on a refusal.
func loginRaw(t *testing.T, s *Server, caps uint32, user, pass, schema string) *rawClient {
	t.Helper()
	rc := dialRaw(t, s, caps)
	if err := rc.login(user, pass, schema, ""); err != nil {
		t.Fatalf("login: %v", err)
	}
	return rc
}

func (rc *rawClient) read() []byte {
	rc.t.Helper()
	p, next, err := wire.ReadPacket(rc.br, nil, 1<<24, rc.seq)
	if err != nil {
		rc.t.Fatalf("read: %v", err)
	}
	rc.seq = next
	return p
}

func (rc *rawClient) write(payload []byte) {
	rc.t.Helper()
	b, next := wire.AppendPacket(nil, payload, rc.seq)
	rc.seq = next
	if _, err := rc.nc.Write(b); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

// command sends a command packet (sequence id 0).
func (rc *rawClient) command(payload []byte) {
	rc.t.Helper()
	rc.seq = 0
	rc.write(payload)
}

func authResponse(plugin string, scramble []byte, pass string) []byte {
	if plugin == mysql.AUTH_CACHING_SHA2_PASSWORD {
		return mysql.CalcCachingSha2Password(scramble, []byte(pass))
	}
	return mysql.CalcNativePassword(scramble, []byte(pass))
}

// login reads the greeting and logs in, answering for plugin (the
// greeting's when empty). A refusal is returned as *mysql.MyError.
func (rc *rawClient) login(user, pass, schema, plugin string) error {
	rc.t.Helper()
	rc.seq = 0
	g, err := wire.ParseGreeting(rc.read())
	if err != nil {
		rc.t.Fatalf("greeting: %v", err)
	}
	rc.greeting, rc.scramble = g, g.AuthData
	if plugin == "" {
		plugin = g.AuthPlugin
	}
	caps := rc.caps
	if schema != "" {
		caps |= mysql.CLIENT_CONNECT_WITH_DB
	}
	rc.caps = caps & g.Capabilities
	rc.write(wire.AppendHandshakeResponse(nil, &wire.HandshakeResponse{
		Capabilities: caps, MaxPacketSize: 1 << 24, Collation: 45, User: user,
		AuthData: authResponse(plugin, rc.scramble, pass), Schema: schema, AuthPlugin: plugin,
	}))
	return rc.authResult(pass)
}

// authResult follows the server's login packets to OK or ERR.
func (rc *rawClient) authResult(pass string) error {
	rc.t.Helper()
	rc.switched, rc.sha2Path = false, ""
	scramble := rc.scramble
	for {
		p := rc.read()
		switch {
		case p[0] == wire.OKHeader:
			return nil
		case p[0] == wire.ErrHeader:
			return wire.ParseErr(p)
		case wire.IsAuthSwitchRequest(p):
			sw, err := wire.ParseAuthSwitchRequest(p)
			if err != nil {
				rc.t.Fatal(err)
			}
			rc.switched, scramble = true, sw.Data
			rc.write(authResponse(sw.Plugin, scramble, pass))
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
				rc.write([]byte{wire.CachingSha2RequestPublicKey})
				key, err := wire.ParseAuthMoreData(rc.read())
				if err != nil {
					rc.t.Fatal(err)
				}
				block, _ := pem.Decode(key)
				if block == nil {
					rc.t.Fatalf("no PEM public key: %q", key)
				}
				pub, err := x509.ParsePKIXPublicKey(block.Bytes)
				if err != nil {
					rc.t.Fatal(err)
				}
				enc, err := mysql.EncryptPassword(pass, scramble, pub.(*rsa.PublicKey))
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

type rawPacket struct {
	kind wire.Kind
	p    []byte
}

// response reads a whole response of the given shape, which must follow
// wire's grammar for it.
func (rc *rawClient) response(shape wire.Shape) []rawPacket {
	rc.t.Helper()
	var w wire.Walker
	w.Reset(shape, rc.caps&mysql.CLIENT_DEPRECATE_EOF != 0)
	var out []rawPacket
	for !w.Done() {
		p := rc.read()
		kind, err := w.Next(p, len(p))
		if err != nil {
			rc.t.Fatalf("response packet %d (%x): %v", len(out), p, err)
		}
		out = append(out, rawPacket{kind, p})
	}
	return out
}

// query sends a COM_QUERY and returns its response.
func (rc *rawClient) query(q string) []rawPacket {
	rc.t.Helper()
	rc.command(wire.AppendCommand(nil, mysql.COM_QUERY, q))
	return rc.response(wire.ShapeResult)
}

// okOf returns the (last) OK packet of a response, failing on anything else.
func (rc *rawClient) okOf(resp []rawPacket) []byte {
	rc.t.Helper()
	last := resp[len(resp)-1]
	if last.kind != wire.KindOK {
		if last.kind == wire.KindErr {
			rc.t.Fatalf("want OK, got %v", wire.ParseErr(last.p))
		}
		rc.t.Fatalf("want OK, got kind %d %x", last.kind, last.p)
	}
	return last.p
}

// errOf returns the ERR packet ending a response.
func (rc *rawClient) errOf(resp []rawPacket) *mysql.MyError {
	rc.t.Helper()
	last := resp[len(resp)-1]
	if last.kind != wire.KindErr {
		rc.t.Fatalf("want ERR, got kind %d %x", last.kind, last.p)
	}
	return wire.ParseErr(last.p)
}

// textRows returns the rows of the text result sets of a response.
func textRows(t *testing.T, resp []rawPacket) [][]string {
	t.Helper()
	var rows [][]string
	for _, rp := range resp {
		if rp.kind != wire.KindRow {
			continue
		}
		r, err := wire.ParseTextRow(rp.p, nil)
		if err != nil {
			t.Fatal(err)
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
	return rows
}

// binaryRow decodes a binary-protocol row of n VAR_STRING columns.
func binaryRow(t *testing.T, p []byte, n int) []string {
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
	if len(rest) != 0 {
		t.Fatalf("binary row has %d bytes too many", len(rest))
	}
	return row
}

// prepare prepares q and returns the statement id and the prepare OK.
func (rc *rawClient) prepare(q string) wire.PrepareOK {
	rc.t.Helper()
	rc.command(wire.AppendCommand(nil, mysql.COM_STMT_PREPARE, q))
	resp := rc.response(wire.ShapePrepare)
	if resp[0].kind != wire.KindPrepareOK {
		rc.t.Fatalf("prepare %q: %x", q, resp[0].p)
	}
	ok, err := wire.ParsePrepareOK(resp[0].p)
	if err != nil {
		rc.t.Fatal(err)
	}
	return ok
}

// executePacket builds a COM_STMT_EXECUTE with string parameters (nil for
// NULL) and the given flags.
func executePacket(id uint32, flags byte, params ...any) []byte {
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
	p = append(p, 1)
	p = append(p, types...)
	return append(p, values...)
}

func fetchPacket(id, rows uint32) []byte {
	p := binary.LittleEndian.AppendUint32([]byte{mysql.COM_STMT_FETCH}, id)
	return binary.LittleEndian.AppendUint32(p, rows)
}

func stmtPacket(cmd byte, id uint32) []byte {
	return binary.LittleEndian.AppendUint32([]byte{cmd}, id)
}

// statusOf returns the status flags of the packet that ends a response.
func statusOf(t *testing.T, resp []rawPacket) uint16 {
	t.Helper()
	last := resp[len(resp)-1].p
	if last[0] == wire.OKHeader {
		ok, err := wire.ParseOK(last)
		if err != nil {
			t.Fatal(err)
		}
		return ok.Status
	}
	st, err := wire.EOFStatus(last)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func joinRows(rows [][]string) string {
	var parts []string
	for _, r := range rows {
		parts = append(parts, strings.Join(r, ","))
	}
	return strings.Join(parts, ";")
}
