// Package wire holds the few pieces of the MySQL client/server protocol that
// both sides of the proxy need: packet framing over buffered readers, and
// decoding or building the packets the proxy must understand (OK, ERR, EOF).
// Everything else travels as raw bytes and is never decoded.
//
// Decoders here take bytes from clients and servers that may be malformed or
// hostile: they check every length and return errors instead of panicking.
package wire

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// MaxPayload is the largest payload one physical packet carries; a logical
// packet of this size or more continues in the next physical packet.
const MaxPayload = 1<<24 - 1

// HeaderSize is the 3-byte length plus 1-byte sequence id of every packet.
const HeaderSize = 4

// Packet first bytes that mark responses the proxy must recognise.
const (
	OKHeader     = 0x00
	EOFHeader    = 0xfe
	ErrHeader    = 0xff
	InfileHeader = 0xfb
)

var (
	// ErrMalformed says a packet's own lengths contradict its size.
	ErrMalformed = errors.New("malformed packet")
	// ErrTooLarge says a logical packet is larger than the configured limit.
	ErrTooLarge = errors.New("packet larger than max_packet_size")
)

// PayloadLen decodes the 3-byte little-endian length from a packet header.
func PayloadLen(h []byte) int {
	return int(uint32(h[0]) | uint32(h[1])<<8 | uint32(h[2])<<16)
}

// PutHeader writes the header for a payload of n bytes with sequence id seq.
func PutHeader(h []byte, n int, seq uint8) {
	h[0] = byte(n)
	h[1] = byte(n >> 8)
	h[2] = byte(n >> 16)
	h[3] = seq
}

// ReadPacket reads one logical packet (joining continuation packets) from r,
// appending its payload to dst[:0] and returning it with the sequence id of
// the last physical packet. A packet whose total payload exceeds limit fails
// with ErrTooLarge before its payload is read, so a hostile length cannot make
// the proxy allocate.
func ReadPacket(r *bufio.Reader, dst []byte, limit int) ([]byte, uint8, error) {
	dst = dst[:0]
	var hdr [HeaderSize]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return dst, 0, err
		}
		n := PayloadLen(hdr[:])
		if len(dst)+n > limit {
			return dst, hdr[3], ErrTooLarge
		}
		start := len(dst)
		dst = grow(dst, n)
		if _, err := io.ReadFull(r, dst[start:start+n]); err != nil {
			return dst, hdr[3], noEOF(err)
		}
		if n < MaxPayload {
			return dst, hdr[3], nil
		}
	}
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n, len(b)+n+len(b)/4)
	copy(nb, b)
	return nb
}

// noEOF turns a clean EOF inside a packet into ErrUnexpectedEOF: the peer
// vanished mid-packet, which is not an orderly close.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// AppendPacket appends payload to dst framed as one or more physical packets
// starting at sequence id seq, and returns the next sequence id.
func AppendPacket(dst, payload []byte, seq uint8) ([]byte, uint8) {
	for {
		n := len(payload)
		if n > MaxPayload {
			n = MaxPayload
		}
		var h [HeaderSize]byte
		PutHeader(h[:], n, seq)
		dst = append(dst, h[:]...)
		dst = append(dst, payload[:n]...)
		seq++
		payload = payload[n:]
		if n < MaxPayload {
			return dst, seq
		}
	}
}

// IsEOFPacket reports whether payload is an EOF packet, or an OK packet sent
// in place of EOF under CLIENT_DEPRECATE_EOF. A row can also start with 0xfe
// (an 8-byte length prefix), but such a row is at least 2^24 bytes long and so
// always fills a whole physical packet.
func IsEOFPacket(payload []byte, physicalLen int) bool {
	return len(payload) > 0 && payload[0] == EOFHeader && physicalLen < MaxPayload
}

