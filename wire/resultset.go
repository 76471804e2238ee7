package wire

import (
	"bufio"
	"database/sql"
	"encoding/binary"
	"fmt"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Column definitions, text-protocol rows, the encoder of whole text result
// sets the proxy answers itself, and the reader of the small results of the
// proxy's own queries.

// columnFixedFields is the length of a column definition's fixed part.
const columnFixedFields = 0x0c

// Column is a column definition (Protocol::ColumnDefinition41).
type Column struct {
	Schema, Table, OrgTable, Name, OrgName string
	// Extended is MariaDB's extended metadata block, present (even empty,
	// not nil) when the connection negotiated MariaDBExtendedMetadata.
	Extended []byte
	Charset  uint16
	Length   uint32
	Type     byte
	Flags    uint16
	Decimals byte
}

// ParseColumnDef decodes a column definition. Default values that follow
// in a COM_FIELD_LIST response are not decoded (ParseFieldListColumn
// does).
func ParseColumnDef(p []byte) (Column, error) {
	r := reader{b: p}
	c := r.columnDef(false)
	return c, r.err
}

// columnDef reads a column definition; withDefault: a COM_FIELD_LIST
// default value may follow it.
func (r *reader) columnDef(withDefault bool) Column {
	var c Column
	r.lenencString() // catalog, always "def"
	c.Schema = string(r.lenencString())
	c.Table = string(r.lenencString())
	c.OrgTable = string(r.lenencString())
	c.Name = string(r.lenencString())
	c.OrgName = string(r.lenencString())
	// MariaDB's extended metadata sits between org_name and the fixed
	// fields, which start with their length byte. A first byte that is not
	// it starts the block; when it is, the block is there only if it is 12
	// bytes long, with the fixed fields, exactly, after it (in a result
	// set's definition; in a COM_FIELD_LIST one a default value follows
	// the fixed fields, and such a block cannot be told from it).
	const fixed = 1 + columnFixedFields
	if n := len(r.b); n > 0 && n != fixed && (r.b[0] != columnFixedFields ||
		!withDefault && n == 2*fixed && r.b[fixed] == columnFixedFields) {
		c.Extended = append([]byte{}, r.lenencString()...)
	}
	if r.lenenc() < columnFixedFields {
		r.fail()
	}
	c.Charset = r.u16()
	c.Length = r.u32()
	c.Type = r.u8()
	c.Flags = r.u16()
	c.Decimals = r.u8()
	r.u16() // filler
	return c
}

// AppendColumnDef appends a column definition.
func AppendColumnDef(b []byte, c *Column) []byte {
	b = AppendLenencString(b, "def")
	b = AppendLenencString(b, c.Schema)
	b = AppendLenencString(b, c.Table)
	b = AppendLenencString(b, c.OrgTable)
	b = AppendLenencString(b, c.Name)
	b = AppendLenencString(b, c.OrgName)
	if c.Extended != nil {
		b = AppendLenencString(b, c.Extended)
	}
	b = append(b, columnFixedFields)
	b = binary.LittleEndian.AppendUint16(b, c.Charset)
	b = binary.LittleEndian.AppendUint32(b, c.Length)
	b = append(b, c.Type)
	b = binary.LittleEndian.AppendUint16(b, c.Flags)
	b = append(b, c.Decimals)
	return append(b, 0, 0)
}

// ParseFieldListColumn decodes a column definition as COM_FIELD_LIST
// answers with it: followed by the column's default value (not Valid for
// NULL).
func ParseFieldListColumn(p []byte) (Column, sql.NullString, error) {
	r := reader{b: p}
	c := r.columnDef(true)
	var def sql.NullString
	switch {
	case r.err != nil:
	case len(r.b) > 0 && r.b[0] == nullValue:
		r.u8()
	default:
		def = sql.NullString{String: string(r.lenencString()), Valid: true}
	}
	if r.err != nil || !r.empty() {
		return Column{}, sql.NullString{}, ErrMalformed
	}
	return c, def, nil
}

// AppendFieldListColumn appends a column definition as COM_FIELD_LIST
// answers with it: followed by the column's default value, NULL when def
// is not Valid.
func AppendFieldListColumn(b []byte, c *Column, def sql.NullString) []byte {
	return AppendTextRow(AppendColumnDef(b, c), []sql.NullString{def})
}

// ParseColumnCount decodes the first packet of a result set: its number of
// columns, at least 1 and at most 65536. Bytes after it are not read.
func ParseColumnCount(p []byte) (int, error) {
	n, _, err := Lenenc(p)
	if err != nil || n == 0 || n > maxColumns {
		return 0, fmt.Errorf("%w: bad column count", ErrMalformed)
	}
	return int(n), nil
}

// AppendColumnCount appends the first packet of a result set of n columns.
func AppendColumnCount(b []byte, n int) []byte { return AppendLenenc(b, uint64(n)) }

// ParseTextRow decodes a text-protocol row into dst[:0]; SQL NULL has Valid
// false. The strings are copies.
func ParseTextRow(p []byte, dst []sql.NullString) ([]sql.NullString, error) {
	dst = dst[:0]
	for pos := 0; pos < len(p); {
		if p[pos] == nullValue {
			dst = append(dst, sql.NullString{})
			pos++
			continue
		}
		v, n, err := LenencString(p[pos:])
		if err != nil {
			return nil, fmt.Errorf("bad row: %w", err)
		}
		dst = append(dst, sql.NullString{String: string(v), Valid: true})
		pos += n
	}
	return dst, nil
}

// AppendTextRow appends a text-protocol row.
func AppendTextRow(b []byte, row []sql.NullString) []byte {
	for _, v := range row {
		if !v.Valid {
			b = append(b, nullValue)
			continue
		}
		b = AppendLenencString(b, v.String)
	}
	return b
}

// TextResult is a result set in the text protocol: what the proxy's own
// queries read back, and what proxy-generated answers (the admin interface)
// send. A result without columns is an OK packet.
type TextResult struct {
	Columns []Column
	Rows    [][]sql.NullString
	// Status is the server status after the statement, as its last packet
	// carried it.
	Status uint16
	// AffectedRows and LastInsertID come from an OK packet (no columns).
	AffectedRows, LastInsertID uint64
}

// ColumnIndex is the position of the column called name, or -1.
func (r *TextResult) ColumnIndex(name string) int {
	for i := range r.Columns {
		if r.Columns[i].Name == name {
			return i
		}
	}
	return -1
}

// AppendTextResult appends r as the packets of a response to COM_QUERY,
// framed from sequence id seq, in the form a client that negotiated caps
// expects (with or without EOF packets), and returns the next sequence id.
// r.Status is sent as the status flags.
func AppendTextResult(dst []byte, r *TextResult, seq uint8, caps uint32) ([]byte, uint8) {
	var p []byte
	if len(r.Columns) == 0 {
		p = AppendOK(nil, OK{AffectedRows: r.AffectedRows, LastInsertID: r.LastInsertID, Status: r.Status})
		return AppendPacket(dst, p, seq)
	}
	deprecateEOF := caps&mysql.CLIENT_DEPRECATE_EOF != 0
	dst, seq = AppendPacket(dst, AppendColumnCount(p, len(r.Columns)), seq)
	for i := range r.Columns {
		dst, seq = AppendPacket(dst, AppendColumnDef(p[:0], &r.Columns[i]), seq)
	}
	if !deprecateEOF {
		dst, seq = AppendPacket(dst, AppendEOF(p[:0], EOF{Status: r.Status}), seq)
	}
	for _, row := range r.Rows {
		p = AppendTextRow(p[:0], row)
		dst, seq = AppendPacket(dst, p, seq)
	}
	if deprecateEOF {
		return AppendPacket(dst, AppendEOFAsOK(p[:0], EOF{Status: r.Status}), seq)
	}
	return AppendPacket(dst, AppendEOF(p[:0], EOF{Status: r.Status}), seq)
}

// MaxTextRows bounds the rows ReadTextResult keeps: it is for the proxy's
// own small queries, and a server must not make it hold more.
const MaxTextRows = 100_000

// ErrTooManyRows says a result had more than MaxTextRows rows.
var ErrTooManyRows = fmt.Errorf("result has more than %d rows", MaxTextRows)

// ReadTextResult reads the whole response to a COM_QUERY sent with sequence
// id 0, for the proxy's own small queries (health checks, state replay;
// never client traffic, which is forwarded raw). With several result sets
// the last one is returned. A server error comes back as *mysql.MyError
// with the connection still usable; any other error leaves the connection at
// an unknown point. limit bounds each packet, MaxTextRows the rows.
func ReadTextResult(r *bufio.Reader, deprecateEOF bool, limit int) (*TextResult, error) {
	return readTextResult(r, deprecateEOF, limit, true)
}

// SkipResult reads the response to a COM_QUERY like ReadTextResult and
// keeps nothing of it but its status and counts, whatever its size.
func SkipResult(r *bufio.Reader, deprecateEOF bool, limit int) (*TextResult, error) {
	return readTextResult(r, deprecateEOF, limit, false)
}

func readTextResult(r *bufio.Reader, deprecateEOF bool, limit int, keep bool) (*TextResult, error) {
	var w Walker
	w.Reset(ShapeResult, deprecateEOF)
	res := &TextResult{}
	var buf []byte
	seq := uint8(1)
	for !w.Done() {
		var err error
		buf, seq, err = ReadPacket(r, buf[:0], limit, seq)
		if err != nil {
			return nil, err
		}
		kind, err := w.Next(buf, len(buf))
		if err != nil {
			return nil, err
		}
		switch kind {
		case KindErr:
			return nil, ParseErr(buf)
		case KindOK:
			ok, _ := ParseOK(buf) // the walker checked it
			res.AffectedRows, res.LastInsertID = ok.AffectedRows, ok.LastInsertID
		case KindInfile:
			return nil, fmt.Errorf("%w: LOCAL INFILE request to the proxy's own query", ErrMalformed)
		case KindColumnCount:
			res.Columns, res.Rows = res.Columns[:0], nil
			res.AffectedRows, res.LastInsertID = 0, 0
		case KindColumnDef:
			if !keep {
				continue
			}
			c, err := ParseColumnDef(buf)
			if err != nil {
				return nil, err
			}
			res.Columns = append(res.Columns, c)
		case KindRow:
			if !keep {
				continue
			}
			if len(res.Rows) == MaxTextRows {
				return nil, ErrTooManyRows
			}
			row, err := ParseTextRow(buf, make([]sql.NullString, 0, len(res.Columns)))
			if err != nil {
				return nil, err
			}
			if len(row) != len(res.Columns) {
				return nil, fmt.Errorf("%w: row of %d values for %d columns", ErrMalformed, len(row), len(res.Columns))
			}
			res.Rows = append(res.Rows, row)
		}
	}
	res.Status, _ = w.Status()
	return res, nil
}
