package wire

import (
	"encoding/binary"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Commands whose arguments are more than one string (those AppendCommand
// builds): COM_FIELD_LIST and COM_SET_OPTION. Payloads include their
// command byte.

// ParseFieldList decodes a COM_FIELD_LIST payload: the table, NUL-terminated
// (servers also take the end of the packet as its end), then the column
// wildcard.
func ParseFieldList(p []byte) (table, wildcard string, err error) {
	if len(p) < 1 || p[0] != mysql.COM_FIELD_LIST {
		return "", "", ErrMalformed
	}
	r := reader{b: p[1:]}
	table = string(r.nulString(true))
	return table, string(r.rest()), nil
}

// AppendFieldList appends a COM_FIELD_LIST payload.
func AppendFieldList(b []byte, table, wildcard string) []byte {
	b = appendNulString(append(b, mysql.COM_FIELD_LIST), table)
	return append(b, wildcard...)
}

// The options of COM_SET_OPTION.
const (
	MultiStatementsOn  = 0 // MYSQL_OPTION_MULTI_STATEMENTS_ON
	MultiStatementsOff = 1 // MYSQL_OPTION_MULTI_STATEMENTS_OFF
)

// setOptionSize is the size of a COM_SET_OPTION payload.
const setOptionSize = 3

// ParseSetOption returns the option of a COM_SET_OPTION payload.
func ParseSetOption(p []byte) (uint16, error) {
	if len(p) < setOptionSize || p[0] != mysql.COM_SET_OPTION {
		return 0, ErrMalformed
	}
	return binary.LittleEndian.Uint16(p[1:]), nil
}

// AppendSetOption appends a COM_SET_OPTION payload.
func AppendSetOption(b []byte, opt uint16) []byte {
	return binary.LittleEndian.AppendUint16(append(b, mysql.COM_SET_OPTION), opt)
}