// Lenenc decodes a length-encoded integer, returning the value and bytes used.
func Lenenc(b []byte) (v uint64, n int, err error) {
	if len(b) == 0 {
		return 0, 0, ErrMalformed
	}
	switch b[0] {
	case 0xfb:
		return 0, 1, nil
	case 0xfc:
		if len(b) < 3 {
			return 0, 0, ErrMalformed
		}
		return uint64(b[1]) | uint64(b[2])<<8, 3, nil
	case 0xfd:
		if len(b) < 4 {
			return 0, 0, ErrMalformed
		}
		return uint64(b[1]) | uint64(b[2])<<8 | uint64(b[3])<<16, 4, nil
	case 0xfe:
		if len(b) < 9 {
			return 0, 0, ErrMalformed
		}
		var v uint64
		for i := 8; i >= 1; i-- {
			v = v<<8 | uint64(b[i])
		}
		return v, 9, nil
	case 0xff:
		return 0, 0, ErrMalformed
	}
	return uint64(b[0]), 1, nil
}

// LenencString decodes a length-encoded string, returning it and bytes used.
func LenencString(b []byte) ([]byte, int, error) {
	l, n, err := Lenenc(b)
	if err != nil {
		return nil, 0, err
	}
	if l > uint64(len(b)-n) {
		return nil, 0, ErrMalformed
	}
	end := n + int(l)
	return b[n:end:end], end, nil
}

// AppendLenenc appends v as a length-encoded integer.
func AppendLenenc(b []byte, v uint64) []byte {
	switch {
	case v < 251:
		return append(b, byte(v))
	case v < 1<<16:
		return append(b, 0xfc, byte(v), byte(v>>8))
	case v < 1<<24:
		return append(b, 0xfd, byte(v), byte(v>>8), byte(v>>16))
	}
	return append(b, 0xfe, byte(v), byte(v>>8), byte(v>>16), byte(v>>24),
		byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56))
}

// OK is the decoded part of an OK packet that the proxy uses.
type OK struct {
	AffectedRows uint64
	LastInsertID uint64
	Status       uint16
	Warnings     uint16
}

// ParseOK decodes an OK packet (header 0x00, or 0xfe in place of EOF). Only
// the fixed fields are decoded: session-state information stays raw until a
// caller needs it.
func ParseOK(p []byte) (OK, error) {
	var ok OK
	if len(p) < 1 {
		return ok, ErrMalformed
	}
	pos := 1
	var n int
	var err error
	if ok.AffectedRows, n, err = Lenenc(p[pos:]); err != nil {
		return ok, err
	}
	pos += n
	if ok.LastInsertID, n, err = Lenenc(p[pos:]); err != nil {
		return ok, err
	}
	pos += n
	if len(p) < pos+4 {
		// Pre-4.1 servers end here; the proxy only talks protocol 41.
		return ok, ErrMalformed
	}
	ok.Status = uint16(p[pos]) | uint16(p[pos+1])<<8
	ok.Warnings = uint16(p[pos+2]) | uint16(p[pos+3])<<8
	return ok, nil
}

// EOFStatus returns the status flags of a terminator packet, which is either a
// classic 5-byte EOF or an OK packet with header 0xfe.
func EOFStatus(p []byte) (uint16, error) {
	if len(p) == 5 {
		return uint16(p[3]) | uint16(p[4])<<8, nil
	}
	if len(p) < 5 {
		return 0, ErrMalformed
	}
	ok, err := ParseOK(p)
	return ok.Status, err
}

// ParseErr decodes an ERR packet into the error type go-mysql uses, so that
// errno, SQLSTATE and message survive unchanged to wherever they are shown.
func ParseErr(p []byte) *mysql.MyError {
	e := &mysql.MyError{Code: mysql.ER_UNKNOWN_ERROR, State: mysql.DEFAULT_MYSQL_STATE}
	if len(p) < 3 || p[0] != ErrHeader {
		e.Message = "malformed error packet"
		return e
	}
	e.Code = uint16(p[1]) | uint16(p[2])<<8
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
	b = append(b, ErrHeader, byte(e.Code), byte(e.Code>>8), '#')
	b = append(b, state...)
	return append(b, e.Message...)
}

// AppendOK appends an OK packet payload with the given status flags.
func AppendOK(b []byte, affected, insertID uint64, status, warnings uint16) []byte {
	b = append(b, OKHeader)
	b = AppendLenenc(b, affected)
	b = AppendLenenc(b, insertID)
	return append(b, byte(status), byte(status>>8), byte(warnings), byte(warnings>>8))
}

