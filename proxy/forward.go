package proxy

import (
	"bufio"
	"io"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/backend"
	"switchyard/wire"
)

// The forwarder copies a server's response to the client packet by packet
// without decoding rows. A wire.Walker says what each packet is and where
// the response ends; the forwarder decodes only the terminating OK/EOF
// (status flags, the GTID of a commit) and rewrites the few packets whose
// format depends on what the client negotiated. Buffer ownership: packets
// are peeked in the server connection's read buffer and written to the
// client's write buffer before being discarded, so no packet is copied into
// memory the forwarder owns, and a result set never occupies more than the
// two buffers.

type forwarder struct {
	br *bufio.Reader // the server's response
	bw *bufio.Writer // to the client
	cr *bufio.Reader // the client, for LOCAL INFILE data
	be *backend.Conn
	w  wire.Walker
	// eof: the client negotiated CLIENT_DEPRECATE_EOF. serverEOF: the server
	// sends classic EOF packets (its connection did not negotiate it). With
	// both set the forwarder converts: it drops the EOF after definitions
	// and turns the final EOF into an OK, renumbering the packets after a
	// dropped one.
	eof, serverEOF bool
	// shift is how many packets were dropped so far in this response.
	shift uint8
	// seq is the sequence id the server's next packet must carry.
	seq uint8
	// limit bounds the client's LOCAL INFILE packets (max_packet_size).
	limit int
	// cont is set after a physical packet of maximum size: the next one
	// continues it and must not be interpreted.
	cont bool
	// wrote is set once any byte of the response went to the client: from
	// then on an error can only be reported by closing the connection.
	wrote bool
	// stripTrack: the server connection tracks session state but the client
	// did not ask for it, so OK packets are rewritten for the client.
	stripTrack bool
	// okBuf holds an OK packet rewritten for the client: it starts as the
	// session's scratch space, which OK packets with long info outgrow.
	okBuf []byte
	// gtid is the last GTID the server reported in this response.
	gtid string
	// failed is set when the response ended with an ERR packet.
	failed bool
	// rows counts the rows relayed, for the admin's digest stats.
	rows int64
	// catchReadOnly: the command is a read routed to a replica. If the
	// server refuses it as a write in a read-only transaction (1792, see
	// backend.SessionState.ReadOnly) before anything reached the client,
	// the error is dropped and readOnlyRefused set: nothing ran, and the
	// caller runs it on the primary.
	catchReadOnly, readOnlyRefused bool
	// onPrepareOK, when set, may rewrite the first packet of a successful
	// prepare response (p, decoded as ok) in place before it is passed on.
	onPrepareOK func(p []byte, ok wire.PrepareOK)
}

