package wire

import (
	"bufio"
	"bytes"
	"database/sql"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// The protocol documentation's response to "select @@version_comment limit
// 1": its column definition, and the whole text result set.
var (
	docVersionColumn = Column{Name: "@@version_comment", Charset: 8, Length: 0x1c,
		Type: mysql.MYSQL_TYPE_VAR_STRING, Decimals: 0x1f}
	docVersionDef = `03 64 65 66 00 00 00 11 40 40 76 65 72 73 69 6f 6e 5f 63 6f 6d 6d 65 6e 74 00
		0c 08 00 1c 00 00 00 fd 00 00 1f 00 00`
	docVersionRow    = `1c 4d 79 53 51 4c 20 43 6f 6d 6d 75 6e 69 74 79 20 53 65 72 76 65 72 20 28 47 50 4c 29`
	docVersionResult = `01 00 00 01 01
		27 00 00 02 ` + docVersionDef + `
		05 00 00 03 fe 00 00 02 00
		1d 00 00 04 ` + docVersionRow + `
		05 00 00 05 fe 00 00 02 00`
)

func TestColumnDef(t *testing.T) {
	for _, c := range []Column{colID, colNote, colTotal, colParam, docVersionColumn,
		{Schema: strings.Repeat("s", 64), Table: strings.Repeat("t", 300), Name: "", Length: 1<<32 - 1, Flags: 0xffff},
		// MariaDB's extended metadata: none, format=json, and a block whose
		// length byte is the fixed fields' length byte.
		{Name: "j", Type: mysql.MYSQL_TYPE_BLOB, Extended: []byte{}},
		{Name: "j", Type: mysql.MYSQL_TYPE_BLOB, Extended: []byte("\x01\x04json")},
		{Name: "p", Extended: []byte("\x00\x0apoint_type")[:12]}} {
		p := AppendColumnDef(nil, &c)
		got, err := ParseColumnDef(p)
		if err != nil || !sameColumn(got, c) {
			t.Errorf("ParseColumnDef(AppendColumnDef(%+v)) = %+v, %v", c, got, err)
		}
	}
	want := unhex(t, docVersionDef)
	if got := AppendColumnDef(nil, &docVersionColumn); !bytes.Equal(got, want) {
		t.Fatalf("AppendColumnDef:\n% x\nwant\n% x", got, want)
	}
	// COM_FIELD_LIST appends a default value, which is not decoded.
	withDefault := AppendLenencString(AppendColumnDef(nil, &colNote), "none")
	if got, err := ParseColumnDef(withDefault); err != nil || !sameColumn(got, colNote) {
		t.Fatalf("with a default value: %+v, %v", got, err)
	}
	// A fixed part shorter than its 12 bytes is malformed, even when the
	// packet holds enough bytes for it.
	short := bytes.Clone(want)
	short[26] = 0x0b
	if _, err := ParseColumnDef(short); err == nil {
		t.Fatal("fixed-part length 11 accepted")
	}
	var fields []field
	r := reader{b: want}
	for range 6 {
		s := r.lenencString()
		fields = append(fields, must(AppendLenencString(nil, s)))
	}
	fields = append(fields, must(r.rest()))
	checkPrefixes(t, "column definition", fields, func(p []byte) error {
		_, err := ParseColumnDef(p)
		return err
	})
}

func TestTextRow(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes: the 0xfc length form
	for _, r := range [][]sql.NullString{
		row(str("1"), str("widget"), str("9.99")),
		// NULL and the empty string are different values.
		row(null, str(""), null, str("")),
		row(str(long)),
		row(str("\x00\xfb\xff")),
		row(null),
	} {
		p := AppendTextRow(nil, r)
		got, err := ParseTextRow(p, nil)
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Errorf("ParseTextRow(AppendTextRow(%v)) = %v, %v", r, got, err)
		}
	}
	// NULL is 0xfb; the empty string is a zero length.
	if p := AppendTextRow(nil, row(null, str(""), str("ab"))); !bytes.Equal(p, []byte{0xfb, 0x00, 2, 'a', 'b'}) {
		t.Fatalf("AppendTextRow = % x", p)
	}
	// A row is decoded into dst[:0], and the values are copies.
	p := AppendTextRow(nil, row(str("abc")))
	dst := make([]sql.NullString, 5)
	got, err := ParseTextRow(p, dst)
	if err != nil || len(got) != 1 || &got[0] != &dst[0] {
		t.Fatalf("into dst: %v, %v", got, err)
	}
	p[1] = 'X'
	if got[0].String != "abc" {
		t.Fatal("the value aliases the packet")
	}
	if got, err := ParseTextRow(nil, nil); err != nil || len(got) != 0 {
		t.Fatalf("empty row: %v, %v", got, err)
	}
	if _, err := ParseTextRow([]byte{0xff}, nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("0xff value: %v", err)
	}
	checkPrefixes(t, "text row", []field{
		emptyOK, endOK(AppendLenencString(nil, "widget")), endOK(byte(0xfb)), endOK(byte(0)),
		endOK(AppendLenencString(nil, long)),
	}, func(p []byte) error {
		_, err := ParseTextRow(p, nil)
		return err
	})
}

