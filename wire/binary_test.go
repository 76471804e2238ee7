package wire

import (
	"bytes"
	"fmt"
	"math"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// sameValue compares decoded values: Bytes by content (nil and empty
// alike), floats by their bits, so that a NaN equals itself.
func sameValue(a, b Value) bool {
	return a.Type == b.Type && a.Unsigned == b.Unsigned && a.Null == b.Null && a.Int == b.Int &&
		math.Float64bits(a.Float) == math.Float64bits(b.Float) && a.Time == b.Time && bytes.Equal(a.Bytes, b.Bytes)
}

func sameValues(a, b []Value) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !sameValue(a[i], b[i]) {
			return false
		}
	}
	return true
}

// The values the binary protocol documentation gives as examples (MySQL's
// "Binary Protocol Value"), byte for byte.
var docValues = []struct {
	name string
	v    Value
	hex  string
}{
	{"LONGLONG 1", Value{Type: mysql.MYSQL_TYPE_LONGLONG, Int: 1}, "01 00 00 00 00 00 00 00"},
	{"LONG 1", Value{Type: mysql.MYSQL_TYPE_LONG, Int: 1}, "01 00 00 00"},
	{"SHORT 1", Value{Type: mysql.MYSQL_TYPE_SHORT, Int: 1}, "01 00"},
	{"TINY 1", Value{Type: mysql.MYSQL_TYPE_TINY, Int: 1}, "01"},
	{"DOUBLE 10.2", Value{Type: mysql.MYSQL_TYPE_DOUBLE, Float: 10.2}, "66 66 66 66 66 66 24 40"},
	{"FLOAT 10.2", Value{Type: mysql.MYSQL_TYPE_FLOAT, Float: float64(float32(10.2))}, "33 33 23 41"},
	{"DATETIME 2010-10-17 19:27:30.000001", Value{Type: mysql.MYSQL_TYPE_DATETIME,
		Time: Time{Year: 2010, Month: 10, Day: 17, Hour: 19, Minute: 27, Second: 30, Microsecond: 1}},
		"0b da 07 0a 11 13 1b 1e 01 00 00 00"},
	{"DATE 2010-10-17", Value{Type: mysql.MYSQL_TYPE_DATE, Time: Time{Year: 2010, Month: 10, Day: 17}}, "04 da 07 0a 11"},
	{"TIME -120d 19:27:30.000001", Value{Type: mysql.MYSQL_TYPE_TIME,
		Time: Time{Negative: true, Days: 120, Hour: 19, Minute: 27, Second: 30, Microsecond: 1}},
		"0c 01 78 00 00 00 13 1b 1e 01 00 00 00"},
	{"TIME -120d 19:27:30", Value{Type: mysql.MYSQL_TYPE_TIME,
		Time: Time{Negative: true, Days: 120, Hour: 19, Minute: 27, Second: 30}}, "08 01 78 00 00 00 13 1b 1e"},
	{"TIME 0", Value{Type: mysql.MYSQL_TYPE_TIME}, "00"},
	{"DATETIME 0", Value{Type: mysql.MYSQL_TYPE_DATETIME}, "00"},
	{"VAR_STRING foo", Value{Type: mysql.MYSQL_TYPE_VAR_STRING, Bytes: []byte("foo")}, "03 66 6f 6f"},
}

func TestValueDocumented(t *testing.T) {
	for _, tc := range docValues {
		want := unhex(t, tc.hex)
		if got := AppendValue([]byte{0xaa}, tc.v); !bytes.Equal(got[1:], want) || got[0] != 0xaa {
			t.Errorf("%s: AppendValue = % x, want % x", tc.name, got, want)
		}
		v, n, err := ParseValue(append(bytes.Clone(want), 0xbb), tc.v.Type, false)
		if err != nil || n != len(want) || !sameValue(v, tc.v) {
			t.Errorf("%s: ParseValue = %+v, %d, %v", tc.name, v, n, err)
		}
	}
}

