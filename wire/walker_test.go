package wire

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// kindList prints kinds by name in failure messages.
type kindList []Kind

func (l kindList) String() string {
	names := []string{"?", "OK", "Err", "EOF", "DefsEOF", "Infile", "ColumnCount", "ColumnDef", "ParamDef", "Row", "PrepareOK", "Other"}
	s := make([]string, len(l))
	for i, k := range l {
		s[i] = fmt.Sprintf("Kind(%d)", k)
		if int(k) < len(names) {
			s[i] = names[k]
		}
	}
	return "[" + strings.Join(s, " ") + "]"
}

// Shorter names for the expected kind sequences.
const (
	kOK   = KindOK
	kErr  = KindErr
	kEOF  = KindEOF
	kDefs = KindDefsEOF
	kCC   = KindColumnCount
	kCD   = KindColumnDef
	kPD   = KindParamDef
	kRow  = KindRow
)

// walkCase is a whole response to one command and how a Walker must read it.
type walkCase struct {
	name  string
	shape Shape
	build func(r *response)
	// kinds for a peer that sends classic EOF packets. A peer that
	// negotiated CLIENT_DEPRECATE_EOF sends the same packets but for the
	// EOFs after definitions, so it yields these minus KindDefsEOF.
	kinds []Kind
	// status is Status() at the end: what the last OK or EOF that ended
	// the response or a result in it said. The EOF after definitions does
	// not count (a CLIENT_DEPRECATE_EOF peer does not send it), except
	// when it ends the response because a cursor was opened.
	status    uint16
	hasStatus bool
	prepared  PrepareOK
}

const (
	more   = autocommit | mysql.SERVER_MORE_RESULTS_EXISTS
	cursor = autocommit | mysql.SERVER_STATUS_CURSOR_EXISTS
)