func TestColumnIndex(t *testing.T) {
	r := TextResult{Columns: []Column{colID, colNote}}
	if r.ColumnIndex("note") != 1 || r.ColumnIndex("id") != 0 || r.ColumnIndex("nope") != -1 {
		t.Fatal("ColumnIndex")
	}
}

func TestAppendTextResultDocumented(t *testing.T) {
	res := &TextResult{Columns: []Column{docVersionColumn},
		Rows: [][]sql.NullString{row(str("MySQL Community Server (GPL)"))}, Status: autocommit}
	want := unhex(t, docVersionResult)
	got, next := AppendTextResult(nil, res, 1, 0)
	if !bytes.Equal(got, want) || next != 6 {
		t.Fatalf("next %d\n% x\nwant\n% x", next, got, want)
	}
	// Under CLIENT_DEPRECATE_EOF: no EOF after the definitions, and an OK
	// with header 0xfe at the end.
	wantDeprecated := unhex(t, `01 00 00 01 01
		27 00 00 02 `+docVersionDef+`
		1d 00 00 03 `+docVersionRow+`
		07 00 00 04 fe 00 00 02 00 00 00`)
	got, next = AppendTextResult(nil, res, 1, mysql.CLIENT_DEPRECATE_EOF)
	if !bytes.Equal(got, wantDeprecated) || next != 5 {
		t.Fatalf("deprecate EOF: next %d\n% x\nwant\n% x", next, got, wantDeprecated)
	}
	// The proxy's own query reads it back.
	back, err := ReadTextResult(serve(want), false, 1<<20)
	if err != nil || !reflect.DeepEqual(back, res) {
		t.Fatalf("ReadTextResult: %+v, %v", back, err)
	}
}

func TestTextResultRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		res  TextResult
	}{
		{"rows with NULLs", TextResult{Columns: []Column{colID, colNote, colTotal},
			Rows: [][]sql.NullString{
				row(str("1"), str("gift wrap"), str("19.90")),
				row(str("2"), null, str("0.00")),
				row(str("3"), str(""), null),
			}, Status: autocommit}},
		{"zero rows", TextResult{Columns: []Column{colID}, Status: autocommit | mysql.SERVER_STATUS_IN_TRANS}},
		{"OK only", TextResult{AffectedRows: 3, LastInsertID: 1 << 40, Status: autocommit}},
		{"OK, nothing", TextResult{}},
	} {
		for _, deprecateEOF := range []bool{false, true} {
			caps := uint32(0)
			if deprecateEOF {
				caps = mysql.CLIENT_DEPRECATE_EOF
			}
			b, _ := AppendTextResult([]byte("room"), &tc.res, 1, caps)
			if string(b[:4]) != "room" {
				t.Fatalf("%s: dst overwritten", tc.name)
			}
			r := serve(append(b[4:], "next response"...))
			got, err := ReadTextResult(r, deprecateEOF, 1<<20)
			if err != nil || !reflect.DeepEqual(*got, tc.res) {
				t.Errorf("%s, deprecate EOF %v: got %+v, %v\nwant %+v", tc.name, deprecateEOF, got, err, tc.res)
			}
			// Exactly the response is consumed.
			if rest, _ := io.ReadAll(r); string(rest) != "next response" {
				t.Errorf("%s, deprecate EOF %v: left %q", tc.name, deprecateEOF, rest)
			}
		}
	}
}