// Errorf builds a proxy-raised error with SQLSTATE HY000 (or the state that
// goes with code in go-mysql's table).
func Errorf(code uint16, format string, args ...any) *mysql.MyError {
	return mysql.NewError(code, fmt.Sprintf(format, args...))
}

// StripSessionTrack rewrites an OK packet (header 0x00, or 0xfe in place of
// EOF) sent under CLIENT_SESSION_TRACK into the form a client without it
// expects: the info string if any, no session state, and
// SERVER_SESSION_STATE_CHANGED cleared. dst receives the new payload.
func StripSessionTrack(dst, p []byte) ([]byte, error) {
	if len(p) < 1 {
		return nil, ErrMalformed
	}
	pos := 1
	for range 2 { // affected rows, last insert id
		_, n, err := Lenenc(p[pos:])
		if err != nil {
			return nil, err
		}
		pos += n
	}
	if len(p) < pos+4 {
		return nil, ErrMalformed
	}
	status := uint16(p[pos]) | uint16(p[pos+1])<<8
	dst = append(dst[:0], p[:pos]...)
	cleared := status &^ mysql.SERVER_SESSION_STATE_CHANGED
	dst = append(dst, byte(cleared), byte(cleared>>8), p[pos+2], p[pos+3])
	pos += 4
	if pos == len(p) {
		return dst, nil
	}
	info, _, err := LenencString(p[pos:])
	if err != nil {
		return nil, err
	}
	if len(info) == 0 {
		return dst, nil
	}
	// Servers send the info length-prefixed with or without session
	// tracking, whatever the protocol documentation says, and clients
	// (mysqlnd, libmariadb) read it so.
	dst = AppendLenenc(dst, uint64(len(info)))
	return append(dst, info...), nil
}

// sessionTrackSystemVariables is the session-state entry type that carries
// a changed system variable (name and value), such as last_gtid.
const sessionTrackSystemVariables = 0

// LastGTID returns the last_gtid a server reported in an OK packet's
// session-state information, if there is one.
func LastGTID(p []byte) (string, bool) {
	if len(p) < 1 {
		return "", false
	}
	pos := 1
	for range 2 { // affected rows, last insert id
		_, n, err := Lenenc(p[pos:])
		if err != nil {
			return "", false
		}
		pos += n
	}
	if len(p) < pos+4 {
		return "", false
	}
	status := uint16(p[pos]) | uint16(p[pos+1])<<8
	pos += 4
	if status&mysql.SERVER_SESSION_STATE_CHANGED == 0 || pos >= len(p) {
		return "", false
	}
	_, n, err := LenencString(p[pos:]) // info
	if err != nil {
		return "", false
	}
	pos += n
	state, _, err := LenencString(p[pos:])
	if err != nil {
		return "", false
	}
	for len(state) > 0 {
		typ := state[0]
		data, n, err := LenencString(state[1:])
		if err != nil {
			return "", false
		}
		state = state[1+n:]
		if typ != sessionTrackSystemVariables {
			continue
		}
		name, n, err := LenencString(data)
		if err != nil {
			return "", false
		}
		value, _, err := LenencString(data[n:])
		if err != nil {
			return "", false
		}
		if string(name) == "last_gtid" && len(value) > 0 {
			return string(value), true
		}
	}
	return "", false
}

// GTIDCovers reports whether a MariaDB GTID position ("D-S-N,D-S-N,...")
// includes the transaction gtid ("D-S-N"): the position's entry for the
// same replication domain has reached its sequence number.
func GTIDCovers(pos, gtid string) bool {
	dom, seq, ok := splitGTID(gtid)
	if !ok {
		return false
	}
	for pos != "" {
		var entry string
		entry, pos, _ = strings.Cut(pos, ",")
		d, s, ok := splitGTID(strings.TrimSpace(entry))
		if ok && d == dom {
			return s >= seq
		}
	}
	return false
}

func splitGTID(g string) (domain string, seq uint64, ok bool) {
	d, rest, ok1 := strings.Cut(g, "-")
	_, n, ok2 := strings.Cut(rest, "-")
	if !ok1 || !ok2 {
		return "", 0, false
	}
	v, err := strconv.ParseUint(n, 10, 64)
	return d, v, err == nil
}
