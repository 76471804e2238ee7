package wire

import (
	"encoding/binary"
	"fmt"

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

// CommandName is the protocol's name of a command byte ("COM_QUERY"), or
// "COM_0x.." for one the protocol does not define: for logs, metrics and
// the admin's statistics.
func CommandName(cmd byte) string {
	if name := commandNames[cmd]; name != "" {
		return name
	}
	return fmt.Sprintf("COM_%#02x", cmd)
}

var commandNames = [256]string{
	mysql.COM_SLEEP: "COM_SLEEP", mysql.COM_QUIT: "COM_QUIT", mysql.COM_INIT_DB: "COM_INIT_DB",
	mysql.COM_QUERY: "COM_QUERY", mysql.COM_FIELD_LIST: "COM_FIELD_LIST", mysql.COM_STATISTICS: "COM_STATISTICS",
	mysql.COM_CONNECT: "COM_CONNECT", mysql.COM_PROCESS_KILL: "COM_PROCESS_KILL", mysql.COM_PING: "COM_PING",
	mysql.COM_CHANGE_USER: "COM_CHANGE_USER", mysql.COM_STMT_PREPARE: "COM_STMT_PREPARE",
	mysql.COM_STMT_EXECUTE: "COM_STMT_EXECUTE", mysql.COM_STMT_SEND_LONG_DATA: "COM_STMT_SEND_LONG_DATA",
	mysql.COM_STMT_CLOSE: "COM_STMT_CLOSE", mysql.COM_STMT_RESET: "COM_STMT_RESET",
	mysql.COM_SET_OPTION: "COM_SET_OPTION", mysql.COM_STMT_FETCH: "COM_STMT_FETCH",
	mysql.COM_RESET_CONNECTION: "COM_RESET_CONNECTION",
}
