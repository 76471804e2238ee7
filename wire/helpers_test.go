package wire

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Helpers shared by the tests of this package: hex dumps, the truncation
// checker, and a builder of whole server responses.

// unhex decodes a hex dump written as the protocol documentation prints
// it: bytes separated by spaces and newlines.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("bad hex dump: %v", err)
	}
	return b
}

// cat concatenates byte slices and strings into a new slice.
func cat(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch p := p.(type) {
		case []byte:
			b = append(b, p...)
		case string:
			b = append(b, p...)
		case byte:
			b = append(b, p)
		case int: // an untyped constant: one byte
			if p < 0 || p > 0xff {
				panic(fmt.Sprintf("cat: %d is not a byte", p))
			}
			b = append(b, byte(p))
		default:
			panic(fmt.Sprintf("cat: %T", p))
		}
	}
	return b
}

// le16 and le32 are little-endian integers as packets carry them.
func le16(v uint16) []byte { return []byte{byte(v), byte(v >> 8)} }
func le32(v uint32) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)} }

// field is one piece of a packet for the truncation tests, with where the
// grammar lets a shorter packet end: right after the field (end), or inside
// it (cut: a NUL-tolerant trailing string, an optional tail the decoder
// does not read).
type field struct {
	b        []byte
	end, cut bool
}

func must(parts ...any) field   { return field{b: cat(parts...)} }
func endOK(parts ...any) field  { return field{b: cat(parts...), end: true} }
func cutOK(parts ...any) field  { return field{b: cat(parts...), cut: true} }
func tailOK(parts ...any) field { return field{b: cat(parts...), end: true, cut: true} }

// emptyOK as the first field says the empty packet is valid (a row of no
// values).
var emptyOK = field{end: true}

// join builds the packet the fields describe.
func join(fs []field) []byte {
	var p []byte
	for _, f := range fs {
		p = append(p, f.b...)
	}
	return p
}

// checkPrefixes feeds parse every proper prefix of the packet fs describes
// and fails unless exactly the prefixes that the grammar allows to end there
// are accepted: a truncated packet must be an error (never a panic), and a
// decoder must not start rejecting packets whose optional tail is missing.
// Each prefix is passed with its capacity cut to its length, so reading past
// its end panics instead of silently reading the rest.
func checkPrefixes(t *testing.T, name string, fs []field, parse func([]byte) error) {
	t.Helper()
	p := join(fs)
	if err := safely(parse, p); err != nil {
		t.Fatalf("%s: the whole packet is rejected: %v", name, err)
	}
	for k := 0; k < len(p); k++ {
		allowed := false
		off := 0
		for _, f := range fs {
			switch {
			case k == off+len(f.b) && f.end:
				allowed = true
			case k > off && k < off+len(f.b) && f.cut:
				allowed = true
			}
			off += len(f.b)
		}
		err := safely(parse, p[:k:k])
		switch {
		case err != nil && strings.HasPrefix(err.Error(), "panic"):
			t.Errorf("%s cut to %d of %d bytes: %v", name, k, len(p), err)
		case allowed && err != nil:
			t.Errorf("%s cut to %d of %d bytes (a valid shorter packet): %v", name, k, len(p), err)
		case !allowed && err == nil:
			t.Errorf("%s cut to %d of %d bytes: accepted", name, k, len(p))
		}
	}
}

// safely runs parse and turns a panic into an error starting with "panic".
func safely(parse func([]byte) error, p []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return parse(p)
}

// errNotAccepted adapts decoders that report failure other than with an
// error (a bool, a default value) to checkPrefixes.
var errNotAccepted = fmt.Errorf("not accepted")

