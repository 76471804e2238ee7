package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/backend"
	"switchyard/wire"
)

// The forwarder copies a server's response to the client packet by packet
// without decoding rows. It looks at packet headers and first bytes to find
// where the response ends, and decodes only the terminating OK/EOF (status
// flags). Buffer ownership: packets are peeked in the server connection's
// read buffer and written to the client's write buffer before being
// discarded, so no packet is copied into memory the forwarder owns, and a
// result set never occupies more than the two buffers.

// respShape is what a command's response looks like on the wire.
type respShape int

const (
	shapeResult    respShape = iota // result sets, OK, ERR or LOCAL INFILE, possibly several
	shapeOne                        // exactly one packet (OK, ERR, EOF or a string)
	shapeFieldList                  // column definitions until EOF, or ERR
	shapePrepare                    // COM_STMT_PREPARE: OK with parameter and column definitions, or ERR
	shapeRows                       // COM_STMT_FETCH: rows until EOF, or ERR
)

// errClientWrite wraps failures to write to the client, so that the session
// can tell a vanished client from a vanished server.
type errClientWrite struct{ err error }

func (e errClientWrite) Error() string { return "write to client: " + e.err.Error() }
func (e errClientWrite) Unwrap() error { return e.err }

// errServerRead wraps failures to read from the server.
type errServerRead struct{ err error }

func (e errServerRead) Error() string { return "read from server: " + e.err.Error() }
func (e errServerRead) Unwrap() error { return e.err }

type forwarder struct {
	br  *bufio.Reader
	bw  *bufio.Writer
	cr  *bufio.Reader // client, for LOCAL INFILE data
	be  *backend.Conn
	eof bool // client negotiated CLIENT_DEPRECATE_EOF
	// serverEOF: the server sends classic EOF packets (its connection did
	// not negotiate CLIENT_DEPRECATE_EOF). With eof also set, the forwarder
	// converts: it drops the EOF after column definitions and turns the
	// final EOF into an OK, renumbering the packets after a dropped one.
	serverEOF bool
	// shift is how many packets were dropped so far in this response.
	shift uint8

	// cont is set after a physical packet of maximum size: the next one
	// continues it and must not be interpreted.
	cont bool
	// wrote is set once any byte of the response went to the client: from
	// then on an error can only be reported by closing the connection.
	wrote  bool
	status uint16
	// stripTrack: the server connection tracks session state but the client
	// did not ask for it, so OK packets are rewritten for the client.
	stripTrack bool
	okBuf      []byte
	// gtid is the last GTID the server reported in this response.
	gtid string
	// failed is set when the response ended with an ERR packet.
	failed bool
	// onPrepareOK, when set, may rewrite the OK packet of a prepare
	// response in place before it is passed on.
	onPrepareOK func(p []byte)
	// hasStatus is set when the response carried server status flags
	// (OK or EOF); some responses (statistics, prepare) carry none.
	hasStatus bool
}

// peek returns the next physical packet's payload if it fits the read
// buffer, else only its first byte, plus the payload length.
func (f *forwarder) peek() ([]byte, int, error) {
	h, err := f.br.Peek(wire.HeaderSize)
	if err != nil {
		return nil, 0, errServerRead{noEOF(err)}
	}
	n := wire.PayloadLen(h)
	want := wire.HeaderSize + n
	if want > f.br.Size() {
		want = wire.HeaderSize + 1
	}
	p, err := f.br.Peek(want)
	if err != nil {
		return nil, 0, errServerRead{noEOF(err)}
	}
	return p[wire.HeaderSize:], n, nil
}

// pass copies the next physical packet, whose payload length is n, to the client.
func (f *forwarder) pass(n int) error {
	f.wrote = true
	f.cont = n == wire.MaxPayload
	total := wire.HeaderSize + n
	if total <= f.br.Size() {
		p, err := f.br.Peek(total)
		if err != nil {
			return errServerRead{noEOF(err)}
		}
		p[3] -= f.shift
		if _, err := f.bw.Write(p); err != nil {
			return errClientWrite{err}
		}
		_, _ = f.br.Discard(total)
		return nil
	}
	// Larger than the read buffer: stream it through in buffer-sized pieces.
	first := true
	for total > 0 {
		chunk := min(total, f.br.Size())
		p, err := f.br.Peek(chunk)
		if err != nil {
			return errServerRead{noEOF(err)}
		}
		if first {
			p[3] -= f.shift
			first = false
		}
		if _, err := f.bw.Write(p); err != nil {
			return errClientWrite{err}
		}
		_, _ = f.br.Discard(chunk)
		total -= chunk
	}
	return nil
}