var walkCases = []walkCase{
	// COM_QUERY and COM_STMT_EXECUTE.
	{name: "OK", shape: ShapeResult, build: func(r *response) { r.ok(autocommit) },
		kinds: []Kind{kOK}, status: autocommit, hasStatus: true},
	{name: "ERR", shape: ShapeResult, build: func(r *response) { r.err(1064, "42000", "syntax error") },
		kinds: []Kind{kErr}},
	{name: "result set", shape: ShapeResult, build: func(r *response) {
		r.head(autocommit, colID, colNote, colTotal).rows(
			row(str("1"), str("gift"), str("9.90")),
			row(str("2"), null, str("0.00")),
			row(str("3"), str(""), null),
		).end(autocommit | mysql.SERVER_STATUS_IN_TRANS)
	}, kinds: []Kind{kCC, kCD, kCD, kCD, kDefs, kRow, kRow, kRow, kEOF},
		status: autocommit | mysql.SERVER_STATUS_IN_TRANS, hasStatus: true},
	{name: "empty result set", shape: ShapeResult, build: func(r *response) {
		r.head(autocommit, colID).end(autocommit)
	}, kinds: []Kind{kCC, kCD, kDefs, kEOF}, status: autocommit, hasStatus: true},
	// Binary-protocol rows start with 0x00, which in a row is no OK.
	{name: "binary rows", shape: ShapeExecute, build: func(r *response) {
		r.head(autocommit, colID).binRows(1, 2).end(autocommit)
	}, kinds: []Kind{kCC, kCD, kDefs, kRow, kRow, kEOF}, status: autocommit, hasStatus: true},
	// Rows whose first value is NULL (0xfb) or empty (0x00): not LOCAL
	// INFILE, not OK.
	{name: "rows starting with NULL and empty", shape: ShapeResult, build: func(r *response) {
		r.head(autocommit, colNote).rows(row(null), row(str(""))).end(autocommit)
	}, kinds: []Kind{kCC, kCD, kDefs, kRow, kRow, kEOF}, status: autocommit, hasStatus: true},
	{name: "multiple results, more on OK and on EOF", shape: ShapeResult, build: func(r *response) {
		r.ok(more)
		r.head(more, colID).rows(row(str("1"))).end(more)
		r.head(autocommit, colNote).end(more)
		r.ok(autocommit)
	}, kinds: []Kind{kOK, kCC, kCD, kDefs, kRow, kEOF, kCC, kCD, kDefs, kEOF, kOK},
		status: autocommit, hasStatus: true},
	// A stored procedure: its result set, then the CALL's own OK.
	{name: "CALL", shape: ShapeResult, build: func(r *response) {
		r.head(more, colID).rows(row(str("1"))).end(more | mysql.SERVER_PS_OUT_PARAMS)
		r.ok(autocommit)
	}, kinds: []Kind{kCC, kCD, kDefs, kRow, kEOF, kOK}, status: autocommit, hasStatus: true},
	{name: "error after rows", shape: ShapeResult, build: func(r *response) {
		r.head(autocommit, colID).rows(row(str("1")), row(str("2"))).err(1317, "70100", "Query execution was interrupted")
	}, kinds: []Kind{kCC, kCD, kDefs, kRow, kRow, kErr}},
	{name: "error in a later result", shape: ShapeResult, build: func(r *response) {
		r.ok(more).err(1146, "42S02", "Table 'shop.x' doesn't exist")
	}, kinds: []Kind{kOK, kErr}, status: more, hasStatus: true},
	// A stored procedure that sends results while its own cursor is open:
	// their EOF packets say SERVER_STATUS_CURSOR_EXISTS, but no cursor was
	// asked for and rows follow (MariaDB's signal.test hung on this). The
	// CALL then fails.
	{name: "CALL with the procedure's cursor open", shape: ShapeResult, build: func(r *response) {
		r.head(more|cursor, colNote).rows(row(str("before RESIGNAL"))).end(more | cursor | mysql.SERVER_STATUS_LAST_ROW_SEND)
		r.head(more|cursor, colID).rows(row(str("1")), row(str("2"))).end(more | cursor)
		r.err(1329, "02000", "No data - zero rows fetched, selected, or processed")
	}, kinds: []Kind{kCC, kCD, kDefs, kRow, kEOF, kCC, kCD, kDefs, kRow, kRow, kEOF, kErr},
		status: more | cursor, hasStatus: true},
	{name: "prepared CALL with the procedure's cursor open", shape: ShapeExecute, build: func(r *response) {
		r.head(more|cursor, colID).binRows(1).end(more | cursor)
		r.ok(autocommit)
	}, kinds: []Kind{kCC, kCD, kDefs, kRow, kEOF, kOK}, status: autocommit, hasStatus: true},
	// A CALL executed with a cursor asked for: the server opens none (a
	// cursor is one result), and the flag is the procedure's.
	{name: "CALL asked for a cursor", shape: ShapeCursor, build: func(r *response) {
		r.head(more|cursor, colID).binRows(1).end(more | cursor)
		r.head(more|cursor, colNote).end(more | cursor)
		r.ok(autocommit)
	}, kinds: []Kind{kCC, kCD, kDefs, kRow, kEOF, kCC, kCD, kDefs, kEOF, kOK}, status: autocommit, hasStatus: true},
	// OUT parameters of a prepared CALL: a result set flagged
	// SERVER_PS_OUT_PARAMS, then the CALL's OK.
	{name: "OUT parameters", shape: ShapeExecute, build: func(r *response) {
		r.head(more, colID).binRows(3).end(more)
		r.head(more|mysql.SERVER_PS_OUT_PARAMS, colID, colID).binRows(6).end(more | mysql.SERVER_PS_OUT_PARAMS)
		r.ok(autocommit)
	}, kinds: []Kind{kCC, kCD, kDefs, kRow, kEOF, kCC, kCD, kCD, kDefs, kRow, kEOF, kOK}, status: autocommit, hasStatus: true},
	// COM_STMT_EXECUTE opening a cursor: the definitions end the response,
	// the rows come through COM_STMT_FETCH.
	{name: "cursor", shape: ShapeCursor, build: func(r *response) {
		r.add(AppendLenenc(nil, 2))
		r.add(AppendColumnDef(nil, &colID)).add(AppendColumnDef(nil, &colNote))
		r.end(cursor) // classic: the EOF after definitions; else an OK with 0xfe
	}, kinds: []Kind{kCC, kCD, kCD, kEOF}, status: cursor, hasStatus: true},
	// A cursor asked for, none opened (the server decides): rows follow.
	{name: "cursor asked for, none opened", shape: ShapeCursor, build: func(r *response) {
		r.head(autocommit, colID).binRows(1, 2).end(autocommit)
	}, kinds: []Kind{kCC, kCD, kDefs, kRow, kRow, kEOF}, status: autocommit, hasStatus: true},
	{name: "execute OK", shape: ShapeExecute, build: func(r *response) { r.ok(autocommit) },
		kinds: []Kind{kOK}, status: autocommit, hasStatus: true},
	{name: "LOCAL INFILE", shape: ShapeResult, build: func(r *response) {
		r.add(cat(byte(InfileHeader), "/tmp/orders.csv")).ok(autocommit)
	}, kinds: []Kind{KindInfile, kOK}, status: autocommit, hasStatus: true},
	{name: "LOCAL INFILE refused", shape: ShapeResult, build: func(r *response) {
		r.add(cat(byte(InfileHeader), "/tmp/orders.csv")).err(2027, "HY000", "Malformed packet")
	}, kinds: []Kind{KindInfile, kErr}},
	// MariaDB prepares LOAD DATA LOCAL INFILE, and asks for the file in
	// answer to the execution (mtr's loaddata with --ps-protocol).
	{name: "LOCAL INFILE answering an execution", shape: ShapeExecute, build: func(r *response) {
		r.add(cat(byte(InfileHeader), "/tmp/orders.csv")).err(1366, "22007", "Incorrect integer value")
	}, kinds: []Kind{KindInfile, kErr}},
	{name: "LOCAL INFILE answering an execution with a cursor asked for", shape: ShapeCursor, build: func(r *response) {
		r.add(cat(byte(InfileHeader), "/tmp/orders.csv")).ok(autocommit)
	}, kinds: []Kind{KindInfile, kOK}, status: autocommit, hasStatus: true},

	// COM_STMT_PREPARE.
	{name: "prepare with params and columns", shape: ShapePrepare, build: func(r *response) {
		r.prepared(5, 2, colID, colNote, colTotal)
	}, kinds: []Kind{KindPrepareOK, kPD, kPD, kDefs, kCD, kCD, kCD, kDefs},
		prepared: PrepareOK{StatementID: 5, Params: 2, Columns: 3}},
	{name: "prepare with params only", shape: ShapePrepare, build: func(r *response) { r.prepared(6, 3) },
		kinds: []Kind{KindPrepareOK, kPD, kPD, kPD, kDefs}, prepared: PrepareOK{StatementID: 6, Params: 3}},
	{name: "prepare with columns only", shape: ShapePrepare, build: func(r *response) { r.prepared(7, 0, colNote) },
		kinds: []Kind{KindPrepareOK, kCD, kDefs}, prepared: PrepareOK{StatementID: 7, Columns: 1}},
	{name: "prepare with neither", shape: ShapePrepare, build: func(r *response) { r.prepared(8, 0) },
		kinds: []Kind{KindPrepareOK}, prepared: PrepareOK{StatementID: 8}},
	{name: "prepare ERR", shape: ShapePrepare, build: func(r *response) { r.err(1064, "42000", "syntax error") },
		kinds: []Kind{kErr}},

	// COM_FIELD_LIST.
	{name: "field list", shape: ShapeFieldList, build: func(r *response) {
		r.add(AppendLenencString(AppendColumnDef(nil, &colID), "0")).add(AppendColumnDef(nil, &colNote)).end(autocommit)
	}, kinds: []Kind{kCD, kCD, kEOF}, status: autocommit, hasStatus: true},
	{name: "field list ERR", shape: ShapeFieldList, build: func(r *response) { r.err(1146, "42S02", "no table") },
		kinds: []Kind{kErr}},

	// COM_STMT_FETCH.
	{name: "fetch, last rows", shape: ShapeRows, build: func(r *response) {
		r.binRows(1, 2).end(cursor | mysql.SERVER_STATUS_LAST_ROW_SEND)
	}, kinds: []Kind{kRow, kRow, kEOF}, status: cursor | mysql.SERVER_STATUS_LAST_ROW_SEND, hasStatus: true},
	{name: "fetch, more to come", shape: ShapeRows, build: func(r *response) {
		r.binRows(1).end(cursor)
	}, kinds: []Kind{kRow, kEOF}, status: cursor, hasStatus: true},
	// MORE_RESULTS on a fetch's EOF does not make it continue.
	{name: "fetch ignores more results", shape: ShapeRows, build: func(r *response) { r.end(more) },
		kinds: []Kind{kEOF}, status: more, hasStatus: true},
	{name: "fetch ERR", shape: ShapeRows, build: func(r *response) { r.err(1421, "HY000", "no cursor") },
		kinds: []Kind{kErr}},

	// One-packet responses.
	{name: "ping", shape: ShapeOne, build: func(r *response) { r.ok(autocommit) },
		kinds: []Kind{kOK}, status: autocommit, hasStatus: true},
	{name: "init db ERR", shape: ShapeOne, build: func(r *response) { r.err(1049, "42000", "Unknown database 'x'") },
		kinds: []Kind{kErr}},
	// COM_SET_OPTION answers EOF: classic, or an OK with header 0xfe.
	{name: "set option", shape: ShapeOne, build: func(r *response) { r.end(autocommit) },
		kinds: []Kind{kEOF}, status: autocommit, hasStatus: true},
	{name: "statistics", shape: ShapeOne, build: func(r *response) {
		r.add([]byte("Uptime: 5  Threads: 1  Questions: 2  Slow queries: 0  Opens: 17  Open tables: 10  Queries per second avg: 0.400"))
	}, kinds: []Kind{KindOther}},
}