// forward relays the whole response to one command of the given shape.
func (f *forwarder) forward(shape wire.Shape) error {
	if f.seq == 0 {
		f.seq = 1 // the command went out as packet 0
	}
	f.w.Reset(shape, !f.serverEOF)
	for !f.w.Done() {
		p, n, err := f.next()
		if err != nil {
			return err
		}
		kind, err := f.w.Next(p, n)
		if err != nil {
			return errServerRead{err}
		}
		if kind == wire.KindRow {
			f.rows++
		}
		switch kind {
		case wire.KindOK:
			err = f.passOK(p, n)
		case wire.KindErr:
			f.failed = true
			if f.catchReadOnly && !f.wrote && n == len(p) && wire.ParseErr(p).Code == mysql.ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION {
				f.readOnlyRefused = true
				f.drop(n)
				break
			}
			err = f.pass(n)
		case wire.KindEOF:
			err = f.passTerminator(p, n)
		case wire.KindDefsEOF:
			if f.eof {
				f.drop(n)
			} else {
				err = f.pass(n)
			}
		case wire.KindInfile:
			if err = f.pass(n); err == nil {
				err = f.relayInfile()
			}
		case wire.KindPrepareOK:
			if f.onPrepareOK != nil && n == len(p) {
				f.onPrepareOK(p, f.w.PrepareOK())
			}
			err = f.pass(n)
		default:
			err = f.passWhole(n)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// status is the server's status flags after the response, if it carried
// any (prepare and statistics responses carry none).
func (f *forwarder) status() (uint16, bool) { return f.w.Status() }

// peek returns the next physical packet's payload if it fits the read
// buffer, else only its first byte, plus the payload length. The packet's
// sequence id is checked: a server out of step with the proxy would
// otherwise have its bytes read as something they are not.
func (f *forwarder) peek() ([]byte, int, error) {
	h, err := f.br.Peek(wire.HeaderSize)
	if err != nil {
		return nil, 0, errServerRead{noEOF(err)}
	}
	if h[3] != f.seq {
		return nil, 0, errServerRead{&wire.SequenceError{Got: h[3], Want: f.seq}}
	}
	n := wire.PayloadLen(h)
	want := wire.HeaderSize + n
	if want > f.br.Size() {
		want = wire.HeaderSize + min(n, 1)
	}
	p, err := f.br.Peek(want)
	if err != nil {
		return nil, 0, errServerRead{noEOF(err)}
	}
	return p[wire.HeaderSize:], n, nil
}

// consume discards a physical packet of payload length n that was dealt
// with.
func (f *forwarder) consume(n int) {
	_, _ = f.br.Discard(wire.HeaderSize + n)
	f.seq++
	f.cont = n == wire.MaxPayload
}

// pass copies the next physical packet, whose payload length is n, to the
// client.
func (f *forwarder) pass(n int) error {
	f.wrote = true
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
		f.consume(n)
		return nil
	}
	// Larger than the read buffer: stream it through in buffer-sized pieces.
	for first := true; total > 0; first = false {
		chunk := min(total, f.br.Size())
		p, err := f.br.Peek(chunk)
		if err != nil {
			return errServerRead{noEOF(err)}
		}
		if first {
			p[3] -= f.shift
		}
		if _, err := f.bw.Write(p); err != nil {
			return errClientWrite{err}
		}
		_, _ = f.br.Discard(chunk)
		total -= chunk
	}
	f.seq++
	f.cont = n == wire.MaxPayload
	return nil
}

// next peeks the next logical packet start, passing the rest of a packet
// that continues.
func (f *forwarder) next() ([]byte, int, error) {
	for {
		p, n, err := f.peek()
		if err != nil {
			return nil, 0, err
		}
		if !f.cont {
			return p, n, nil
		}
		if err := f.pass(n); err != nil {
			return nil, 0, err
		}
	}
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

// passOK passes an OK packet (payload p, length n), rewritten when the
// client did not negotiate session tracking.
func (f *forwarder) passOK(p []byte, n int) error {
	if len(p) == n {
		if g, ok := wire.LastGTID(p); ok {
			f.gtid = g
		}
	}
	if !f.stripTrack || n >= wire.MaxPayload || len(p) != n {
		return f.passWhole(n)
	}
	out, err := wire.StripSessionTrack(f.packetBuf(), p)
	if err != nil {
		return errServerRead{err}
	}
	return f.replace(n, out)
}

// packetBuf is room for a rewritten packet: its header, then the payload
// to be appended.
func (f *forwarder) packetBuf() []byte {
	if cap(f.okBuf) < wire.HeaderSize {
		f.okBuf = make([]byte, 0, 64)
	}
	return f.okBuf[:wire.HeaderSize]
}

// replace sends pkt, a payload after wire.HeaderSize bytes of room, in
// place of the next packet (payload length n).
func (f *forwarder) replace(n int, pkt []byte) error {
	wire.PutHeader(pkt, len(pkt)-wire.HeaderSize, f.seq-f.shift)
	f.wrote = true
	if _, err := f.bw.Write(pkt); err != nil {
		return errClientWrite{err}
	}
	f.consume(n)
	return nil
}

// drop discards a packet the client must not see.
func (f *forwarder) drop(n int) {
	f.consume(n)
	f.shift++
}

// passTerminator passes the EOF (or OK in its place) that ends rows,
// definitions or a one-packet response, in the form the client negotiated.
func (f *forwarder) passTerminator(p []byte, n int) error {
	if !wire.IsClassicEOF(p) {
		return f.passOK(p, n) // an OK in place of EOF
	}
	if !f.eof {
		return f.pass(n)
	}
	e, err := wire.ParseEOF(p)
	if err != nil {
		return errServerRead{err}
	}
	return f.replace(n, wire.AppendEOFAsOK(f.packetBuf(), e))
}

// relayInfile sends the client's LOCAL INFILE data to the server, packet by
// packet (each bounded by limits.max_packet_size), up to the empty packet
// that ends it. The client numbers its packets after those it saw, the
// server after those it sent.
func (f *forwarder) relayInfile() error {
	if err := f.bw.Flush(); err != nil {
		return errClientWrite{err}
	}
	buf := make([]byte, wire.HeaderSize, 16<<10)
	clientSeq := f.seq - f.shift
	for {
		p, next, err := wire.ReadPacket(f.cr, buf[:wire.HeaderSize], f.limit, clientSeq)
		if err != nil {
			return errClientWrite{noEOF(err)}
		}
		buf, clientSeq = p, next
		framed := wire.FrameCommand(p) // a packet of sequence id 0 for now
		for i := 0; i < len(framed); i += wire.HeaderSize + wire.PayloadLen(framed[i:]) {
			framed[i+3] = f.seq // the server numbers on from its request
			f.seq++
		}
		if err := f.be.Write(framed); err != nil {
			return errServerRead{err}
		}
		if len(p) == wire.HeaderSize {
			return nil
		}
	}
}

// noEOF turns a clean EOF inside a response into ErrUnexpectedEOF: the
// peer vanished mid-response, which is not an orderly close.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
