package wire

import (
	"encoding/binary"
	"errors"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Prepared statements (binary protocol): the prepare response's first
// packet, and the commands that name a statement by id. Command payloads
// here include their command byte.

// prepareOKSize is the size of a COM_STMT_PREPARE_OK packet.
const prepareOKSize = 12

// PrepareOK is the first packet of a successful COM_STMT_PREPARE response;
// Params parameter definitions and then Columns column definitions follow.
type PrepareOK struct {
	StatementID uint32
	Columns     uint16
	Params      uint16
	Warnings    uint16
}

// IsPrepareOK tells the first packet of a successful prepare response.
func IsPrepareOK(p []byte) bool { return len(p) >= prepareOKSize && p[0] == OKHeader }

// ParsePrepareOK decodes a COM_STMT_PREPARE_OK packet.
func ParsePrepareOK(p []byte) (PrepareOK, error) {
	if !IsPrepareOK(p) {
		return PrepareOK{}, ErrMalformed
	}
	r := reader{b: p[1:]}
	ok := PrepareOK{StatementID: r.u32(), Columns: r.u16(), Params: r.u16()}
	r.u8() // reserved
	ok.Warnings = r.u16()
	return ok, r.err
}

// AppendPrepareOK appends a COM_STMT_PREPARE_OK packet.
func AppendPrepareOK(b []byte, ok PrepareOK) []byte {
	b = append(b, OKHeader)
	b = binary.LittleEndian.AppendUint32(b, ok.StatementID)
	b = binary.LittleEndian.AppendUint16(b, ok.Columns)
	b = binary.LittleEndian.AppendUint16(b, ok.Params)
	b = append(b, 0)
	return binary.LittleEndian.AppendUint16(b, ok.Warnings)
}

// SetPrepareOKStatementID rewrites, in place, the statement id of a
// COM_STMT_PREPARE_OK packet checked with IsPrepareOK.
func SetPrepareOKStatementID(p []byte, id uint32) { binary.LittleEndian.PutUint32(p[1:], id) }

// StmtID returns the statement id that COM_STMT_EXECUTE, _FETCH, _RESET,
// _SEND_LONG_DATA and _CLOSE carry right after the command byte.
func StmtID(p []byte) (uint32, error) {
	if len(p) < 5 {
		return 0, ErrMalformed
	}
	return binary.LittleEndian.Uint32(p[1:]), nil
}

// AppendStmtCommand appends a statement command for statement id: the
// command byte of p, id, and the rest of p after its own id. p must have
// passed StmtID.
func AppendStmtCommand(b, p []byte, id uint32) []byte {
	b = append(b, p[0])
	b = binary.LittleEndian.AppendUint32(b, id)
	return append(b, p[5:]...)
}

// AppendStmtClose appends a COM_STMT_CLOSE payload (which has no response).
func AppendStmtClose(b []byte, id uint32) []byte {
	return binary.LittleEndian.AppendUint32(append(b, mysql.COM_STMT_CLOSE), id)
}

// executeHeader is a COM_STMT_EXECUTE's command byte, statement id (4),
// flags (1) and iteration count (4).
const executeHeader = 10

// CursorFlags are the COM_STMT_EXECUTE flags that open a cursor, whose rows
// are fetched later with COM_STMT_FETCH on the same connection.
const CursorFlags = 0x07

// ExecuteFlags returns the flags of a COM_STMT_EXECUTE payload.
func ExecuteFlags(p []byte) (byte, error) {
	if len(p) < executeHeader {
		return 0, ErrMalformed
	}
	return p[5], nil
}

// ExecuteBoundTypes returns the parameter types a COM_STMT_EXECUTE for a
// statement of numParams parameters carries (2 bytes each), or nil when it
// relies on earlier ones (new-params-bound flag 0). The result aliases p.
func ExecuteBoundTypes(p []byte, numParams int) ([]byte, error) {
	if len(p) < executeHeader {
		return nil, ErrMalformed
	}
	if numParams == 0 {
		return nil, nil
	}
	pos := executeHeader + (numParams+7)/8
	if len(p) < pos+1 {
		return nil, ErrMalformed
	}
	if p[pos] == 0 { // servers read any other value as "types follow"
		return nil, nil
	}
	if len(p) < pos+1+2*numParams {
		return nil, ErrMalformed
	}
	return p[pos+1 : pos+1+2*numParams], nil
}

// ErrNoParamTypes says an execution relies on parameter types bound by an
// earlier one, and there was none.
var ErrNoParamTypes = errors.New("execution without parameter types, and none sent before")

// AppendExecute appends the COM_STMT_EXECUTE payload p rewritten for
// statement id, with the parameter types always bound: types (2 bytes per
// parameter) are what the client bound last, since the server connection
// that runs it may never have seen the execution that bound them.
func AppendExecute(dst, p []byte, id uint32, numParams int, types []byte) ([]byte, error) {
	if len(p) < executeHeader {
		return nil, ErrMalformed
	}
	dst = append(dst, mysql.COM_STMT_EXECUTE)
	dst = binary.LittleEndian.AppendUint32(dst, id)
	dst = append(dst, p[5:executeHeader]...)
	if numParams == 0 {
		return append(dst, p[executeHeader:]...), nil
	}
	pos := executeHeader + (numParams+7)/8
	if len(p) < pos+1 {
		return nil, ErrMalformed
	}
	dst = append(dst, p[executeHeader:pos]...) // NULL bitmap
	values := p[pos+1:]
	if p[pos] != 0 {
		if len(values) < 2*numParams {
			return nil, ErrMalformed
		}
		values = values[2*numParams:]
	}
	if len(types) != 2*numParams {
		return nil, ErrNoParamTypes
	}
	dst = append(dst, 1)
	dst = append(dst, types...)
	return append(dst, values...), nil
}

// AppendStmtReset appends a COM_STMT_RESET payload.
func AppendStmtReset(b []byte, id uint32) []byte {
	return binary.LittleEndian.AppendUint32(append(b, mysql.COM_STMT_RESET), id)
}

// StmtExecute is a COM_STMT_EXECUTE with its parameter values decoded.
// Bulk executions (MariaDB's iteration counts above 1) and query
// attributes (CLIENT_QUERY_ATTRIBUTES) are not supported: the iteration
// count is written as 1 and not read, and bytes after the last value are
// not read.
type StmtExecute struct {
	StatementID uint32
	// Flags: 0, or CursorFlags to open a cursor.
	Flags byte
	// Params are the parameter values, in order; NULL ones have Null set.
	Params []Value
	// BindTypes: the packet carries the parameters' types (new-params-bound
	// flag 1), those of Params; without it the server uses the types of the
	// last execution that carried some.
	BindTypes bool
	// LongData marks the parameters whose value came before in
	// COM_STMT_SEND_LONG_DATA, which have none in this packet (nil: none).
	LongData []bool
}

func (e *StmtExecute) longData(i int) bool { return i < len(e.LongData) && e.LongData[i] }

// ParseStmtExecute decodes a COM_STMT_EXECUTE payload for a statement of
// numParams parameters. types (2 bytes a parameter: the type, then 0x80 for
// unsigned) are those bound last, used when the execution binds none;
// longData marks the parameters sent with COM_STMT_SEND_LONG_DATA, whose
// values come back with only their Type set. An execution that needs types
// and has none fails with ErrNoParamTypes; parameters that are NULL or long
// data need none. Bytes values alias p.
func ParseStmtExecute(p []byte, numParams int, types []byte, longData []bool) (*StmtExecute, error) {
	if len(p) < executeHeader || p[0] != mysql.COM_STMT_EXECUTE {
		return nil, ErrMalformed
	}
	r := reader{b: p[1:]}
	e := &StmtExecute{StatementID: r.u32(), Flags: r.u8(), LongData: longData}
	r.u32() // iteration count
	if numParams == 0 {
		return e, nil
	}
	nulls := r.bytes(nullBitmapSize(numParams, 0))
	if e.BindTypes = r.u8() != 0; e.BindTypes {
		types = r.bytes(2 * numParams)
	}
	if r.err != nil {
		return nil, r.err
	}
	haveTypes := len(types) == 2*numParams
	e.Params = make([]Value, numParams)
	for i := range e.Params {
		v := &e.Params[i]
		if haveTypes {
			v.Type, v.Unsigned = types[2*i], types[2*i+1]&mysql.PARAM_UNSIGNED != 0
		}
		switch {
		case isNull(nulls, i, 0):
			v.Null = true
		case e.longData(i):
		case !haveTypes:
			return nil, ErrNoParamTypes
		default:
			*v = r.value(v.Type, v.Unsigned)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return e, nil
}

// AppendStmtExecute appends a COM_STMT_EXECUTE payload for e: the NULL
// bitmap, the types if e.BindTypes, then each value that is neither NULL
// nor long data (AppendValue).
func AppendStmtExecute(b []byte, e *StmtExecute) []byte {
	b = append(b, mysql.COM_STMT_EXECUTE)
	b = binary.LittleEndian.AppendUint32(b, e.StatementID)
	b = append(b, e.Flags)
	b = binary.LittleEndian.AppendUint32(b, 1)
	if len(e.Params) == 0 {
		return b
	}
	at := len(b)
	b = append(b, make([]byte, nullBitmapSize(len(e.Params), 0))...)
	for i, v := range e.Params {
		if v.Null {
			setNull(b[at:], i, 0)
		}
	}
	if !e.BindTypes {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		for _, v := range e.Params {
			flag := byte(0)
			if v.Unsigned {
				flag = mysql.PARAM_UNSIGNED
			}
			b = append(b, v.Type, flag)
		}
	}
	for i, v := range e.Params {
		if !e.longData(i) {
			b = AppendValue(b, v)
		}
	}
	return b
}

// StmtFetch is a COM_STMT_FETCH: the next Rows rows of the cursor the
// statement's last execution opened.
type StmtFetch struct {
	StatementID uint32
	Rows        uint32
}

// stmtFetchSize is the size of a COM_STMT_FETCH payload.
const stmtFetchSize = 9

// ParseStmtFetch decodes a COM_STMT_FETCH payload. Bytes after the row
// count are not read, as servers do not read them.
func ParseStmtFetch(p []byte) (StmtFetch, error) {
	if len(p) < stmtFetchSize || p[0] != mysql.COM_STMT_FETCH {
		return StmtFetch{}, ErrMalformed
	}
	return StmtFetch{StatementID: binary.LittleEndian.Uint32(p[1:]), Rows: binary.LittleEndian.Uint32(p[5:])}, nil
}

// AppendStmtFetch appends a COM_STMT_FETCH payload.
func AppendStmtFetch(b []byte, f StmtFetch) []byte {
	b = binary.LittleEndian.AppendUint32(append(b, mysql.COM_STMT_FETCH), f.StatementID)
	return binary.LittleEndian.AppendUint32(b, f.Rows)
}

// StmtSendLongData is a COM_STMT_SEND_LONG_DATA: a piece of parameter
// Param's value (the pieces of one parameter are joined), which has no
// response.
type StmtSendLongData struct {
	StatementID uint32
	Param       uint16
	Data        []byte
}

// longDataHeader is the command byte, statement id and parameter number.
const longDataHeader = 7

// ParseStmtSendLongData decodes a COM_STMT_SEND_LONG_DATA payload; Data
// aliases p.
func ParseStmtSendLongData(p []byte) (StmtSendLongData, error) {
	if len(p) < longDataHeader || p[0] != mysql.COM_STMT_SEND_LONG_DATA {
		return StmtSendLongData{}, ErrMalformed
	}
	return StmtSendLongData{StatementID: binary.LittleEndian.Uint32(p[1:]), Param: binary.LittleEndian.Uint16(p[5:]),
		Data: p[longDataHeader:]}, nil
}

// AppendStmtSendLongData appends a COM_STMT_SEND_LONG_DATA payload.
func AppendStmtSendLongData(b []byte, d StmtSendLongData) []byte {
	b = binary.LittleEndian.AppendUint32(append(b, mysql.COM_STMT_SEND_LONG_DATA), d.StatementID)
	b = binary.LittleEndian.AppendUint16(b, d.Param)
	return append(b, d.Data...)
}