func TestWalker(t *testing.T) {
	for _, tc := range walkCases {
		for _, deprecateEOF := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/deprecateEOF=%v", tc.name, deprecateEOF), func(t *testing.T) {
				r := &response{deprecateEOF: deprecateEOF}
				tc.build(r)
				want := tc.kinds
				if deprecateEOF {
					want = slices.DeleteFunc(slices.Clone(want), func(k Kind) bool { return k == KindDefsEOF })
				}
				var w Walker
				w.Reset(tc.shape, deprecateEOF)
				var got []Kind
				for i, p := range r.pkts {
					if w.Done() {
						t.Fatalf("done before packet %d; kinds %v", i, kindList(got))
					}
					k, err := w.Next(p, len(p))
					if err != nil {
						t.Fatalf("packet %d (% x): %v; kinds so far %v", i, p[:min(len(p), 16)], err, kindList(got))
					}
					got = append(got, k)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("kinds %v, want %v", kindList(got), kindList(want))
				}
				if !w.Done() {
					t.Fatal("not done at the end of the response")
				}
				if status, has := w.Status(); status != tc.status || has != tc.hasStatus {
					t.Errorf("Status() = %#x, %v; want %#x, %v", status, has, tc.status, tc.hasStatus)
				}
				if w.PrepareOK() != tc.prepared {
					t.Errorf("PrepareOK() = %+v, want %+v", w.PrepareOK(), tc.prepared)
				}
				// Once done, every packet is an error, whatever it is.
				for _, extra := range r.pkts {
					if k, err := w.Next(extra, len(extra)); !errors.Is(err, ErrMalformed) {
						t.Fatalf("packet after the end: %v, %v", k, err)
					}
				}
				// Reset readies it for the next command.
				w.Reset(ShapeOne, deprecateEOF)
				if w.Done() || w.PrepareOK() != (PrepareOK{}) {
					t.Fatal("Reset kept state")
				}
				if _, has := w.Status(); has {
					t.Fatal("Reset kept the status")
				}
			})
		}
	}
}

