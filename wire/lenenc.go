package wire

import (
	"bytes"
	"encoding/binary"
)

// Length-encoded integers and strings, NUL-terminated strings and the
// fixed-size little-endian integers of the protocol.

// nullValue is the lenenc prefix that stands for SQL NULL in a text row.
const nullValue = 0xfb

func uint24(b []byte) uint32 { return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 }

func putUint24(b []byte, v uint32) { b[0], b[1], b[2] = byte(v), byte(v>>8), byte(v>>16) }

func appendUint24(b []byte, v uint32) []byte { return append(b, byte(v), byte(v>>8), byte(v>>16)) }

// Lenenc decodes a length-encoded integer, returning the value and bytes used.
func Lenenc(b []byte) (v uint64, n int, err error) {
	if len(b) == 0 {
		return 0, 0, ErrMalformed
	}
	switch b[0] {
	case nullValue:
		return 0, 1, nil
	case 0xfc:
		if len(b) < 3 {
			return 0, 0, ErrMalformed
		}
		return uint64(binary.LittleEndian.Uint16(b[1:])), 3, nil
	case 0xfd:
		if len(b) < 4 {
			return 0, 0, ErrMalformed
		}
		return uint64(uint24(b[1:])), 4, nil
	case 0xfe:
		if len(b) < 9 {
			return 0, 0, ErrMalformed
		}
		return binary.LittleEndian.Uint64(b[1:]), 9, nil
	case 0xff:
		return 0, 0, ErrMalformed
	}
	return uint64(b[0]), 1, nil
}

// LenencString decodes a length-encoded string, returning it and bytes used.
// The result aliases b.
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
		return binary.LittleEndian.AppendUint16(append(b, 0xfc), uint16(v))
	case v < 1<<24:
		return appendUint24(append(b, 0xfd), uint32(v))
	}
	return binary.LittleEndian.AppendUint64(append(b, 0xfe), v)
}

// AppendLenencString appends s with its length in front.
func AppendLenencString[S ~string | ~[]byte](b []byte, s S) []byte {
	b = AppendLenenc(b, uint64(len(s)))
	return append(b, s...)
}

// nulString splits a NUL-terminated string off the front of b. When the NUL
// is missing and tolerant is set, the rest of b is the string (some clients
// omit the last NUL); otherwise that is malformed.
func nulString(b []byte, tolerant bool) (s, rest []byte, err error) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		if tolerant {
			return b, nil, nil
		}
		return nil, nil, ErrMalformed
	}
	return b[:i], b[i+1:], nil
}

func appendNulString[S ~string | ~[]byte](b []byte, s S) []byte {
	b = append(b, s...)
	return append(b, 0)
}

// reader walks a payload field by field; the first failure sticks, so a
// parser checks err once at the end.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail() { r.err, r.b = ErrMalformed, nil }

func (r *reader) bytes(n int) []byte {
	if r.err != nil || n < 0 || len(r.b) < n {
		r.fail()
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() uint8 {
	if b := r.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if b := r.bytes(2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if b := r.bytes(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *reader) lenenc() uint64 {
	if r.err != nil {
		return 0
	}
	v, n, err := Lenenc(r.b)
	if err != nil {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) lenencString() []byte {
	if r.err != nil {
		return nil
	}
	s, n, err := LenencString(r.b)
	if err != nil {
		r.fail()
		return nil
	}
	r.b = r.b[n:]
	return s
}

func (r *reader) nulString(tolerant bool) []byte {
	if r.err != nil {
		return nil
	}
	s, rest, err := nulString(r.b, tolerant)
	if err != nil {
		r.fail()
		return nil
	}
	r.b = rest
	return s
}

func (r *reader) rest() []byte {
	v := r.b
	r.b = nil
	return v
}

func (r *reader) empty() bool { return len(r.b) == 0 }