func TestReadTextResultMultiResults(t *testing.T) {
	more := autocommit | mysql.SERVER_MORE_RESULTS_EXISTS
	for _, deprecateEOF := range []bool{false, true} {
		// "select 1, 2; select 'last', NULL": the last set wins.
		r := &response{deprecateEOF: deprecateEOF}
		r.head(more, colID, colTotal).rows(row(str("1"), str("2"))).end(more)
		r.head(autocommit, colNote, colNote).rows(row(str("last"), null)).end(autocommit)
		got, err := ReadTextResult(serve(r.framed(1)), deprecateEOF, 1<<20)
		want := &TextResult{Columns: []Column{colNote, colNote}, Rows: [][]sql.NullString{row(str("last"), null)},
			Status: autocommit}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("deprecate EOF %v: got %+v, %v", deprecateEOF, got, err)
		}
		// "update ...; select 'last', NULL": more results flagged on an OK.
		r = &response{deprecateEOF: deprecateEOF}
		r.ok(more)
		r.head(autocommit, colNote, colNote).rows(row(str("last"), null)).end(autocommit)
		got, err = ReadTextResult(serve(r.framed(1)), deprecateEOF, 1<<20)
		if err != nil || !reflect.DeepEqual(got.Columns, want.Columns) || !reflect.DeepEqual(got.Rows, want.Rows) || got.Status != autocommit {
			t.Errorf("deprecate EOF %v, after an OK: got %+v, %v", deprecateEOF, got, err)
		}
	}
}

func TestReadTextResultErrors(t *testing.T) {
	for _, deprecateEOF := range []bool{false, true} {
		build := func(f func(r *response)) []byte {
			r := &response{deprecateEOF: deprecateEOF}
			f(r)
			return r.framed(1)
		}
		// A server error is the server's answer: returned as *mysql.MyError
		// with the connection at the next response.
		in := build(func(r *response) { r.err(1146, "42S02", "Table 'shop.x' doesn't exist") })
		ping, _ := AppendPacket(nil, AppendOK(nil, OK{Status: autocommit}), 1)
		rd := serve(append(in, ping...))
		_, err := ReadTextResult(rd, deprecateEOF, 1<<20)
		var me *mysql.MyError
		if !errors.As(err, &me) || me.Code != 1146 || me.State != "42S02" || me.Message != "Table 'shop.x' doesn't exist" {
			t.Fatalf("ERR: %v", err)
		}
		if res, err := ReadTextResult(rd, deprecateEOF, 1<<20); err != nil || res.Status != autocommit {
			t.Fatalf("the response after an ERR: %+v, %v", res, err)
		}
		// An error after some rows (a query killed while sending).
		in = build(func(r *response) {
			r.head(autocommit, colID).rows(row(str("1"))).err(1317, "70100", "Query execution was interrupted")
		})
		if _, err := ReadTextResult(serve(in), deprecateEOF, 1<<20); !errors.As(err, &me) || me.Code != 1317 {
			t.Fatalf("ERR after rows: %v", err)
		}

		for _, tc := range []struct {
			name string
			in   []byte
			want error
		}{
			{"cut in a header", build(func(r *response) { r.ok(autocommit) })[:3], io.ErrUnexpectedEOF},
			{"response framed from id 2", func() []byte {
				r := &response{deprecateEOF: deprecateEOF}
				r.ok(autocommit)
				return r.framed(2)
			}(), ErrSequence},
			{"LOCAL INFILE", build(func(r *response) { r.add(cat(byte(InfileHeader), "/etc/passwd")) }), ErrMalformed},
			{"row wider than the columns", build(func(r *response) {
				r.head(autocommit, colID).rows(row(str("1"), str("2"))).end(autocommit)
			}), ErrMalformed},
			{"row narrower than the columns", build(func(r *response) {
				r.head(autocommit, colID, colNote).rows(row(str("1"))).end(autocommit)
			}), ErrMalformed},
			{"bad row", build(func(r *response) {
				r.head(autocommit, colID).add([]byte{5, 'a'}).end(autocommit)
			}), ErrMalformed},
			{"bad column definition", build(func(r *response) {
				r.add([]byte{1}).add([]byte{3, 'd', 'e', 'f'}).defsEOF(autocommit).end(autocommit)
			}), ErrMalformed},
			{"grammar", build(func(r *response) { r.add([]byte{0xfc, 0, 0}) }), ErrMalformed},
			{"packet over the limit", build(func(r *response) {
				r.head(autocommit, colNote).rows(row(str(strings.Repeat("x", 2000)))).end(autocommit)
			}), ErrTooLarge},
			{"cut short", build(func(r *response) { r.head(autocommit, colID).rows(row(str("1"))) }), io.EOF},
		} {
			_, err := ReadTextResult(serve(tc.in), deprecateEOF, 1000)
			if !errors.Is(err, tc.want) {
				t.Errorf("deprecate EOF %v, %s: err = %v, want %v", deprecateEOF, tc.name, err, tc.want)
			}
		}
	}
}

