// Package wire is the MySQL client/server protocol as both sides of the proxy
// speak it: packet framing with sequence ids checked, and a parse/append
// pair for every packet type the proxy reads or writes (handshake, auth
// exchange, OK/ERR/EOF and session state, column definitions, text and
// binary rows, prepared statements and their parameter values, change
// user, ...), and for those that only the fake server of the unit tests
// and their raw client handle. A Walker follows a server's response to one command packet by
// packet without decoding rows, so the forwarder and the backend's own
// queries share one reading of the grammar; TextResult encodes result sets
// the proxy answers itself.
//
// Decoders take bytes from clients and servers that may be malformed or
// hostile: they check every length and return errors instead of panicking.
// No package other than wire decodes or builds packet bytes.
package wire

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
)

// MaxPayload is the largest payload one physical packet carries; a logical
// packet of this size or more continues in the next physical packet.
const MaxPayload = 1<<24 - 1

// HeaderSize is the 3-byte length plus 1-byte sequence id of every packet.
const HeaderSize = 4

var (
	// ErrMalformed says a packet's own lengths contradict its size.
	ErrMalformed = errors.New("malformed packet")
	// ErrTooLarge says a logical packet is larger than the configured limit.
	ErrTooLarge = errors.New("packet larger than max_packet_size")
	// ErrSequence says a packet carries an unexpected sequence id: the peer
	// and the proxy disagree on where they are in the conversation.
	ErrSequence = errors.New("packets out of order")
)

// TooLargeError is the ErrTooLarge of ReadPacket: it says how much of the
// packet is left unread, so the caller can drain it before answering.
type TooLargeError struct {
	// Remaining payload bytes of the current physical packet, unread.
	Remaining int
	// More: continuation packets follow the current one.
	More bool
}

func (e *TooLargeError) Error() string { return ErrTooLarge.Error() }
func (e *TooLargeError) Unwrap() error { return ErrTooLarge }

// SequenceError is an ErrSequence with the ids involved.
type SequenceError struct{ Got, Want uint8 }

func (e *SequenceError) Error() string {
	return fmt.Sprintf("packets out of order: sequence id %d, want %d", e.Got, e.Want)
}
func (e *SequenceError) Unwrap() error { return ErrSequence }

// PayloadLen decodes the 3-byte little-endian length of a packet header.
func PayloadLen(h []byte) int { return int(uint24(h)) }

// PutHeader writes the header for a payload of n bytes with sequence id seq.
func PutHeader(h []byte, n int, seq uint8) {
	putUint24(h, uint32(n))
	h[3] = seq
}

// ReadPacket reads one logical packet (joining continuation packets) from r
// and appends its payload to dst, which may hold bytes already (header room
// for forwarding, say). The first physical packet must carry sequence id seq
// and each continuation the next one; next is the id the peer's following
// packet must carry. A packet whose payload exceeds limit fails with a
// *TooLargeError before its payload is read, so a hostile length cannot make
// the proxy allocate.
func ReadPacket(r *bufio.Reader, dst []byte, limit int, seq uint8) (payload []byte, next uint8, err error) {
	start := len(dst)
	for {
		// The header is peeked, not copied out: a local array passed to
		// io.ReadFull would escape, one allocation per packet.
		hdr, err := r.Peek(HeaderSize)
		if err != nil {
			if len(dst) > start || len(hdr) > 0 {
				err = noEOF(err)
			}
			return dst, seq, err
		}
		if hdr[3] != seq {
			return dst, seq, &SequenceError{Got: hdr[3], Want: seq}
		}
		n := PayloadLen(hdr)
		_, _ = r.Discard(HeaderSize)
		seq++
		if len(dst)-start+n > limit {
			return dst, seq, &TooLargeError{Remaining: n, More: n == MaxPayload}
		}
		at := len(dst)
		dst = grow(dst, n)
		if _, err := io.ReadFull(r, dst[at:at+n]); err != nil {
			return dst, seq, noEOF(err)
		}
		if n < MaxPayload {
			return dst, seq, nil
		}
	}
}

// Discard drops the unread rest of a packet ReadPacket refused as too large,
// reading at most budget bytes; the caller bounds the time with a deadline.
func Discard(r *bufio.Reader, e *TooLargeError, budget int64) {
	rest, more := e.Remaining, e.More
	for budget > 0 {
		n, err := io.CopyN(io.Discard, r, min(int64(rest), budget))
		budget -= n
		if err != nil || !more {
			return
		}
		var hdr [HeaderSize]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		rest = PayloadLen(hdr[:])
		more = rest == MaxPayload
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
		n := min(len(payload), MaxPayload)
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

// FrameCommand fills in the header of a command built with HeaderSize bytes
// of room in front (sequence id 0, as every command starts) and returns the
// bytes to send: buf itself, or, for a payload too large for one packet, the
// payload split into continuation packets.
func FrameCommand(buf []byte) []byte {
	payload := len(buf) - HeaderSize
	if payload < MaxPayload {
		PutHeader(buf, payload, 0)
		return buf
	}
	framed, _ := AppendPacket(nil, buf[HeaderSize:], 0)
	return framed
}

// CommandPackets frames a command built with HeaderSize bytes of room
// before its payload as the packets the protocol splits it into, starting
// at sequence id 0, without copying the payload: the buffers are buf's
// pieces and headers of their own. next is the sequence id the answer
// starts with: 1, or more after a command of MaxPayload bytes or more.
func CommandPackets(buf []byte) (packets net.Buffers, next uint8) {
	payload := buf[HeaderSize:]
	if len(payload) < MaxPayload {
		PutHeader(buf, len(payload), 0)
		return net.Buffers{buf}, 1
	}
	n := len(payload)/MaxPayload + 1 // the last one shorter, perhaps empty
	headers := make([]byte, n*HeaderSize)
	packets = make(net.Buffers, 0, 2*n)
	for seq := 0; seq < n; seq++ {
		size := min(len(payload), MaxPayload)
		h := headers[seq*HeaderSize : (seq+1)*HeaderSize]
		PutHeader(h, size, uint8(seq))
		packets = append(packets, h, payload[:size])
		payload = payload[size:]
	}
	return packets, uint8(n)
}

// AppendCommand appends a command packet's payload: the command byte, then
// its arguments (a statement's text, a schema name, ...).
func AppendCommand(dst []byte, cmd byte, args string) []byte {
	dst = append(dst, cmd)
	return append(dst, args...)
}
