package wire

import (
	"encoding/binary"
	"fmt"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// First bytes that tell the packets of a response apart.
const (
	OKHeader     = 0x00
	EOFHeader    = 0xfe
	ErrHeader    = 0xff
	InfileHeader = 0xfb
)

// eofSize is the payload size of a classic EOF packet.
const eofSize = 5

// OK is the decoded fixed part of an OK packet.
type OK struct {
	AffectedRows uint64
	LastInsertID uint64
	Status       uint16
	Warnings     uint16
}

// okFixed decodes the fixed fields of an OK packet (header 0x00, or 0xfe in
// place of EOF) and returns where the info string starts.
func okFixed(p []byte) (OK, int, error) {
	var ok OK
	if len(p) < 1 {
		return ok, 0, ErrMalformed
	}
	r := reader{b: p[1:]}
	ok.AffectedRows = r.lenenc()
	ok.LastInsertID = r.lenenc()
	// Pre-4.1 servers end here; the proxy only talks protocol 41.
	ok.Status = r.u16()
	ok.Warnings = r.u16()
	if r.err != nil {
		return OK{}, 0, r.err
	}
	return ok, len(p) - len(r.b), nil
}

// ParseOK decodes an OK packet (header 0x00, or 0xfe in place of EOF). Only
// the fixed fields are decoded: the info and session-state information stay
// raw until a caller needs them (StripSessionTrack, LastGTID).
func ParseOK(p []byte) (OK, error) {
	ok, _, err := okFixed(p)
	return ok, err
}

// AppendOK appends an OK packet payload without info or session state.
func AppendOK(b []byte, ok OK) []byte {
	return appendOK(b, OKHeader, ok)
}

// AppendOKWithInfo appends an OK packet with an info string (such as
// "Rows matched: 1  Changed: 1  Warnings: 0") and no session state. The
// info is length-encoded, as servers send it (see StripSessionTrack).
func AppendOKWithInfo(b []byte, ok OK, info string) []byte {
	return AppendLenencString(AppendOK(b, ok), info)
}

// OKInfo returns the info string of an OK packet (header 0x00, or 0xfe in
// place of EOF), with or without session state: "" when it has none.
func OKInfo(p []byte) (string, error) {
	info, err := okInfo(p)
	return string(info), err
}

func okInfo(p []byte) ([]byte, error) {
	_, pos, err := okFixed(p)
	if err != nil || pos == len(p) {
		return nil, err
	}
	info, _, err := LenencString(p[pos:])
	return info, err
}

func appendOK(b []byte, header byte, ok OK) []byte {
	b = append(b, header)
	b = AppendLenenc(b, ok.AffectedRows)
	b = AppendLenenc(b, ok.LastInsertID)
	b = binary.LittleEndian.AppendUint16(b, ok.Status)
	return binary.LittleEndian.AppendUint16(b, ok.Warnings)
}

// AppendOKWithState appends an OK packet that carries session-state
// information (CLIENT_SESSION_TRACK): info, then the state changes, which
// AppendSystemVariable builds. SERVER_SESSION_STATE_CHANGED is set.
func AppendOKWithState(b []byte, ok OK, info string, state []byte) []byte {
	ok.Status |= mysql.SERVER_SESSION_STATE_CHANGED
	b = AppendOK(b, ok)
	b = AppendLenencString(b, info)
	return AppendLenencString(b, state)
}

// sessionTrackSystemVariables is the session-state entry type that carries
// a changed system variable (name and value), such as last_gtid.
const sessionTrackSystemVariables = 0

// AppendSystemVariable appends a session-state entry saying a system
// variable changed, for AppendOKWithState.
func AppendSystemVariable(b []byte, name, value string) []byte {
	var data []byte
	data = AppendLenencString(data, name)
	data = AppendLenencString(data, value)
	b = append(b, sessionTrackSystemVariables)
	return AppendLenencString(b, data)
}

// EOF is a classic EOF packet.
type EOF struct {
	Warnings uint16
	Status   uint16
}

// IsEOFPacket reports whether payload is an EOF packet, or an OK packet sent
// in place of EOF under CLIENT_DEPRECATE_EOF. A row can also start with 0xfe
// (an 8-byte length prefix), but such a row is at least 2^24 bytes long and
// so always fills a whole physical packet; physicalLen tells them apart.
func IsEOFPacket(payload []byte, physicalLen int) bool {
	return len(payload) > 0 && payload[0] == EOFHeader && physicalLen < MaxPayload
}

// IsClassicEOF tells a 5-byte EOF from an OK packet with header 0xfe.
func IsClassicEOF(p []byte) bool { return len(p) == eofSize && p[0] == EOFHeader }

// ParseEOF decodes a classic EOF packet.
func ParseEOF(p []byte) (EOF, error) {
	if !IsClassicEOF(p) {
		return EOF{}, ErrMalformed
	}
	return EOF{Warnings: binary.LittleEndian.Uint16(p[1:]), Status: binary.LittleEndian.Uint16(p[3:])}, nil
}

// AppendEOF appends a classic EOF packet.
func AppendEOF(b []byte, e EOF) []byte {
	b = append(b, EOFHeader)
	b = binary.LittleEndian.AppendUint16(b, e.Warnings)
	return binary.LittleEndian.AppendUint16(b, e.Status)
}

// AppendEOFAsOK appends what a CLIENT_DEPRECATE_EOF client expects in place
// of the classic EOF e: an OK packet with header 0xfe.
func AppendEOFAsOK(b []byte, e EOF) []byte {
	return appendOK(b, EOFHeader, OK{Status: e.Status, Warnings: e.Warnings})
}

// EOFStatus returns the status flags of a terminator packet, which is either
// a classic EOF or an OK packet with header 0xfe.
func EOFStatus(p []byte) (uint16, error) {
	e, err := parseEnd(p)
	return e.Status, err
}

// parseEnd is EOFStatus with the warning count too.
func parseEnd(p []byte) (EOF, error) {
	if len(p) == eofSize {
		return ParseEOF(p)
	}
	if len(p) < eofSize {
		return EOF{}, ErrMalformed
	}
	ok, err := ParseOK(p)
	return EOF{Status: ok.Status, Warnings: ok.Warnings}, err
}

// ParseErr decodes an ERR packet into the error type go-mysql uses, so that
// errno, SQLSTATE and message survive unchanged to wherever they are shown.
func ParseErr(p []byte) *mysql.MyError {
	e := &mysql.MyError{Code: mysql.ER_UNKNOWN_ERROR, State: mysql.DEFAULT_MYSQL_STATE}
	if len(p) < 3 || p[0] != ErrHeader {
		e.Message = "malformed error packet"
		return e
	}
	e.Code = binary.LittleEndian.Uint16(p[1:])
	rest := p[3:]
	if len(rest) >= 6 && rest[0] == '#' {
		e.State = string(rest[1:6])
		rest = rest[6:]
	}
	e.Message = string(rest)
	return e
}

// AppendErr appends an ERR packet payload for e.
func AppendErr(b []byte, e *mysql.MyError) []byte {
	state := e.State
	if len(state) != 5 {
		state = mysql.DEFAULT_MYSQL_STATE
	}
	b = append(b, ErrHeader)
	b = binary.LittleEndian.AppendUint16(b, e.Code)
	b = append(b, '#')
	b = append(b, state...)
	return append(b, e.Message...)
}

// Errorf builds a proxy-raised error with the SQLSTATE that goes with code
// in go-mysql's table (HY000 for codes it does not know).
func Errorf(code uint16, format string, args ...any) *mysql.MyError {
	return mysql.NewError(code, fmt.Sprintf(format, args...))
}

// StripSessionTrack rewrites an OK packet (header 0x00, or 0xfe in place of
// EOF) sent under CLIENT_SESSION_TRACK into the form a client without it
// expects: the info string if any, no session state, and
// SERVER_SESSION_STATE_CHANGED cleared, appended to dst.
func StripSessionTrack(dst, p []byte) ([]byte, error) {
	ok, _, err := okFixed(p)
	if err != nil {
		return nil, err
	}
	dst = appendOK(dst, p[0], OK{AffectedRows: ok.AffectedRows, LastInsertID: ok.LastInsertID,
		Status: ok.Status &^ mysql.SERVER_SESSION_STATE_CHANGED, Warnings: ok.Warnings})
	info, err := okInfo(p)
	if err != nil {
		return nil, err
	}
	if len(info) == 0 {
		return dst, nil
	}
	// Servers send the info length-prefixed with or without session
	// tracking, whatever the protocol documentation says, and clients
	// (mysqlnd, libmariadb) read it so.
	return AppendLenencString(dst, info), nil
}

// sessionState returns the session-state information of an OK packet
// (header 0x00, or 0xfe in place of EOF) whose status says it has some.
func sessionState(p []byte) (reader, bool) {
	ok, pos, err := okFixed(p)
	if err != nil || ok.Status&mysql.SERVER_SESSION_STATE_CHANGED == 0 || pos >= len(p) {
		return reader{}, false
	}
	r := reader{b: p[pos:]}
	r.lenencString() // info
	state := reader{b: r.lenencString()}
	return state, r.err == nil
}

// stateEntry returns the data of the first session-state entry of type typ
// in an OK packet for which found says yes.
func stateEntry(p []byte, typ byte, found func(data *reader) bool) bool {
	state, ok := sessionState(p)
	for ok && !state.empty() && state.err == nil {
		t := state.u8()
		entry := reader{b: state.lenencString()}
		if state.err == nil && t == typ && found(&entry) {
			return true
		}
	}
	return false
}

// LastGTID returns the last_gtid a server reported in an OK packet's
// session-state information, if there is one.
func LastGTID(p []byte) (string, bool) {
	var gtid string
	found := stateEntry(p, sessionTrackSystemVariables, func(entry *reader) bool {
		name, value := entry.lenencString(), entry.lenencString()
		gtid = string(value)
		return entry.err == nil && string(name) == "last_gtid" && len(value) > 0
	})
	if !found {
		return "", false
	}
	return gtid, true
}

// sessionTrackSchema is the session-state entry type of a change of the
// current schema.
const sessionTrackSchema = 1

// AppendSchemaChange appends a session-state entry saying the current
// schema changed to schema, for AppendOKWithState.
func AppendSchemaChange(b []byte, schema string) []byte {
	b = append(b, sessionTrackSchema)
	return AppendLenencString(b, AppendLenencString(nil, schema))
}

// SchemaChange returns the schema an OK packet's session-state information
// says is now current, if it says so.
func SchemaChange(p []byte) (string, bool) {
	var schema string
	found := stateEntry(p, sessionTrackSchema, func(entry *reader) bool {
		schema = string(entry.lenencString())
		return entry.err == nil
	})
	if !found {
		return "", false
	}
	return schema, true
}