func TestWalkerZeroValue(t *testing.T) {
	// The zero Walker reads a result from a classic-EOF peer.
	var w Walker
	for _, p := range [][]byte{{1}, AppendColumnDef(nil, &colID), AppendEOF(nil, EOF{}), {1, '1'}, AppendEOF(nil, EOF{Status: 2})} {
		if _, err := w.Next(p, len(p)); err != nil {
			t.Fatal(err)
		}
	}
	if !w.Done() {
		t.Fatal("not done")
	}
}

func TestWalkerLargePackets(t *testing.T) {
	// The forwarder may hold only the start of a large packet: the walker
	// classifies it from its first byte and the first physical packet's
	// length. A value of 2^24 bytes or more starts with 0xfe and fills the
	// physical packet: a row, not an EOF.
	for _, deprecateEOF := range []bool{false, true} {
		var w Walker
		w.Reset(ShapeResult, deprecateEOF)
		r := &response{deprecateEOF: deprecateEOF}
		r.head(autocommit, colNote)
		for _, p := range r.pkts {
			if _, err := w.Next(p, len(p)); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			p []byte
			n int
		}{
			{[]byte{0xfe}, MaxPayload},
			{[]byte{0xfe, 0, 0, 0, 1, 0, 0, 0, 0}, MaxPayload},
			{[]byte{0xfd}, 1 << 20},
			{[]byte{0xff}, MaxPayload},
		} {
			if k, err := w.Next(tc.p, tc.n); err != nil || k != KindRow || w.Done() {
				t.Fatalf("deprecate EOF %v: % x of %d: %v, %v", deprecateEOF, tc.p, tc.n, k, err)
			}
		}
		if k, err := w.Next(AppendEOF(nil, EOF{}), 5); err != nil || k != KindEOF || !w.Done() {
			t.Fatalf("EOF after large rows: %v, %v", k, err)
		}

		// A large binary row in a fetch, and a column definition.
		w.Reset(ShapeRows, deprecateEOF)
		if k, err := w.Next([]byte{0}, MaxPayload); err != nil || k != KindRow {
			t.Fatalf("fetch: %v, %v", k, err)
		}
		w.Reset(ShapeFieldList, deprecateEOF)
		def := AppendColumnDef(nil, &colNote)
		if k, err := w.Next(def[:1], len(def)); err != nil || k != KindColumnDef {
			t.Fatalf("field list: %v, %v", k, err)
		}
	}
}

