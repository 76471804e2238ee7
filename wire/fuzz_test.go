package wire

import (
	"bytes"
	"database/sql"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Fuzz targets. With plain `go test` they run over their seed corpus;
// `make fuzz` (or go test -fuzz) explores further. Beyond "never panic",
// each states the invariants that really hold for any input: where a
// decoder accepts a packet, encoding the decoded value and decoding it
// again gives the same value.

// FuzzServerBytes feeds bytes a server could send to every decoder of
// server packets, to ReadPacket and ReadTextResult as a stream, and to a
// Walker of every shape as a sequence of packets.
func FuzzServerBytes(f *testing.F) {
	for _, tc := range walkCases {
		for _, deprecateEOF := range []bool{false, true} {
			r := &response{deprecateEOF: deprecateEOF}
			tc.build(r)
			f.Add(r.framed(1))
		}
	}
	f.Add(unhex(f, docVersionResult))
	f.Add(unhex(f, docBinaryResult))
	for _, g := range []string{docGreetingPlugin, docGreetingNoPlugin} {
		framed, _ := AppendPacket(nil, unhex(f, g), 0)
		f.Add(framed)
	}
	state := AppendOKWithState(nil, OK{AffectedRows: 1, Status: autocommit}, "Rows matched: 1",
		cat([]byte{1, 5, 4, 's', 'h', 'o', 'p'}, AppendSystemVariable(nil, "last_gtid", "0-1-123")))
	for _, p := range [][]byte{
		state,
		AppendAuthSwitchRequest(nil, AuthSwitchRequest{Plugin: mysql.AUTH_CACHING_SHA2_PASSWORD, Data: scramble}),
		AppendAuthMoreData(nil, []byte{CachingSha2FullAuth}),
		AppendPrepareOK(nil, PrepareOK{StatementID: 1, Columns: 1, Params: 2}),
		{0xff, 0xff, 0xff, 1, 0xfe}, // a huge first packet
		AppendBinaryRow(nil, binaryValues[:len(fuzzColumns)]),
		AppendBinaryRow(nil, []Value{{Type: mysql.MYSQL_TYPE_VAR_STRING, Bytes: []byte("foobar")}, {Null: true}}),
		AppendOKWithInfo(nil, OK{AffectedRows: 3}, "Records: 3  Deleted: 0  Skipped: 0  Warnings: 0"),
		AppendOKWithState(nil, OK{}, "", AppendSchemaChange(nil, "shop")),
		AppendFieldListColumn(nil, &colNote, sql.NullString{String: "none", Valid: true}),
	} {
		framed, _ := AppendPacket(nil, p, 1)
		f.Add(framed)
	}

	f.Fuzz(func(t *testing.T, in []byte) {
		checkServerPayload(t, in)
		pkts := splitFramed(in)
		for _, pk := range pkts {
			checkServerPayload(t, pk.p)
		}
		for shape := ShapeResult; shape <= ShapeCursor; shape++ {
			for _, deprecateEOF := range []bool{false, true} {
				checkWalk(t, shape, deprecateEOF, pkts)
			}
		}
		checkReadPackets(t, in)
		for _, deprecateEOF := range []bool{false, true} {
			res, err := ReadTextResult(serve(in), deprecateEOF, 1<<16)
			if err != nil {
				continue
			}
			// Callers index rows by column: the widths must agree.
			for _, r := range res.Rows {
				if len(r) != len(res.Columns) {
					t.Fatalf("row of %d values for %d columns", len(r), len(res.Columns))
				}
			}
		}
	})
}

// checkServerPayload runs every decoder of server packets on p.
func checkServerPayload(t *testing.T, p []byte) {
	if g, err := ParseGreeting(p); err == nil {
		if len(g.AuthData) < 8 {
			t.Fatalf("greeting with a %d-byte scramble", len(g.AuthData))
		}
		// The scramble and plugin need not survive (a short greeting has
		// none), but the rest does, and the encoding is always readable.
		g2, err := ParseGreeting(AppendGreeting(nil, g))
		if err != nil || g2.ServerVersion != g.ServerVersion || g2.ConnectionID != g.ConnectionID ||
			g2.Capabilities != g.Capabilities || g2.Collation != g.Collation || g2.Status != g.Status {
			t.Fatalf("greeting %+v re-read as %+v, %v", g, g2, err)
		}
	}
	if ok, err := ParseOK(p); err == nil {
		if ok2, err := ParseOK(AppendOK(nil, ok)); err != nil || ok2 != ok {
			t.Fatalf("OK %+v re-read as %+v, %v", ok, ok2, err)
		}
	}
	// ParseErr always gives an error value, and it survives re-encoding.
	if e, e2 := ParseErr(p), ParseErr(AppendErr(nil, ParseErr(p))); *e2 != *e {
		t.Fatalf("ERR %+v re-read as %+v", *e, *e2)
	}
	if e, err := ParseEOF(p); err == nil {
		if e2, err := ParseEOF(AppendEOF(nil, e)); err != nil || e2 != e {
			t.Fatalf("EOF %+v re-read as %+v, %v", e, e2, err)
		}
		if st, err := EOFStatus(AppendEOFAsOK(nil, e)); err != nil || st != e.Status {
			t.Fatalf("EOF %+v as OK: status %#x, %v", e, st, err)
		}
	}
	_, _ = EOFStatus(p)
	_ = IsEOFPacket(p, len(p))
	_ = IsClassicEOF(p)
	_ = IsPrepareOK(p)
	_ = IsAuthSwitchRequest(p)
	_ = IsAuthMoreData(p)
	_, _ = LastGTID(p)
	if out, err := StripSessionTrack(nil, p); err == nil {
		ok, _ := ParseOK(p)
		ok.Status &^= mysql.SERVER_SESSION_STATE_CHANGED
		if ok2, err := ParseOK(out); err != nil || ok2 != ok {
			t.Fatalf("stripped OK %+v, %v; want %+v", ok2, err, ok)
		}
		if again, err := StripSessionTrack(nil, out); err != nil || !bytes.Equal(again, out) {
			t.Fatalf("stripping twice: % x, %v; once % x", again, err, out)
		}
		if g, found := LastGTID(out); found {
			t.Fatalf("GTID %q survived stripping", g)
		}
	}
	if r, err := ParseAuthSwitchRequest(p); err == nil {
		r2, err := ParseAuthSwitchRequest(AppendAuthSwitchRequest(nil, r))
		if err != nil || r2.Plugin != r.Plugin || !bytes.Equal(r2.Data, r.Data) || r2.OldStyle != r.OldStyle {
			t.Fatalf("auth switch %+v re-read as %+v, %v", r, r2, err)
		}
	}
	if d, err := ParseAuthMoreData(p); err == nil {
		if d2, err := ParseAuthMoreData(AppendAuthMoreData(nil, d)); err != nil || !bytes.Equal(d2, d) {
			t.Fatalf("auth more data % x re-read as % x, %v", d, d2, err)
		}
	}
	if c, err := ParseColumnDef(p); err == nil {
		if c2, err := ParseColumnDef(AppendColumnDef(nil, &c)); err != nil || !sameColumn(c2, c) {
			t.Fatalf("column %+v re-read as %+v, %v", c, c2, err)
		}
	}
	if r, err := ParseTextRow(p, nil); err == nil {
		if r2, err := ParseTextRow(AppendTextRow(nil, r), nil); err != nil || !reflect.DeepEqual(r2, r) {
			t.Fatalf("row %v re-read as %v, %v", r, r2, err)
		}
	}
	if ok, err := ParsePrepareOK(p); err == nil {
		if ok2, err := ParsePrepareOK(AppendPrepareOK(nil, ok)); err != nil || ok2 != ok {
			t.Fatalf("prepare OK %+v re-read as %+v, %v", ok, ok2, err)
		}
	}
	if info, err := OKInfo(p); err == nil {
		ok, _ := ParseOK(p)
		if info2, err := OKInfo(AppendOKWithInfo(nil, ok, info)); err != nil || info2 != info {
			t.Fatalf("OK info %q re-read as %q, %v", info, info2, err)
		}
	}
	if schema, found := SchemaChange(p); found {
		if s2, found := SchemaChange(AppendOKWithState(nil, OK{}, "", AppendSchemaChange(nil, schema))); !found || s2 != schema {
			t.Fatalf("schema change %q re-read as %q, %v", schema, s2, found)
		}
	}
	if n, err := ParseColumnCount(p); err == nil {
		if n < 1 || n > maxColumns {
			t.Fatalf("%d columns", n)
		}
		if n2, err := ParseColumnCount(AppendColumnCount(nil, n)); err != nil || n2 != n {
			t.Fatalf("column count %d re-read as %d, %v", n, n2, err)
		}
	}
	if c, def, err := ParseFieldListColumn(p); err == nil {
		if c2, def2, err := ParseFieldListColumn(AppendFieldListColumn(nil, &c, def)); err != nil || !sameColumn(c2, c) || def2 != def {
			t.Fatalf("field list column %+v %+v re-read as %+v %+v, %v", c, def, c2, def2, err)
		}
	}
	for _, cols := range [][]Column{fuzzColumns, {colStr}, {colStr, colUint}} {
		if row, err := ParseBinaryRow(p, cols, nil); err == nil {
			if len(row) != len(cols) {
				t.Fatalf("row of %d values for %d columns", len(row), len(cols))
			}
			again := AppendBinaryRow(nil, row)
			row2, err := ParseBinaryRow(again, cols, nil)
			if err != nil || !sameValues(row2, row) || !bytes.Equal(AppendBinaryRow(nil, row2), again) {
				t.Fatalf("binary row %+v re-read as %+v, %v", row, row2, err)
			}
		}
	}
	for _, c := range fuzzColumns {
		unsigned := c.Flags&mysql.UNSIGNED_FLAG != 0
		if v, n, err := ParseValue(p, c.Type, unsigned); err == nil {
			if n > len(p) {
				t.Fatalf("value of type %d used %d of %d bytes", c.Type, n, len(p))
			}
			again := AppendValue(nil, v)
			v2, n2, err := ParseValue(again, c.Type, unsigned)
			if err != nil || n2 != len(again) || !sameValue(v2, v) {
				t.Fatalf("value %+v re-read as %+v, %v", v, v2, err)
			}
		}
	}
	if _, n, err := Lenenc(p); err == nil && (n > len(p) || (n != 1 && n != 3 && n != 4 && n != 9)) {
		t.Fatalf("Lenenc used %d of %d bytes", n, len(p))
	}
	if s, n, err := LenencString(p); err == nil && (n > len(p) || len(s) > n) {
		t.Fatalf("LenencString: %d bytes of string, %d used of %d", len(s), n, len(p))
	}
}

// packet is one packet split out of a fuzzer's stream: as many bytes as
// there are, and the length its header claims.
type packet struct {
	p []byte
	n int
}

// splitFramed splits b at the lengths its headers claim, ignoring their
// sequence ids; a cut last packet keeps the length it claims, as when the
// forwarder holds only the start of a large packet.
func splitFramed(b []byte) []packet {
	var pkts []packet
	for len(b) >= HeaderSize {
		n := PayloadLen(b)
		b = b[HeaderSize:]
		m := min(n, len(b))
		pkts = append(pkts, packet{p: b[:m:m], n: n})
		b = b[m:]
	}
	return pkts
}

// checkWalk feeds pkts to a Walker until it rejects one: it must not
// panic, must name only known kinds, and once done must refuse anything.
func checkWalk(t *testing.T, shape Shape, deprecateEOF bool, pkts []packet) {
	var w Walker
	w.Reset(shape, deprecateEOF)
	for _, pk := range pkts {
		done := w.Done()
		k, err := w.Next(pk.p, pk.n)
		if done {
			if err == nil {
				t.Fatalf("shape %d: %v accepted after the end", shape, k)
			}
			return
		}
		if err != nil {
			return
		}
		if k < KindOK || k > KindOther {
			t.Fatalf("shape %d: unknown kind %d", shape, k)
		}
		if k == KindPrepareOK && (shape != ShapePrepare || !IsPrepareOK(pk.p)) {
			t.Fatalf("shape %d: prepare OK % x", shape, pk.p)
		}
	}
	if w.Done() {
		if _, err := w.Next(AppendOK(nil, OK{}), 7); err == nil {
			t.Fatalf("shape %d: OK accepted after the end", shape)
		}
	}
}

// checkReadPackets reads b as a stream of packets with a small limit,
// draining oversized ones, until an error.
func checkReadPackets(t *testing.T, b []byte) {
	const limit = 1 << 12
	r := serve(b)
	room := []byte{0xde, 0xad, 0xbe, 0xef}
	var seq uint8
	if len(b) >= HeaderSize {
		seq = b[3]
	}
	for {
		p, next, err := ReadPacket(r, append(make([]byte, 0, 8), room...), limit, seq)
		if len(p) < len(room) || !bytes.Equal(p[:len(room)], room) {
			t.Fatalf("header room lost: % x", p[:min(len(p), 8)])
		}
		var tl *TooLargeError
		var se *SequenceError
		switch {
		case err == nil:
			if len(p)-len(room) > limit {
				t.Fatalf("%d bytes read with limit %d", len(p)-len(room), limit)
			}
			seq = next
		case errors.As(err, &tl):
			if tl.Remaining < 0 || tl.Remaining > MaxPayload || tl.More != (tl.Remaining == MaxPayload) {
				t.Fatalf("%+v", *tl)
			}
			Discard(r, tl, 1<<20)
			// Carry on at whatever id the next packet has.
			h, err := r.Peek(HeaderSize)
			if err != nil {
				return
			}
			seq = h[3]
		case errors.As(err, &se):
			if se.Got == se.Want || !errors.Is(err, ErrSequence) {
				t.Fatalf("%v", err)
			}
			return
		default:
			return
		}
	}
}

// FuzzClientBytes feeds bytes a client could send to every decoder of
// client packets, with the capabilities it negotiated and the parameter
// count of the statement it executes.
func FuzzClientBytes(f *testing.F) {
	for _, tc := range handshakeCases {
		f.Add(AppendHandshakeResponse(nil, &tc.h), tc.h.Capabilities, uint8(0))
	}
	f.Add(unhex(f, docHandshakeResponse), uint32(0x000fa68d), uint8(0))
	for _, tc := range changeUserCases {
		f.Add(AppendChangeUser(nil, &tc.c, tc.caps), tc.caps, uint8(0))
	}
	nine := cat(execHead, []byte{0x00, 0x00, 1}, bytes.Repeat([]byte{mysql.MYSQL_TYPE_TINY, 0}, 9), bytes.Repeat([]byte{1}, 9))
	for _, p := range [][]byte{execBound, execUnbound, execHead} {
		f.Add(p, uint32(0), uint8(2))
	}
	f.Add(nine, uint32(0), uint8(9))
	f.Add(cat(mysql.COM_STMT_FETCH, le32(7), le32(100)), uint32(0), uint8(0))
	f.Add(unhex(f, docExecute), uint32(0), uint8(1))
	f.Add(AppendStmtExecute(nil, &StmtExecute{StatementID: 3, BindTypes: true, Params: binaryValues}), uint32(0), uint8(len(binaryValues)))
	f.Add(AppendStmtExecute(nil, &StmtExecute{StatementID: 3, Params: binaryValues[:3], LongData: []bool{false, true}}), uint32(2), uint8(3))
	f.Add(AppendStmtSendLongData(nil, StmtSendLongData{StatementID: 7, Param: 1, Data: []byte("chunk")}), uint32(0), uint8(0))
	f.Add(AppendFieldList(nil, "users", "a%"), uint32(0), uint8(0))
	f.Add(AppendSetOption(nil, MultiStatementsOff), uint32(0), uint8(0))

	f.Fuzz(func(t *testing.T, in []byte, caps uint32, numParams uint8) {
		if h, err := ParseHandshakeResponse(in); err == nil {
			h2, err := ParseHandshakeResponse(AppendHandshakeResponse(nil, h))
			if err != nil || !reflect.DeepEqual(normHandshake(*h2), normHandshake(*h)) {
				t.Fatalf("handshake response %+v re-read as %+v, %v", *h, h2, err)
			}
		}
		if c, err := ParseChangeUser(in, caps); err == nil {
			c2, err := ParseChangeUser(AppendChangeUser(nil, c, caps), caps)
			if err != nil || !reflect.DeepEqual(normChangeUser(*c2), normChangeUser(*c)) {
				t.Fatalf("change user %+v re-read as %+v, %v", *c, c2, err)
			}
		}
		if id, err := StmtID(in); err == nil {
			out := AppendStmtCommand(nil, in, id+1)
			if id2, err := StmtID(out); err != nil || id2 != id+1 || out[0] != in[0] || !bytes.Equal(out[5:], in[5:]) {
				t.Fatalf("AppendStmtCommand(% x) = % x", in, out)
			}
		}
		if fl, err := ExecuteFlags(in); err == nil && fl != in[5] {
			t.Fatalf("flags %#x", fl)
		}

		if fe, err := ParseStmtFetch(in); err == nil {
			if fe2, err := ParseStmtFetch(AppendStmtFetch(nil, fe)); err != nil || fe2 != fe {
				t.Fatalf("fetch %+v re-read as %+v, %v", fe, fe2, err)
			}
		}
		if d, err := ParseStmtSendLongData(in); err == nil {
			d2, err := ParseStmtSendLongData(AppendStmtSendLongData(nil, d))
			if err != nil || d2.StatementID != d.StatementID || d2.Param != d.Param || !bytes.Equal(d2.Data, d.Data) {
				t.Fatalf("long data %+v re-read as %+v, %v", d, d2, err)
			}
		}
		if table, wildcard, err := ParseFieldList(in); err == nil && !strings.Contains(table, "\x00") {
			if t2, w2, err := ParseFieldList(AppendFieldList(nil, table, wildcard)); err != nil || t2 != table || w2 != wildcard {
				t.Fatalf("field list %q %q re-read as %q %q, %v", table, wildcard, t2, w2, err)
			}
		}
		if opt, err := ParseSetOption(in); err == nil {
			if opt2, err := ParseSetOption(AppendSetOption(nil, opt)); err != nil || opt2 != opt {
				t.Fatalf("set option %d re-read as %d, %v", opt, opt2, err)
			}
		}

		np := int(numParams)
		// caps doubles as the parameters sent as long data.
		longData := make([]bool, np)
		for i := range longData {
			longData[i] = caps&(1<<(i%32)) != 0
		}
		for _, types := range [][]byte{nil, bytes.Repeat([]byte{mysql.MYSQL_TYPE_LONGLONG, mysql.PARAM_UNSIGNED}, np)} {
			e, err := ParseStmtExecute(in, np, types, longData)
			if err != nil {
				continue
			}
			if len(e.Params) != np || e.StatementID != binary.LittleEndian.Uint32(in[1:]) || e.Flags != in[5] {
				t.Fatalf("execution %+v of % x", e, in)
			}
			again := AppendStmtExecute(nil, e)
			e2, err := ParseStmtExecute(again, np, types, longData)
			if err != nil || e2.StatementID != e.StatementID || e2.Flags != e.Flags || e2.BindTypes != e.BindTypes ||
				!sameValues(e2.Params, e.Params) || !bytes.Equal(AppendStmtExecute(nil, e2), again) {
				t.Fatalf("execution %+v re-read as %+v, %v", e, e2, err)
			}
			// What the proxy's rewrite reads of it agrees.
			if bt, err := ExecuteBoundTypes(in, np); err != nil || (bt != nil) != e.BindTypes {
				t.Fatalf("ExecuteBoundTypes: % x, %v; BindTypes %v", bt, err, e.BindTypes)
			}
		}

		bound, errTypes := ExecuteBoundTypes(in, np)
		if errTypes == nil && bound != nil && len(bound) != 2*np {
			t.Fatalf("%d bytes of types for %d parameters", len(bound), np)
		}
		saved := bound
		if saved == nil {
			saved = bytes.Repeat([]byte{mysql.MYSQL_TYPE_LONG, 0}, np)
		}
		out, err := AppendExecute(nil, in, 42, np, saved)
		// With the types at hand, a rewrite fails exactly when the
		// execution is malformed.
		if (err == nil) != (errTypes == nil) {
			t.Fatalf("AppendExecute: %v, ExecuteBoundTypes: %v", err, errTypes)
		}
		if err == nil {
			if id, err := StmtID(out); err != nil || id != 42 || out[0] != mysql.COM_STMT_EXECUTE {
				t.Fatalf("rewritten for % x", out[:5])
			}
			if f1, f2 := in[5], out[5]; f1 != f2 {
				t.Fatalf("flags %#x became %#x", f1, f2)
			}
			if np == 0 && !bytes.Equal(out[5:], in[5:]) {
				t.Fatalf("no parameters, yet more than the id changed")
			}
			if bt, err := ExecuteBoundTypes(out, np); err != nil || (np > 0 && !bytes.Equal(bt, saved)) {
				t.Fatalf("the rewrite binds % x, %v; want % x", bt, err, saved)
			}
			if again, err := AppendExecute(nil, out, 42, np, saved); err != nil || !bytes.Equal(again, out) {
				t.Fatalf("rewriting twice: % x, %v", again, err)
			}
		}
		if np > 0 {
			if _, err := AppendExecute(nil, in, 42, np, nil); err == nil {
				t.Fatal("an execution with parameters rewritten without types")
			}
		}
	})
}

// fuzzColumns are a result set's columns of every form the binary protocol
// sends, to read fuzzer rows and values with.
var fuzzColumns = []Column{
	{Type: mysql.MYSQL_TYPE_TINY}, {Type: mysql.MYSQL_TYPE_TINY, Flags: mysql.UNSIGNED_FLAG},
	{Type: mysql.MYSQL_TYPE_SHORT}, {Type: mysql.MYSQL_TYPE_YEAR, Flags: mysql.UNSIGNED_FLAG},
	{Type: mysql.MYSQL_TYPE_INT24}, {Type: mysql.MYSQL_TYPE_LONG}, {Type: mysql.MYSQL_TYPE_LONGLONG},
	{Type: mysql.MYSQL_TYPE_LONGLONG, Flags: mysql.UNSIGNED_FLAG}, {Type: mysql.MYSQL_TYPE_FLOAT},
	{Type: mysql.MYSQL_TYPE_FLOAT}, {Type: mysql.MYSQL_TYPE_DOUBLE}, {Type: mysql.MYSQL_TYPE_DOUBLE},
	{Type: mysql.MYSQL_TYPE_DATE}, {Type: mysql.MYSQL_TYPE_DATETIME}, {Type: mysql.MYSQL_TYPE_TIMESTAMP},
	{Type: mysql.MYSQL_TYPE_NEWDATE}, {Type: mysql.MYSQL_TYPE_DATETIME}, {Type: mysql.MYSQL_TYPE_TIME},
	{Type: mysql.MYSQL_TYPE_TIME}, {Type: mysql.MYSQL_TYPE_TIME}, {Type: mysql.MYSQL_TYPE_VAR_STRING},
	{Type: mysql.MYSQL_TYPE_STRING}, {Type: mysql.MYSQL_TYPE_BLOB}, {Type: mysql.MYSQL_TYPE_NEWDECIMAL},
	{Type: mysql.MYSQL_TYPE_JSON}, {Type: mysql.MYSQL_TYPE_BIT}, {Type: mysql.MYSQL_TYPE_NULL},
}

// sameColumn compares column definitions, extended metadata included.
func sameColumn(a, b Column) bool {
	if (a.Extended == nil) != (b.Extended == nil) || !bytes.Equal(a.Extended, b.Extended) {
		return false
	}
	return a.Schema == b.Schema && a.Table == b.Table && a.OrgTable == b.OrgTable && a.Name == b.Name &&
		a.OrgName == b.OrgName && a.Charset == b.Charset && a.Length == b.Length && a.Type == b.Type &&
		a.Flags == b.Flags && a.Decimals == b.Decimals
}