// next peeks the next logical packet start, passing continuation packets.
func (f *forwarder) next() ([]byte, int, error) {
	for {
		p, n, err := f.peek()
		if err != nil {
			return nil, 0, err
		}
		if !f.cont {
			if n == 0 {
				return nil, 0, errServerRead{wire.ErrMalformed}
			}
			return p, n, nil
		}
		if err := f.pass(n); err != nil {
			return nil, 0, err
		}
	}
}

func (f *forwarder) forward(shape respShape) error {
	switch shape {
	case shapeOne:
		p, n, err := f.next()
		if err != nil {
			return err
		}
		switch {
		case p[0] == wire.OKHeader:
			if ok, err := wire.ParseOK(p); err == nil {
				f.status, f.hasStatus = ok.Status, true
			}
			return f.passOK(p, n)
		case p[0] == wire.ErrHeader:
			f.failed = true
		case f.eof && f.serverEOF && wire.IsEOFPacket(p, n) && len(p) == 5:
			// COM_SET_OPTION answers with EOF, or OK for such clients.
			return f.passEOFAsOK(p, n)
		}
		return f.passWhole(n)
	case shapeFieldList:
		return f.rows()
	case shapeRows:
		return f.rows()
	case shapePrepare:
		return f.prepare()
	}
	return f.results()
}

// passOK passes an OK packet (payload p, length n), rewritten when the
// client did not negotiate session tracking.
func (f *forwarder) passOK(p []byte, n int) error {
	if len(p) == n {
		if g, ok := wire.LastGTID(p); ok {
			f.gtid = g
		}
	}
	if !f.stripTrack || n >= wire.MaxPayload || len(p) != n {
		return f.pass(n)
	}
	out, err := wire.StripSessionTrack(f.okBuf[:0], p)
	if err != nil {
		return errServerRead{err}
	}
	hdr, _ := f.br.Peek(wire.HeaderSize)
	seq := hdr[3] - f.shift
	f.okBuf = out
	var h [wire.HeaderSize]byte
	wire.PutHeader(h[:], len(out), seq)
	f.wrote = true
	f.cont = false
	if _, err := f.bw.Write(h[:]); err != nil {
		return errClientWrite{err}
	}
	if _, err := f.bw.Write(out); err != nil {
		return errClientWrite{err}
	}
	_, _ = f.br.Discard(wire.HeaderSize + n)
	return nil
}

// drop discards a packet the client must not see.
func (f *forwarder) drop(n int) {
	_, _ = f.br.Discard(wire.HeaderSize + n)
	f.shift++
}

// passEOFAsOK sends a classic EOF packet p to a CLIENT_DEPRECATE_EOF client
// as the OK packet (header 0xfe) it expects in its place.
func (f *forwarder) passEOFAsOK(p []byte, n int) error {
	if len(p) != 5 {
		return errServerRead{wire.ErrMalformed}
	}
	hdr, _ := f.br.Peek(wire.HeaderSize)
	seq := hdr[3] - f.shift
	// EOF: 0xfe, warnings, status. OK: 0xfe, affected rows, insert id, status, warnings.
	out := []byte{0, 0, 0, 0, wire.EOFHeader, 0, 0, p[3], p[4], p[1], p[2]}
	wire.PutHeader(out, len(out)-wire.HeaderSize, seq)
	f.wrote = true
	f.cont = false
	if _, err := f.bw.Write(out); err != nil {
		return errClientWrite{err}
	}
	_, _ = f.br.Discard(wire.HeaderSize + n)
	return nil
}

// passTerminator passes the EOF (or OK in its place) that ends rows or
// definitions, in the form the client negotiated.
func (f *forwarder) passTerminator(p []byte, n int) error {
	switch {
	case len(p) == 5 && f.eof:
		return f.passEOFAsOK(p, n)
	case len(p) == 5:
		return f.pass(n)
	}
	return f.passOK(p, n) // an OK in place of EOF
}

// passWhole passes a logical packet that starts with a packet of length n.
func (f *forwarder) passWhole(n int) error {
	if err := f.pass(n); err != nil {
		return err
	}
	for f.cont {
		_, n, err := f.peek()
		if err != nil {
			return err
		}
		if err := f.pass(n); err != nil {
			return err
		}
	}
	return nil
}

