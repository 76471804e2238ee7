package mysqltest

import (
	"fmt"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/wire"
)

// Reading responses and building the prepared-statement commands, with
// wire.

// TextRows returns the text-protocol rows of a response (all its result
// sets), NULL as "NULL". An ERR in the response is not looked at.
func TextRows(t testing.TB, resp []Packet) [][]string {
	t.Helper()
	var rows [][]string
	for _, rp := range resp {
		if rp.Kind != wire.KindRow {
			continue
		}
		r, err := wire.ParseTextRow(rp.Payload, nil)
		if err != nil {
			t.Fatal(err)
		}
		row := make([]string, len(r))
		for i, v := range r {
			row[i] = "NULL"
			if v.Valid {
				row[i] = v.String
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// Status returns the status flags of a packet that ends a response or a
// result in it: an OK packet, a classic EOF, or an OK with header 0xfe.
func Status(t testing.TB, p []byte) uint16 {
	t.Helper()
	st, err := wire.EOFStatus(p)
	if err != nil {
		t.Fatalf("terminator %x: %v", p, err)
	}
	return st
}

// EndStatus returns the status flags of the packet that ends resp.
func EndStatus(t testing.TB, resp []Packet) uint16 {
	t.Helper()
	return Status(t, resp[len(resp)-1].Payload)
}

// ErrPacket returns the ERR packet among packets, failing if there is none.
func ErrPacket(t testing.TB, packets [][]byte) *mysql.MyError {
	t.Helper()
	for _, p := range packets {
		if len(p) > 0 && p[0] == wire.ErrHeader {
			return wire.ParseErr(p)
		}
	}
	t.Fatalf("no ERR packet among %x", packets)
	return nil
}

// BinaryRows returns the binary-protocol rows of a response (all its result
// sets), each value as text (wire.Value.String, NULL as "NULL"), read with the columns its
// definitions announce; an ERR in it fails the test.
func BinaryRows(t testing.TB, resp []Packet) [][]string {
	t.Helper()
	var cols []wire.Column
	var rows [][]string
	for _, rp := range resp {
		switch rp.Kind {
		case wire.KindErr:
			t.Fatalf("execution failed: %v", wire.ParseErr(rp.Payload))
		case wire.KindColumnCount:
			cols = cols[:0]
		case wire.KindColumnDef:
			c, err := wire.ParseColumnDef(rp.Payload)
			if err != nil {
				t.Fatal(err)
			}
			cols = append(cols, c)
		case wire.KindRow:
			rows = append(rows, binaryRow(t, rp.Payload, cols))
		}
	}
	return rows
}

// BinaryRow decodes a binary-protocol row of n string columns (the only
// type the fake server sends), as a COM_STMT_FETCH response, which
// repeats no column definitions, carries them; NULL as "NULL".
func BinaryRow(t testing.TB, p []byte, n int) []string {
	t.Helper()
	cols := make([]wire.Column, n)
	for i := range cols {
		cols[i].Type = mysql.MYSQL_TYPE_VAR_STRING
	}
	return binaryRow(t, p, cols)
}

func binaryRow(t testing.TB, p []byte, cols []wire.Column) []string {
	t.Helper()
	vals, err := wire.ParseBinaryRow(p, cols, nil)
	if err != nil {
		t.Fatalf("binary row %x: %v", p, err)
	}
	row := make([]string, len(vals))
	for i, v := range vals {
		row[i] = v.String()
	}
	return row
}

// ExecutePacket builds a COM_STMT_EXECUTE of statement id with int64 or
// string parameters (nil for NULL, sent with type NULL); bind says whether
// it carries their types (the new-params-bound flag).
func ExecutePacket(id uint32, flags byte, bind bool, params ...any) []byte {
	e := &wire.StmtExecute{StatementID: id, Flags: flags, BindTypes: bind}
	for _, p := range params {
		var v wire.Value
		switch p := p.(type) {
		case nil:
			v = wire.Value{Type: mysql.MYSQL_TYPE_NULL, Null: true}
		case int64:
			v = wire.Value{Type: mysql.MYSQL_TYPE_LONGLONG, Int: p}
		case string:
			v = wire.Value{Type: mysql.MYSQL_TYPE_VAR_STRING, Bytes: []byte(p)}
		default:
			panic(fmt.Sprintf("ExecutePacket: a %T parameter", p))
		}
		e.Params = append(e.Params, v)
	}
	return wire.AppendStmtExecute(nil, e)
}

// FetchPacket builds a COM_STMT_FETCH of rows rows of statement id.
func FetchPacket(id, rows uint32) []byte {
	return wire.AppendStmtFetch(nil, wire.StmtFetch{StatementID: id, Rows: rows})
}

// LongDataPacket builds a COM_STMT_SEND_LONG_DATA of a piece of parameter
// param of statement id.
func LongDataPacket(id uint32, param uint16, data string) []byte {
	return wire.AppendStmtSendLongData(nil, wire.StmtSendLongData{StatementID: id, Param: param, Data: []byte(data)})
}
