package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// The binary protocol's values: the rows of a result set answering
// COM_STMT_EXECUTE or COM_STMT_FETCH, and the parameters of
// COM_STMT_EXECUTE. How a value is sent follows from its type alone:
//
//   - TINY (1 byte), SHORT and YEAR (2), INT24 and LONG (4), LONGLONG (8):
//     little-endian integers, signed unless flagged unsigned; Value.Int.
//   - FLOAT (4 bytes) and DOUBLE (8): IEEE 754, little-endian; Value.Float.
//   - DATE, DATETIME, TIMESTAMP, NEWDATE and TIME: a length byte, then as
//     many fields as that length says; Value.Time.
//   - NULL: nothing (NULL values of any type go in the row's or the
//     execution's NULL bitmap instead).
//   - every other type (the strings and blobs, DECIMAL and NEWDECIMAL, BIT,
//     ENUM, SET, JSON, GEOMETRY, ...): a length-encoded string; Value.Bytes.

// Value is one value of the binary protocol.
type Value struct {
	// Type is the MYSQL_TYPE_* the value is sent as.
	Type byte
	// Unsigned: an integer type sent unsigned (a column's UNSIGNED_FLAG,
	// a parameter type's flag byte 0x80).
	Unsigned bool
	// Null: SQL NULL, sent in the NULL bitmap; the fields below are unset.
	Null bool
	// Int is an integer type's value, sign-extended; for an unsigned one,
	// its bits: read it as uint64(Int).
	Int int64
	// Float is FLOAT's value (single precision on the wire) or DOUBLE's.
	Float float64
	// Time is the value of the date and time types.
	Time Time
	// Bytes is the value of every other type (nil for the types above). A
	// decoded value aliases the packet.
	Bytes []byte
}

// Time is a date and time type's value field by field, as the binary
// protocol sends it. DATE, DATETIME and TIMESTAMP use Year, Month and Day;
// TIME uses Negative and Days instead; all have the time of day.
type Time struct {
	Year                 uint16
	Month, Day           uint8
	Negative             bool
	Days                 uint32
	Hour, Minute, Second uint8
	Microsecond          uint32
}

// String writes v as text, as the text protocol sends such a value: NULL
// as "NULL", integers in decimal, floats in Go's shortest form, dates as
// 2006-01-02 with as much of the time (15:04:05, .000000) as is set, TIME
// as [-]hours:minutes:seconds with its days counted in the hours, other
// types as their bytes.
func (v Value) String() string {
	t := v.Time
	switch {
	case v.Null || v.Type == mysql.MYSQL_TYPE_NULL:
		return "NULL"
	case intSize(v.Type) > 0 && v.Unsigned:
		return strconv.FormatUint(uint64(v.Int), 10)
	case intSize(v.Type) > 0:
		return strconv.FormatInt(v.Int, 10)
	case v.Type == mysql.MYSQL_TYPE_FLOAT:
		return strconv.FormatFloat(v.Float, 'g', -1, 32)
	case v.Type == mysql.MYSQL_TYPE_DOUBLE:
		return strconv.FormatFloat(v.Float, 'g', -1, 64)
	case v.Type == mysql.MYSQL_TYPE_TIME:
		sign := ""
		if t.Negative {
			sign = "-"
		}
		return fmt.Sprintf("%s%02d:%02d:%02d", sign, uint64(t.Days)*24+uint64(t.Hour), t.Minute, t.Second) + micros(t)
	case isDate(v.Type) && (t.Microsecond != 0 || t.Hour != 0 || t.Minute != 0 || t.Second != 0):
		return fmt.Sprintf("%04d-%02d-%02d %02d:%02d:%02d", t.Year, t.Month, t.Day, t.Hour, t.Minute, t.Second) + micros(t)
	case isDate(v.Type):
		return fmt.Sprintf("%04d-%02d-%02d", t.Year, t.Month, t.Day)
	}
	return string(v.Bytes)
}