// TestValueIntegers: each integer type's width, sign extension, and the
// unsigned reading of the same bits.
func TestValueIntegers(t *testing.T) {
	for _, tc := range []struct {
		typ      byte
		hex      string
		unsigned bool
		want     int64
	}{
		{mysql.MYSQL_TYPE_TINY, "ff", false, -1},
		{mysql.MYSQL_TYPE_TINY, "ff", true, 255},
		{mysql.MYSQL_TYPE_SHORT, "fe ff", false, -2},
		{mysql.MYSQL_TYPE_SHORT, "fe ff", true, 0xfffe},
		{mysql.MYSQL_TYPE_YEAR, "e8 07", false, 2024},
		{mysql.MYSQL_TYPE_INT24, "ff ff ff ff", false, -1},
		{mysql.MYSQL_TYPE_LONG, "ff ff ff ff", true, 0xffffffff},
		{mysql.MYSQL_TYPE_LONG, "00 00 00 80", false, math.MinInt32},
		{mysql.MYSQL_TYPE_LONGLONG, "ff ff ff ff ff ff ff ff", true, -1}, // uint64 max: the bits
		{mysql.MYSQL_TYPE_LONGLONG, "00 00 00 00 00 00 00 80", false, math.MinInt64},
		{mysql.MYSQL_TYPE_LONGLONG, "ff ff ff ff ff ff ff 7f", false, math.MaxInt64},
	} {
		b := unhex(t, tc.hex)
		v, n, err := ParseValue(b, tc.typ, tc.unsigned)
		if err != nil || n != len(b) || v.Int != tc.want || v.Unsigned != tc.unsigned {
			t.Errorf("type %d % x unsigned %v: %+v, %d, %v; want %d", tc.typ, b, tc.unsigned, v, n, err, tc.want)
		}
		if got := AppendValue(nil, v); !bytes.Equal(got, b) {
			t.Errorf("type %d: AppendValue(%d) = % x, want % x", tc.typ, v.Int, got, b)
		}
	}
	if v, _, _ := ParseValue(unhex(t, "ff ff ff ff ff ff ff ff"), mysql.MYSQL_TYPE_LONGLONG, true); uint64(v.Int) != math.MaxUint64 {
		t.Fatalf("unsigned LONGLONG reads as %d", uint64(v.Int))
	}
	// A value too wide for its type is cut to the type's width.
	if got := AppendValue(nil, Value{Type: mysql.MYSQL_TYPE_SHORT, Int: 0x12345}); !bytes.Equal(got, []byte{0x45, 0x23}) {
		t.Fatalf("SHORT 0x12345 = % x", got)
	}
}

// binaryValues is one value of every form, for round trips and cuts.
var binaryValues = []Value{
	{Type: mysql.MYSQL_TYPE_TINY, Int: -5},
	{Type: mysql.MYSQL_TYPE_TINY, Unsigned: true, Int: 200},
	{Type: mysql.MYSQL_TYPE_SHORT, Int: -300},
	{Type: mysql.MYSQL_TYPE_YEAR, Unsigned: true, Int: 2155},
	{Type: mysql.MYSQL_TYPE_INT24, Int: -70000},
	{Type: mysql.MYSQL_TYPE_LONG, Int: math.MaxInt32},
	{Type: mysql.MYSQL_TYPE_LONGLONG, Int: math.MinInt64},
	{Type: mysql.MYSQL_TYPE_LONGLONG, Unsigned: true, Int: -1},
	{Type: mysql.MYSQL_TYPE_FLOAT, Float: -1.5},
	{Type: mysql.MYSQL_TYPE_FLOAT, Float: math.Inf(1)},
	{Type: mysql.MYSQL_TYPE_DOUBLE, Float: math.Pi},
	{Type: mysql.MYSQL_TYPE_DOUBLE, Float: math.NaN()},
	{Type: mysql.MYSQL_TYPE_DATE, Time: Time{Year: 1999, Month: 12, Day: 31}},
	{Type: mysql.MYSQL_TYPE_DATETIME, Time: Time{Year: 2024, Month: 2, Day: 29, Hour: 13, Minute: 4, Second: 5}},
	{Type: mysql.MYSQL_TYPE_TIMESTAMP, Time: Time{Year: 2024, Month: 2, Day: 29, Microsecond: 123}},
	{Type: mysql.MYSQL_TYPE_NEWDATE, Time: Time{Day: 1}},
	{Type: mysql.MYSQL_TYPE_DATETIME, Time: Time{Second: 1}}, // 0000-00-00 00:00:01
	{Type: mysql.MYSQL_TYPE_TIME, Time: Time{Days: 1, Hour: 2, Minute: 3, Second: 4}},
	{Type: mysql.MYSQL_TYPE_TIME, Time: Time{Negative: true}},
	{Type: mysql.MYSQL_TYPE_TIME, Time: Time{Microsecond: 999999}},
	{Type: mysql.MYSQL_TYPE_VAR_STRING, Bytes: []byte("o'k")},
	{Type: mysql.MYSQL_TYPE_STRING, Bytes: []byte{}},
	{Type: mysql.MYSQL_TYPE_BLOB, Bytes: bytes.Repeat([]byte{0}, 300)},
	{Type: mysql.MYSQL_TYPE_NEWDECIMAL, Bytes: []byte("12.50")},
	{Type: mysql.MYSQL_TYPE_JSON, Bytes: []byte(`{"a":1}`)},
	{Type: mysql.MYSQL_TYPE_BIT, Bytes: []byte{1}},
	{Type: mysql.MYSQL_TYPE_NULL},
}