func TestWalkerErrors(t *testing.T) {
	def := AppendColumnDef(nil, &colID)
	eof := AppendEOF(nil, EOF{Status: autocommit})
	for _, tc := range []struct {
		name         string
		shape        Shape
		deprecateEOF bool
		pkts         [][]byte
	}{
		{"empty packet", ShapeResult, false, [][]byte{{}}},
		{"empty packet in rows", ShapeRows, true, [][]byte{{0, 0, 'a'}, {}}},
		{"empty one-packet response", ShapeOne, false, [][]byte{{}}},
		{"column count 0", ShapeResult, false, [][]byte{{0xfc, 0, 0}}},
		{"column count over 2^24", ShapeResult, false, [][]byte{{0xfe, 1, 0, 0, 1, 0, 0, 0, 0}}},
		{"column count cut", ShapeResult, false, [][]byte{{0xfc, 1}}},
		{"EOF where a result starts", ShapeResult, false, [][]byte{eof}},
		{"cut OK", ShapeResult, false, [][]byte{{0, 0xfc}}},
		{"row instead of EOF after definitions", ShapeResult, false, [][]byte{{1}, def, {1, 'a'}}},
		{"OK instead of EOF after definitions", ShapeResult, false, [][]byte{{1}, def, AppendOK(nil, OK{})}},
		{"malformed EOF after definitions", ShapeResult, false, [][]byte{{1}, def, {0xfe, 0, 0}}},
		{"malformed EOF after rows", ShapeResult, true, [][]byte{{1}, def, {0xfe, 0, 0}}},
		{"malformed EOF ending a field list", ShapeFieldList, false, [][]byte{def, {0xfe, 0}}},
		{"malformed EOF ending a fetch", ShapeRows, false, [][]byte{{0xfe, 1, 2}}},
		{"cut prepare OK", ShapePrepare, false, [][]byte{{0, 1, 0, 0, 0}}},
		{"no EOF after parameters", ShapePrepare, false, [][]byte{
			AppendPrepareOK(nil, PrepareOK{StatementID: 1, Params: 1, Columns: 1}), def, def}},
		{"no EOF after prepare columns", ShapePrepare, false, [][]byte{
			AppendPrepareOK(nil, PrepareOK{StatementID: 1, Columns: 1}), def, def}},
		{"packet after OK", ShapeResult, false, [][]byte{AppendOK(nil, OK{}), AppendOK(nil, OK{})}},
		{"packet after a one-packet response", ShapeOne, false, [][]byte{AppendOK(nil, OK{}), eof}},
		{"packet after prepare ERR", ShapePrepare, true, [][]byte{AppendErr(nil, &mysql.MyError{Code: 1}), def}},
		// What a desynchronised reading looks like: packets that cannot
		// be where the walker is.
		{"column count with bytes after it (a row)", ShapeResult, false, [][]byte{{1, '1'}}},
		{"column definition without catalog def", ShapeResult, false, [][]byte{{1}, {1, 'x', 2, 'y', 'z'}}},
		{"short column definition", ShapeResult, true, [][]byte{{2}, def, {3, 'd', 'e'}}},
		{"parameter definition without catalog def", ShapePrepare, false, [][]byte{
			AppendPrepareOK(nil, PrepareOK{StatementID: 1, Params: 1}), {1, '1'}}},
		{"prepare column definition without catalog def", ShapePrepare, true, [][]byte{
			AppendPrepareOK(nil, PrepareOK{StatementID: 1, Columns: 1}), {1, '1'}}},
		{"field list definition without catalog def", ShapeFieldList, false, [][]byte{def, {1, 'a'}}},
		{"text row in a binary result", ShapeExecute, false, [][]byte{{1}, def, eof, {1, '1'}}},
		{"text row in a fetch", ShapeRows, false, [][]byte{{0, 0}, {1, '1'}}},
	} {
		var w Walker
		w.Reset(tc.shape, tc.deprecateEOF)
		var err error
		for i, p := range tc.pkts {
			_, err = w.Next(p, len(p))
			if err != nil && i != len(tc.pkts)-1 {
				t.Fatalf("%s: packet %d: %v", tc.name, i, err)
			}
		}
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v", tc.name, err)
		}
	}
	// A packet may not claim a zero length while holding bytes, nor the
	// reverse.
	var w Walker
	if _, err := w.Next([]byte{0}, 0); err == nil {
		t.Error("n = 0 accepted")
	}
	if _, err := w.Next(nil, 7); err == nil {
		t.Error("no bytes accepted")
	}
	if _, err := w.Next([]byte{1}, 1); err != nil {
		t.Errorf("the walker is not stuck after rejecting: %v", err)
	}
}