func micros(t Time) string {
	if t.Microsecond == 0 {
		return ""
	}
	return fmt.Sprintf(".%06d", t.Microsecond)
}

// intSize is the wire size of an integer type, 0 for other types.
func intSize(typ byte) int {
	switch typ {
	case mysql.MYSQL_TYPE_TINY:
		return 1
	case mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_YEAR:
		return 2
	case mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_LONG:
		return 4
	case mysql.MYSQL_TYPE_LONGLONG:
		return 8
	}
	return 0
}

func isDate(typ byte) bool {
	switch typ {
	case mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_TIMESTAMP, mysql.MYSQL_TYPE_NEWDATE:
		return true
	}
	return false
}

// value decodes one value of type typ; r.err says whether it was whole.
func (r *reader) value(typ byte, unsigned bool) Value {
	v := Value{Type: typ, Unsigned: unsigned}
	switch n := intSize(typ); {
	case n > 0:
		b := r.bytes(n)
		if b == nil {
			break
		}
		var u uint64
		for i := n - 1; i >= 0; i-- {
			u = u<<8 | uint64(b[i])
		}
		shift := 64 - 8*n
		if unsigned {
			v.Int = int64(u)
		} else {
			v.Int = int64(u<<shift) >> shift
		}
	case typ == mysql.MYSQL_TYPE_FLOAT:
		v.Float = float64(math.Float32frombits(r.u32()))
	case typ == mysql.MYSQL_TYPE_DOUBLE:
		if b := r.bytes(8); b != nil {
			v.Float = math.Float64frombits(binary.LittleEndian.Uint64(b))
		}
	case isDate(typ) || typ == mysql.MYSQL_TYPE_TIME:
		v.Time = r.temporal(typ == mysql.MYSQL_TYPE_TIME)
	case typ == mysql.MYSQL_TYPE_NULL:
	default:
		v.Bytes = r.lenencString()
	}
	return v
}

// temporal decodes a date (DATE, DATETIME, TIMESTAMP: 0 bytes, all zero;
// 4, the date; 7, and the time of day; 11, and microseconds) or a TIME
// (isTime: 0 bytes, zero; 8, sign, days and the time of day; 12, and
// microseconds), each after a byte with its length.
func (r *reader) temporal(isTime bool) Time {
	n := int(r.u8())
	d := reader{b: r.bytes(n)}
	var t Time
	switch {
	case n == 0:
		return t
	case isTime && (n == 8 || n == 12):
		t.Negative, t.Days = d.u8() != 0, d.u32()
	case !isTime && (n == 4 || n == 7 || n == 11):
		t.Year, t.Month, t.Day = d.u16(), d.u8(), d.u8()
	default:
		r.fail()
		return t
	}
	if n > 4 {
		t.Hour, t.Minute, t.Second = d.u8(), d.u8(), d.u8()
	}
	if n > 8 {
		t.Microsecond = d.u32()
	}
	return t
}

// AppendValue appends v as the binary protocol sends a value of v.Type
// (nothing for a NULL one: NULL goes in the bitmap). Integers are cut to
// their type's width; dates and times take the shortest form that holds
// their nonzero fields.
func AppendValue(b []byte, v Value) []byte {
	if v.Null {
		return b
	}
	switch n := intSize(v.Type); {
	case n > 0:
		for i := range n {
			b = append(b, byte(uint64(v.Int)>>(8*i)))
		}
		return b
	case v.Type == mysql.MYSQL_TYPE_FLOAT:
		return binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(v.Float)))
	case v.Type == mysql.MYSQL_TYPE_DOUBLE:
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Float))
	case isDate(v.Type) || v.Type == mysql.MYSQL_TYPE_TIME:
		return appendTemporal(b, v.Time, v.Type == mysql.MYSQL_TYPE_TIME)
	case v.Type == mysql.MYSQL_TYPE_NULL:
		return b
	}
	return AppendLenencString(b, v.Bytes)
}