func TestValueRoundTrip(t *testing.T) {
	for _, v := range binaryValues {
		b := AppendValue(nil, v)
		got, n, err := ParseValue(b, v.Type, v.Unsigned)
		if err != nil || n != len(b) || !sameValue(got, v) {
			t.Errorf("ParseValue(AppendValue(%+v)) = %+v, %d, %v; encoded % x", v, got, n, err, b)
		}
		if v.Type == mysql.MYSQL_TYPE_NULL {
			if len(b) != 0 {
				t.Errorf("NULL takes % x", b)
			}
			continue
		}
		// Every value's encoding is wholly needed: each cut is refused.
		checkPrefixes(t, fmt.Sprintf("value %+v", v), []field{must(b)}, func(p []byte) error {
			_, _, err := ParseValue(p, v.Type, v.Unsigned)
			return err
		})
	}
	// NULL is in the bitmap: AppendValue of a Null value writes nothing.
	if got := AppendValue(nil, Value{Type: mysql.MYSQL_TYPE_LONG, Null: true}); len(got) != 0 {
		t.Fatalf("a NULL LONG takes % x", got)
	}
}

// TestValueTemporalForms: each date and time length the protocol allows is
// read, other lengths are malformed, and the encoder picks the shortest
// form that holds the value.
func TestValueTemporalForms(t *testing.T) {
	date := Time{Year: 2024, Month: 2, Day: 29}
	for _, tc := range []struct {
		typ  byte
		hex  string
		want Time
	}{
		{mysql.MYSQL_TYPE_DATE, "00", Time{}},
		{mysql.MYSQL_TYPE_DATE, "04 e8 07 02 1d", date},
		{mysql.MYSQL_TYPE_DATETIME, "07 e8 07 02 1d 00 00 00", date}, // re-encoded in 4 bytes
		{mysql.MYSQL_TYPE_TIMESTAMP, "0b e8 07 02 1d 01 02 03 00 00 00 00", Time{Year: 2024, Month: 2, Day: 29, Hour: 1, Minute: 2, Second: 3}},
		{mysql.MYSQL_TYPE_TIME, "08 00 00 00 00 00 00 00 00", Time{}},
		{mysql.MYSQL_TYPE_TIME, "0c 00 02 00 00 00 01 02 03 00 00 00 00", Time{Days: 2, Hour: 1, Minute: 2, Second: 3}},
	} {
		b := unhex(t, tc.hex)
		v, n, err := ParseValue(b, tc.typ, false)
		if err != nil || n != len(b) || v.Time != tc.want {
			t.Errorf("type %d % x: %+v, %d, %v", tc.typ, b, v.Time, n, err)
			continue
		}
		again, _, err := ParseValue(AppendValue(nil, v), tc.typ, false)
		if err != nil || again.Time != tc.want {
			t.Errorf("type %d % x re-encoded as % x", tc.typ, b, AppendValue(nil, v))
		}
	}
	for n := range 14 {
		b := append([]byte{byte(n)}, make([]byte, n)...)
		_, _, dateErr := ParseValue(b, mysql.MYSQL_TYPE_DATETIME, false)
		_, _, timeErr := ParseValue(b, mysql.MYSQL_TYPE_TIME, false)
		if wantDate := n == 0 || n == 4 || n == 7 || n == 11; (dateErr == nil) != wantDate {
			t.Errorf("DATETIME of %d bytes: %v", n, dateErr)
		}
		if wantTime := n == 0 || n == 8 || n == 12; (timeErr == nil) != wantTime {
			t.Errorf("TIME of %d bytes: %v", n, timeErr)
		}
	}
}