func TestWalkerOddOnePacketResponses(t *testing.T) {
	for _, tc := range []struct {
		name         string
		deprecateEOF bool
		p            []byte
		want         Kind
		status       bool
	}{
		// An OK too short to decode still ends the response as OK.
		{"cut OK", false, []byte{0}, KindOK, false},
		// A 0xfe packet that is no EOF is something else (an old-style
		// auth switch, say).
		{"0xfe, not an EOF", false, []byte{0xfe, 'x'}, KindOther, false},
		{"0xfe, not an OK", true, []byte{0xfe, 0xfc, 0, 0, 0, 0, 0}, KindOther, false},
		// A classic EOF is an EOF whatever was negotiated.
		{"classic EOF from a deprecate-EOF peer", true, AppendEOF(nil, EOF{Status: 2}), KindEOF, true},
		{"OK with header 0xfe from a classic peer", false, AppendEOFAsOK(nil, EOF{Status: 2}), KindOther, false},
	} {
		var w Walker
		w.Reset(ShapeOne, tc.deprecateEOF)
		k, err := w.Next(tc.p, len(tc.p))
		if _, has := w.Status(); err != nil || k != tc.want || !w.Done() || has != tc.status {
			t.Errorf("%s: %v, %v; status %v", tc.name, k, err, has)
		}
	}
	// A prepare answered with something else than OK or ERR ends there.
	var w Walker
	w.Reset(ShapePrepare, false)
	if k, err := w.Next([]byte("?"), 1); err != nil || k != KindOther || !w.Done() {
		t.Errorf("prepare answered oddly: %v, %v", k, err)
	}
}