// appendTemporal appends a date, or a TIME (isTime), in the shortest form
// that holds its nonzero fields.
func appendTemporal(b []byte, t Time, isTime bool) []byte {
	clock := t.Hour != 0 || t.Minute != 0 || t.Second != 0
	n := 0
	switch {
	case isTime && t.Microsecond != 0:
		n = 12
	case isTime && (clock || t.Negative || t.Days != 0):
		n = 8
	case !isTime && t.Microsecond != 0:
		n = 11
	case !isTime && clock:
		n = 7
	case !isTime && (t.Year != 0 || t.Month != 0 || t.Day != 0):
		n = 4
	}
	b = append(b, byte(n))
	switch {
	case n == 0:
		return b
	case isTime && t.Negative:
		b = binary.LittleEndian.AppendUint32(append(b, 1), t.Days)
	case isTime:
		b = binary.LittleEndian.AppendUint32(append(b, 0), t.Days)
	default:
		b = append(binary.LittleEndian.AppendUint16(b, t.Year), t.Month, t.Day)
	}
	if n > 4 {
		b = append(b, t.Hour, t.Minute, t.Second)
	}
	if n > 8 {
		b = binary.LittleEndian.AppendUint32(b, t.Microsecond)
	}
	return b
}

// binaryRowHeader starts every binary-protocol row.
const binaryRowHeader = 0x00

// rowBitmapOffset: a row's NULL bitmap starts at its third bit (the first
// two were reserved); an execution's at its first.
const rowBitmapOffset = 2

// nullBitmapSize is the size of a NULL bitmap for n values from bit offset.
func nullBitmapSize(n, offset int) int { return (n + offset + 7) / 8 }

func isNull(bitmap []byte, i, offset int) bool {
	return bitmap[(i+offset)/8]&(1<<((i+offset)%8)) != 0
}

func setNull(bitmap []byte, i, offset int) { bitmap[(i+offset)/8] |= 1 << ((i + offset) % 8) }

// ParseBinaryRow decodes a binary-protocol row of a result set with the
// columns cols into dst[:0]: each value has its column's type (and
// UNSIGNED_FLAG), NULL ones Null set. Bytes values alias p. A row that does
// not end with its last value is malformed.
func ParseBinaryRow(p []byte, cols []Column, dst []Value) ([]Value, error) {
	dst = dst[:0]
	r := reader{b: p}
	if r.u8() != binaryRowHeader {
		return nil, ErrMalformed
	}
	bitmap := r.bytes(nullBitmapSize(len(cols), rowBitmapOffset))
	for i := range cols {
		if r.err != nil {
			break
		}
		unsigned := cols[i].Flags&mysql.UNSIGNED_FLAG != 0
		if isNull(bitmap, i, rowBitmapOffset) {
			dst = append(dst, Value{Type: cols[i].Type, Unsigned: unsigned, Null: true})
			continue
		}
		dst = append(dst, r.value(cols[i].Type, unsigned))
	}
	if r.err != nil || !r.empty() {
		return nil, ErrMalformed
	}
	return dst, nil
}

// AppendBinaryRow appends a binary-protocol row: header 0x00, the NULL
// bitmap (offset 2), then the values that are not NULL, each sent as its
// Type says (AppendValue).
func AppendBinaryRow(b []byte, row []Value) []byte {
	b = append(b, binaryRowHeader)
	at := len(b)
	b = append(b, make([]byte, nullBitmapSize(len(row), rowBitmapOffset))...)
	for i, v := range row {
		if v.Null {
			setNull(b[at:], i, rowBitmapOffset)
			continue
		}
		b = AppendValue(b, v)
	}
	return b
}

// ParseValue decodes one binary-protocol value of type typ (unsigned: an
// integer type flagged unsigned) from the start of p, and returns it and
// the bytes it used. Bytes values alias p.
func ParseValue(p []byte, typ byte, unsigned bool) (Value, int, error) {
	r := reader{b: p}
	v := r.value(typ, unsigned)
	if r.err != nil {
		return Value{}, 0, r.err
	}
	return v, len(p) - len(r.b), nil
}
