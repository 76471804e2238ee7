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