// results forwards the response to COM_QUERY or COM_STMT_EXECUTE.
func (f *forwarder) results() error {
	for {
		p, n, err := f.next()
		if err != nil {
			return err
		}
		switch {
		case p[0] == wire.OKHeader:
			ok, err := wire.ParseOK(p)
			if err != nil {
				return errServerRead{err}
			}
			f.status, f.hasStatus = ok.Status, true
			if err := f.passOK(p, n); err != nil {
				return err
			}
			if ok.Status&mysql.SERVER_MORE_RESULTS_EXISTS == 0 {
				return nil
			}
			continue
		case p[0] == wire.ErrHeader:
			f.failed = true
			return f.pass(n)
		case p[0] == wire.InfileHeader && n < wire.MaxPayload:
			if err := f.pass(n); err != nil {
				return err
			}
			if err := f.relayInfile(); err != nil {
				return err
			}
			continue // the server answers the upload with OK or ERR
		}
		cols, _, err := wire.Lenenc(p)
		if err != nil || cols == 0 {
			return errServerRead{fmt.Errorf("bad column count: %w", wire.ErrMalformed)}
		}
		if err := f.passWhole(n); err != nil {
			return err
		}
		for range cols {
			_, n, err := f.next()
			if err != nil {
				return err
			}
			if err := f.passWhole(n); err != nil {
				return err
			}
		}
		if f.serverEOF {
			p, n, err := f.next()
			if err != nil {
				return err
			}
			st, err := wire.EOFStatus(p)
			if err != nil {
				return errServerRead{err}
			}
			if st&mysql.SERVER_STATUS_CURSOR_EXISTS != 0 {
				// A cursor was opened: rows come later through
				// COM_STMT_FETCH, and this EOF ends the response.
				f.status, f.hasStatus = st, true
				return f.passTerminator(p, n)
			}
			if f.eof {
				f.drop(n)
			} else if err := f.pass(n); err != nil {
				return err
			}
		}
		if err := f.rows(); err != nil {
			return err
		}
		if f.status&mysql.SERVER_MORE_RESULTS_EXISTS == 0 {
			return nil
		}
	}
}

// rows forwards packets up to and including the terminating EOF (or OK in
// its place) or ERR, recording the terminator's status flags.
func (f *forwarder) rows() error {
	for {
		p, n, err := f.next()
		if err != nil {
			return err
		}
		if p[0] == wire.ErrHeader && n < wire.MaxPayload {
			f.failed = true
			return f.pass(n)
		}
		if wire.IsEOFPacket(p, n) {
			st, err := wire.EOFStatus(p)
			if err != nil {
				return errServerRead{err}
			}
			f.status, f.hasStatus = st, true
			return f.passTerminator(p, n)
		}
		if err := f.passWhole(n); err != nil {
			return err
		}
	}
}

// prepare forwards a COM_STMT_PREPARE response.
func (f *forwarder) prepare() error {
	p, n, err := f.next()
	if err != nil {
		return err
	}
	if p[0] != wire.OKHeader {
		f.failed = p[0] == wire.ErrHeader
		return f.pass(n)
	}
	if len(p) < 12 {
		return errServerRead{wire.ErrMalformed}
	}
	cols := int(p[5]) | int(p[6])<<8
	params := int(p[7]) | int(p[8])<<8
	if f.onPrepareOK != nil && n < f.br.Size() {
		f.onPrepareOK(p)
	}
	if err := f.pass(n); err != nil {
		return err
	}
	for _, count := range []int{params, cols} {
		if count == 0 {
			continue
		}
		for range count {
			_, n, err := f.next()
			if err != nil {
				return err
			}
			if err := f.passWhole(n); err != nil {
				return err
			}
		}
		if f.serverEOF {
			_, n, err := f.next()
			if err != nil {
				return err
			}
			if f.eof {
				f.drop(n)
			} else if err := f.pass(n); err != nil {
				return err
			}
		}
	}
	return nil
}

// relayInfile sends the client's LOCAL INFILE data to the server, packet by
// packet, up to the empty packet that ends it.
func (f *forwarder) relayInfile() error {
	if err := f.bw.Flush(); err != nil {
		return errClientWrite{err}
	}
	buf := make([]byte, 0, 16<<10)
	for {
		var hdr [wire.HeaderSize]byte
		if _, err := io.ReadFull(f.cr, hdr[:]); err != nil {
			return errClientWrite{err}
		}
		n := wire.PayloadLen(hdr[:])
		buf = append(buf[:0], hdr[:]...)
		if cap(buf) < wire.HeaderSize+n {
			buf = append(buf, make([]byte, n)...)
		} else {
			buf = buf[:wire.HeaderSize+n]
		}
		if _, err := io.ReadFull(f.cr, buf[wire.HeaderSize:]); err != nil {
			return errClientWrite{err}
		}
		buf[3] += f.shift // the client numbers after the packets it saw
		if err := f.be.Write(buf); err != nil {
			return errServerRead{err}
		}
		if n == 0 {
			return nil
		}
	}
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