var (
	colStr  = Column{Name: "s", Type: mysql.MYSQL_TYPE_VAR_STRING}
	colInt  = Column{Name: "i", Type: mysql.MYSQL_TYPE_LONG}
	colUint = Column{Name: "u", Type: mysql.MYSQL_TYPE_LONGLONG, Flags: mysql.UNSIGNED_FLAG}
	colDbl  = Column{Name: "d", Type: mysql.MYSQL_TYPE_DOUBLE}
	colTime = Column{Name: "t", Type: mysql.MYSQL_TYPE_DATETIME}
)

// The protocol documentation's binary result set: one VAR_STRING column
// col1, one row "foobar"; and its row alone.
const (
	docBinaryRow    = `00 00 06 66 6f 6f 62 61 72`
	docBinaryResult = `01 00 00 01 01
		1a 00 00 02 03 64 65 66 00 00 00 04 63 6f 6c 31 00 0c 08 00 06 00 00 00 fd 00 00 1f 00 00
		05 00 00 03 fe 00 00 02 00
		09 00 00 04 ` + docBinaryRow + `
		05 00 00 05 fe 00 00 02 00`
)

func TestBinaryRowDocumented(t *testing.T) {
	col := Column{Name: "col1", Charset: 8, Length: 6, Type: mysql.MYSQL_TYPE_VAR_STRING, Decimals: 0x1f}
	row := []Value{{Type: mysql.MYSQL_TYPE_VAR_STRING, Bytes: []byte("foobar")}}
	if got, want := AppendBinaryRow(nil, row), unhex(t, docBinaryRow); !bytes.Equal(got, want) {
		t.Fatalf("AppendBinaryRow = % x, want % x", got, want)
	}
	got, err := ParseBinaryRow(unhex(t, docBinaryRow), []Column{col}, nil)
	if err != nil || !sameValues(got, row) {
		t.Fatalf("ParseBinaryRow = %+v, %v", got, err)
	}
	// The whole result set, from the append functions.
	var b []byte
	seq := uint8(1)
	for _, p := range [][]byte{AppendColumnCount(nil, 1), AppendColumnDef(nil, &col),
		AppendEOF(nil, EOF{Status: mysql.SERVER_STATUS_AUTOCOMMIT}), AppendBinaryRow(nil, row),
		AppendEOF(nil, EOF{Status: mysql.SERVER_STATUS_AUTOCOMMIT})} {
		b, seq = AppendPacket(b, p, seq)
	}
	if want := unhex(t, docBinaryResult); !bytes.Equal(b, want) {
		t.Fatalf("result set:\n% x\nwant\n% x", b, want)
	}
}

func TestBinaryRow(t *testing.T) {
	null := func(c Column) Value {
		return Value{Type: c.Type, Unsigned: c.Flags&mysql.UNSIGNED_FLAG != 0, Null: true}
	}
	str := func(s string) Value { return Value{Type: mysql.MYSQL_TYPE_VAR_STRING, Bytes: []byte(s)} }
	mixed := []Column{colStr, colInt, colUint, colDbl, colTime}
	mixedRow := []Value{str("a"), {Type: mysql.MYSQL_TYPE_LONG, Int: -7}, {Type: mysql.MYSQL_TYPE_LONGLONG, Unsigned: true, Int: -1},
		{Type: mysql.MYSQL_TYPE_DOUBLE, Float: 0.25}, {Type: mysql.MYSQL_TYPE_DATETIME, Time: Time{Year: 2024, Month: 1, Day: 2, Hour: 3}}}
	ten := make([]Column, 10)
	for i := range ten {
		ten[i] = colStr
	}
	for _, tc := range []struct {
		name   string
		cols   []Column
		row    []Value
		bitmap []byte
	}{
		{"no columns", nil, nil, []byte{0}},
		{"one NULL", []Column{colStr}, []Value{null(colStr)}, []byte{0x04}},
		{"mixed types", mixed, mixedRow, []byte{0}},
		{"mixed NULLs", mixed, []Value{mixedRow[0], null(colInt), mixedRow[2], null(colDbl), mixedRow[4]}, []byte{0x28}},
		// Six columns fill the first byte with the two reserved bits; a
		// seventh starts a second one.
		{"six columns", ten[:6], []Value{str(""), str(""), str(""), str(""), str(""), null(colStr)}, []byte{0x80}},
		{"seven columns", ten[:7], []Value{null(colStr), str(""), str(""), str(""), str(""), str(""), null(colStr)}, []byte{0x04, 0x01}},
		{"ten columns", ten, []Value{str("0"), null(colStr), str("2"), null(colStr), str("4"), null(colStr), str("6"), null(colStr), str("8"), null(colStr)},
			[]byte{0x08 | 0x20 | 0x80, 0x02 | 0x08}},
	} {
		p := AppendBinaryRow([]byte{0xaa}, tc.row)[1:]
		if p[0] != 0 || !bytes.Equal(p[1:1+len(tc.bitmap)], tc.bitmap) {
			t.Errorf("%s: row % x, want bitmap % x", tc.name, p, tc.bitmap)
		}
		got, err := ParseBinaryRow(p, tc.cols, make([]Value, 3))
		if err != nil || !sameValues(got, tc.row) {
			t.Errorf("%s: ParseBinaryRow = %+v, %v", tc.name, got, err)
		}
		// The row ends with its last value.
		if _, err := ParseBinaryRow(append(bytes.Clone(p), 0), tc.cols, nil); err == nil {
			t.Errorf("%s: a byte after the last value accepted", tc.name)
		}
	}
	// One value of every form in one row (the fuzzer's seed).
	all := AppendBinaryRow(nil, binaryValues)
	if got, err := ParseBinaryRow(all, fuzzColumns, nil); err != nil || !sameValues(got, binaryValues) {
		t.Errorf("row of every form: %+v, %v", got, err)
	}
	for _, bad := range [][]byte{nil, {0x01, 0x00}, {0xfe, 0, 0, 2, 0}, AppendErr(nil, mysql.NewError(1064, "x"))} {
		if _, err := ParseBinaryRow(bad, []Column{}, nil); err == nil {
			t.Errorf("ParseBinaryRow(% x) accepted", bad)
		}
	}
	// Every cut of a row is refused.
	p := AppendBinaryRow(nil, mixedRow)
	fs := []field{must(p[:1]), must(p[1:2])}
	rest := p[2:]
	for _, v := range mixedRow {
		n := len(AppendValue(nil, v))
		fs = append(fs, must(rest[:n]))
		rest = rest[n:]
	}
	checkPrefixes(t, "binary row", fs, func(p []byte) error {
		_, err := ParseBinaryRow(p, mixed, nil)
		return err
	})
}