func TestColumnCount(t *testing.T) {
	for _, n := range []int{1, 250, 251, 0xffff, 1 << 16, 68001, 1 << 24} {
		p := AppendColumnCount(nil, n)
		if got, err := ParseColumnCount(p); err != nil || got != n {
			t.Errorf("ParseColumnCount(AppendColumnCount(%d)) = %d, %v", n, got, err)
		}
	}
	if got := AppendColumnCount(nil, 3); !bytes.Equal(got, []byte{3}) {
		t.Fatalf("AppendColumnCount(3) = % x", got)
	}
	for _, bad := range [][]byte{nil, {0}, {0xfb}, {0xff}, {0xfc, 1}, AppendColumnCount(nil, 1<<24+1)} {
		if n, err := ParseColumnCount(bad); err == nil {
			t.Errorf("ParseColumnCount(% x) = %d", bad, n)
		}
	}
}

func TestFieldListColumn(t *testing.T) {
	for _, def := range []sql.NullString{{}, {String: "none", Valid: true}, {String: "", Valid: true}} {
		p := AppendFieldListColumn(nil, &colNote, def)
		c, got, err := ParseFieldListColumn(p)
		if err != nil || !sameColumn(c, colNote) || got != def {
			t.Errorf("default %+v: %+v, %+v, %v", def, c, got, err)
		}
		// The default follows the definition ParseColumnDef reads.
		if c, err := ParseColumnDef(p); err != nil || !sameColumn(c, colNote) {
			t.Errorf("default %+v: ParseColumnDef = %+v, %v", def, c, err)
		}
	}
	// NULL is 0xfb, as in a text row.
	def := AppendColumnDef(nil, &colNote)
	if got := AppendFieldListColumn(nil, &colNote, sql.NullString{}); !bytes.Equal(got, cat(def, byte(0xfb))) {
		t.Fatalf("NULL default: % x", got)
	}
	for _, bad := range [][]byte{def, cat(def, byte(0xfb), byte(0)), cat(def, byte(5), "ab")} {
		if _, _, err := ParseFieldListColumn(bad); err == nil {
			t.Errorf("ParseFieldListColumn(% x) accepted", bad)
		}
	}
	checkPrefixes(t, "ParseFieldListColumn", []field{must(def), must(AppendLenencString(nil, "none"))}, func(p []byte) error {
		_, _, err := ParseFieldListColumn(p)
		return err
	})
}

// TestSkipResultAndRowCap: SkipResult walks a result of any size keeping
// nothing; ReadTextResult refuses more than MaxTextRows rows, so a server
// cannot make the proxy's own queries hold unbounded memory.
func TestSkipResultAndRowCap(t *testing.T) {
	r := &TextResult{Columns: []Column{{Name: "a"}}, Status: 2}
	for i := range MaxTextRows + 1 {
		r.Rows = append(r.Rows, []sql.NullString{{String: strconv.Itoa(i), Valid: true}})
	}
	framed, _ := AppendTextResult(nil, r, 1, 0)
	got, err := SkipResult(bufio.NewReader(bytes.NewReader(framed)), false, 1<<20)
	if err != nil || len(got.Rows) != 0 || len(got.Columns) != 0 || got.Status != 2 {
		t.Fatalf("SkipResult: %d rows %d columns status %d, %v", len(got.Rows), len(got.Columns), got.Status, err)
	}
	if _, err := ReadTextResult(bufio.NewReader(bytes.NewReader(framed)), false, 1<<20); !errors.Is(err, ErrTooManyRows) {
		t.Fatalf("ReadTextResult of %d rows: %v, want ErrTooManyRows", MaxTextRows+1, err)
	}
	r.Rows = r.Rows[:MaxTextRows]
	framed, _ = AppendTextResult(nil, r, 1, 0)
	if got, err := ReadTextResult(bufio.NewReader(bytes.NewReader(framed)), false, 1<<20); err != nil || len(got.Rows) != MaxTextRows {
		t.Fatalf("ReadTextResult of exactly %d rows: %v", MaxTextRows, err)
	}
}