// TestRowRun: the fast path passes only whole, plain rows in sequence and
// stops before anything the walker must decide on.
func TestRowRun(t *testing.T) {
	framed := func(seq uint8, payloads ...[]byte) []byte {
		var b []byte
		for _, p := range payloads {
			h := make([]byte, HeaderSize)
			PutHeader(h, len(p), seq)
			b = append(append(b, h...), p...)
			seq++
		}
		return b
	}
	row1, row2 := []byte{3, 'a', 'b', 'c'}, []byte{0xfb, 1, 'x'} // text rows (0xfb: NULL)
	eof := []byte{EOFHeader, 0, 0, 2, 0}
	errPkt := []byte{ErrHeader, 0x28, 0x04, '#', 'H', 'Y', '0', '0', '0', 'x'}
	bin := []byte{binaryRowHeader, 0, 1}
	cases := []struct {
		name      string
		buf       []byte
		seq       uint8
		binary    bool
		wantCount int
	}{
		{"rows then EOF", framed(5, row1, row2, eof), 5, false, 2},
		{"rows then ERR", framed(5, row1, errPkt), 5, false, 1},
		{"first is EOF", framed(5, eof), 5, false, 0},
		{"sequence out of step", framed(6, row1, row2), 5, false, 0},
		{"partial last row", framed(5, row1, row2)[:len(framed(5, row1, row2))-1], 5, false, 1},
		{"header only", framed(5, row1)[:HeaderSize], 5, false, 0},
		{"empty packet", framed(5, row1, []byte{}, row2), 5, false, 1},
		{"binary rows", framed(9, bin, bin, eof), 9, true, 2},
		{"binary row with a wrong header", framed(9, bin, row1), 9, true, 1},
		{"sequence wraps", framed(255, row1, row2, row1), 255, false, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			size, count := RowRun(c.buf, c.seq, 0, c.binary)
			if count != c.wantCount {
				t.Fatalf("count = %d, want %d", count, c.wantCount)
			}
			// The size is that of the first count packets exactly.
			want := 0
			for range count {
				want += HeaderSize + PayloadLen(c.buf[want:])
			}
			if size != want {
				t.Fatalf("size = %d, want %d", size, want)
			}
		})
	}
	// A packet of maximum size is continued by the next: never a run.
	big := make([]byte, HeaderSize+MaxPayload)
	PutHeader(big, MaxPayload, 0)
	big[HeaderSize] = 1
	if _, count := RowRun(big, 0, 0, false); count != 0 {
		t.Fatalf("a maximum-size packet was passed as a row")
	}
	// Renumbering lowers the ids of the run's packets only.
	buf := framed(5, row1, row2, eof)
	if _, count := RowRun(buf, 5, 1, false); count != 2 {
		t.Fatalf("renumbered run: count %d, want 2", count)
	}
	second := HeaderSize + len(row1)
	third := second + HeaderSize + len(row2)
	if buf[3] != 4 || buf[second+3] != 5 || buf[third+3] != 7 {
		t.Fatalf("sequence ids after renumbering: %d %d %d, want 4 5 7", buf[3], buf[second+3], buf[third+3])
	}
}

// TestWalkerWarnings: Warnings is the warning count of the packet that
// ended the response, an OK or the EOF (classic, or an OK with header
// 0xfe) after rows; none after an error.
func TestWalkerWarnings(t *testing.T) {
	for _, deprecateEOF := range []bool{false, true} {
		end := func(r *response, e EOF) *response {
			if deprecateEOF {
				return r.add(AppendEOFAsOK(nil, e))
			}
			return r.add(AppendEOF(nil, e))
		}
		for _, tc := range []struct {
			name  string
			build func(r *response)
			want  uint16
		}{
			{"OK", func(r *response) { r.add(AppendOK(nil, OK{Status: autocommit, Warnings: 2})) }, 2},
			{"rows", func(r *response) {
				end(r.head(autocommit, colID).rows(row(str("1"))), EOF{Status: autocommit, Warnings: 3})
			}, 3},
			{"none", func(r *response) { end(r.head(autocommit, colID), EOF{Status: autocommit}) }, 0},
			{"last result's", func(r *response) {
				end(r.head(more, colID), EOF{Status: more, Warnings: 5})
				r.add(AppendOK(nil, OK{Status: autocommit, Warnings: 1}))
			}, 1},
		} {
			r := &response{deprecateEOF: deprecateEOF}
			tc.build(r)
			var w Walker
			w.Reset(ShapeResult, deprecateEOF)
			for _, p := range r.pkts {
				if _, err := w.Next(p, len(p)); err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
			}
			if !w.Done() || w.Warnings() != tc.want {
				t.Errorf("%s (deprecateEOF %v): done %v, Warnings() = %d, want %d", tc.name, deprecateEOF, w.Done(), w.Warnings(), tc.want)
			}
		}
	}
}