func TestValueString(t *testing.T) {
	for _, tc := range []struct {
		v    Value
		want string
	}{
		{Value{Type: mysql.MYSQL_TYPE_TINY, Int: -1}, "-1"},
		{Value{Type: mysql.MYSQL_TYPE_TINY, Unsigned: true, Int: 255}, "255"},
		{Value{Type: mysql.MYSQL_TYPE_LONGLONG, Unsigned: true, Int: -1}, "18446744073709551615"},
		{Value{Type: mysql.MYSQL_TYPE_LONGLONG, Int: math.MinInt64}, "-9223372036854775808"},
		{Value{Type: mysql.MYSQL_TYPE_FLOAT, Float: float64(float32(10.2))}, "10.2"},
		{Value{Type: mysql.MYSQL_TYPE_DOUBLE, Float: -0.25}, "-0.25"},
		{Value{Type: mysql.MYSQL_TYPE_DATE, Time: Time{Year: 1999, Month: 12, Day: 31}}, "1999-12-31"},
		{Value{Type: mysql.MYSQL_TYPE_DATETIME, Time: Time{Year: 2024, Month: 2, Day: 29, Hour: 13, Minute: 4, Second: 5}}, "2024-02-29 13:04:05"},
		{Value{Type: mysql.MYSQL_TYPE_TIMESTAMP, Time: Time{Year: 2024, Month: 2, Day: 29, Microsecond: 123}}, "2024-02-29 00:00:00.000123"},
		{Value{Type: mysql.MYSQL_TYPE_DATETIME}, "0000-00-00"},
		{Value{Type: mysql.MYSQL_TYPE_TIME, Time: Time{Negative: true, Days: 1, Hour: 2, Minute: 3, Second: 4}}, "-26:03:04"},
		{Value{Type: mysql.MYSQL_TYPE_TIME, Time: Time{Second: 1, Microsecond: 5}}, "00:00:01.000005"},
		{Value{Type: mysql.MYSQL_TYPE_NEWDECIMAL, Bytes: []byte("12.50")}, "12.50"},
		{Value{Type: mysql.MYSQL_TYPE_VAR_STRING, Bytes: []byte("o'k")}, "o'k"},
		{Value{Type: mysql.MYSQL_TYPE_VAR_STRING, Null: true}, "NULL"},
		{Value{Type: mysql.MYSQL_TYPE_NULL}, "NULL"},
	} {
		if got := tc.v.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.v, got, tc.want)
		}
	}
}