// Realistic column definitions and rows for the responses below.
var (
	colID = Column{Schema: "shop", Table: "orders", OrgTable: "orders", Name: "id", OrgName: "id",
		Charset: 63, Length: 20, Type: mysql.MYSQL_TYPE_LONGLONG,
		Flags: mysql.NOT_NULL_FLAG | mysql.PRI_KEY_FLAG | mysql.AUTO_INCREMENT_FLAG}
	colNote = Column{Schema: "shop", Table: "o", OrgTable: "orders", Name: "note", OrgName: "note",
		Charset: 255, Length: 1020, Type: mysql.MYSQL_TYPE_VAR_STRING}
	colTotal = Column{Schema: "shop", Table: "orders", OrgTable: "orders", Name: "total", OrgName: "total",
		Charset: 63, Length: 12, Type: mysql.MYSQL_TYPE_NEWDECIMAL, Decimals: 2}
	colParam = Column{Name: "?", Charset: 63, Type: mysql.MYSQL_TYPE_VAR_STRING}
)

// str and null are text-protocol values.
func str(s string) sql.NullString { return sql.NullString{String: s, Valid: true} }

var null = sql.NullString{}

func row(vs ...sql.NullString) []sql.NullString { return vs }

// autocommit is the status of an idle session.
const autocommit = mysql.SERVER_STATUS_AUTOCOMMIT

// response builds the packets a server sends in answer to one command,
// with the append functions under test, in the form a client that did or
// did not negotiate CLIENT_DEPRECATE_EOF receives.
type response struct {
	deprecateEOF bool
	pkts         [][]byte
}

func (r *response) add(p []byte) *response { r.pkts = append(r.pkts, p); return r }

func (r *response) ok(status uint16) *response {
	return r.add(AppendOK(nil, OK{AffectedRows: 1, LastInsertID: 7, Status: status}))
}

func (r *response) err(code uint16, state, msg string) *response {
	return r.add(AppendErr(nil, &mysql.MyError{Code: code, State: state, Message: msg}))
}

// defsEOF is the EOF after column or parameter definitions, which only a
// classic client receives.
func (r *response) defsEOF(status uint16) *response {
	if !r.deprecateEOF {
		r.add(AppendEOF(nil, EOF{Status: status}))
	}
	return r
}

// end is the packet that ends rows, a field list or a fetch: a classic EOF,
// or an OK with header 0xfe.
func (r *response) end(status uint16) *response {
	if r.deprecateEOF {
		return r.add(AppendEOFAsOK(nil, EOF{Status: status}))
	}
	return r.add(AppendEOF(nil, EOF{Status: status}))
}

// head is a result set's column count, definitions and (classic) EOF.
func (r *response) head(status uint16, cols ...Column) *response {
	r.add(AppendLenenc(nil, uint64(len(cols))))
	for i := range cols {
		r.add(AppendColumnDef(nil, &cols[i]))
	}
	return r.defsEOF(status)
}

func (r *response) rows(rows ...[]sql.NullString) *response {
	for _, v := range rows {
		r.add(AppendTextRow(nil, v))
	}
	return r
}

// binRows adds binary-protocol rows of one BIGINT value each.
func (r *response) binRows(vals ...int64) *response {
	for _, v := range vals {
		r.add(AppendBinaryRow(nil, []Value{{Type: mysql.MYSQL_TYPE_LONGLONG, Int: v}}))
	}
	return r
}

// prepared is a successful prepare response: the prepare OK, the parameter
// definitions and the column definitions, each block with its classic EOF.
func (r *response) prepared(id uint32, params int, cols ...Column) *response {
	r.add(AppendPrepareOK(nil, PrepareOK{StatementID: id, Params: uint16(params), Columns: uint16(len(cols))}))
	if params > 0 {
		for range params {
			r.add(AppendColumnDef(nil, &colParam))
		}
		r.defsEOF(0)
	}
	if len(cols) > 0 {
		for i := range cols {
			r.add(AppendColumnDef(nil, &cols[i]))
		}
		r.defsEOF(0)
	}
	return r
}

// framed is the response as bytes on the wire, from sequence id seq.
func (r *response) framed(seq uint8) []byte {
	var b []byte
	for _, p := range r.pkts {
		b, seq = AppendPacket(b, p, seq)
	}
	return b
}

// serve returns a reader of b as the proxy reads a connection.
func serve(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
