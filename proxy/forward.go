package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

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
//
// Desynchronisation. A forwarder that misreads a response (a shape the
// walker does not know, a server that breaks the protocol) would either
// wait for packets the server never sends or leave some of the response
// unread on a connection that goes back to the pool, where the next
// command reads it as its own answer. Neither may happen silently: the
// forwarder fails with errDesync when the server's bytes do not fit the
// grammar, a packet carries an unexpected sequence id, bytes follow what
// it took for the end of the response, or the server has finished the
// command (its thread is idle in the server's process list) while the
// forwarder still waits for more of a response it has begun to read. A
// statement may compute its rows slowly and send nothing meanwhile, so
// silence alone proves nothing: after stallCheck (to twice that) without
// a byte the forwarder asks the server, on another connection, what the
// connection's thread is doing, and waits on while it is busy. On a desync
// the forwarder logs it at error level, the server connection is closed
// (never pooled), and the client's session ends.

// Stall checks: the first after defaultStallCheck of silence, then at
// doubling intervals up to maxStallCheck. A thread idle for idleSettle
// with nothing more on the socket has sent all it will.
const (
	defaultStallCheck = 5 * time.Second
	maxStallCheck     = 5 * time.Minute
	idleSettle        = 2 * time.Second
	probeTimeout      = 10 * time.Second
)

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
	// rows counts the rows relayed, for the admin's digest stats and the
	// slow log.
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
	// sess, when set, is the session the response is for: it logs a
	// desync and checks a stalled server (tests of the forwarder alone
	// leave it nil). wait is the silence before the next stall check;
	// packets counts the physical packets read, and mark is where
	// packets and the read buffer stood when the wait began.
	sess    *session
	wait    time.Duration
	packets uint64
	mark    progress
}

// progress is how far a response has come: a stalled one has not moved.
type progress struct {
	packets  uint64
	buffered int
}

// errDesync says the proxy and a server disagree on where they are in a
// response (see the comment at the top of this file). It is a server read
// error: the session ends as when the connection breaks.
type errDesync struct{ err error }

func (e *errDesync) Error() string { return "response out of step with the proxy: " + e.err.Error() }
func (e *errDesync) Unwrap() error { return e.err }

// errStalled is the desync of a server that finished a command whose
// response the walker holds unfinished.
var errStalled = errors.New("the server finished the command but its response is incomplete")

// errTrailing is the desync of a server that sent more than the response
// the walker read.
var errTrailing = errors.New("the server sent more after the end of the response")

// forward relays the whole response to one command of the given shape.
func (f *forwarder) forward(shape wire.Shape) error {
	if f.seq == 0 {
		f.seq = 1 // the command went out as packet 0
	}
	f.w.Reset(shape, !f.serverEOF)
	f.wait = 0
	defer f.disarm()
	err := f.relay()
	f.disarm() // an expired deadline would fail the peek at the socket below
	if err != nil {
		var sr errServerRead
		var se *wire.SequenceError
		if errors.As(err, &sr) && (errors.As(sr.err, &se) || errors.Is(sr.err, wire.ErrMalformed)) {
			return errServerRead{f.desync(sr.err)}
		}
		return err
	}
	if f.br.Buffered() > 0 || f.be != nil && f.be.Unread() {
		return errServerRead{f.desync(errTrailing)}
	}
	return nil
}

// relay passes the packets of the response until the walker says it ended.
func (f *forwarder) relay() error {
	for !f.w.Done() {
		if err := f.passRows(); err != nil {
			return err
		}
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
			if f.sess != nil && len(p) >= 3 {
				f.sess.srv.metrics.countError(originServer, uint16(p[1])|uint16(p[2])<<8)
			}
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
				if f.wait != 0 {
					f.arm() // the client's upload is no silence of the server's
				}
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

// passRows passes, in one write, the whole row packets already in the read
// buffer while the walker expects rows (see wire.RowRun), and leaves what
// ends the run to the per-packet path. A result of a hundred small rows
// otherwise costs a hundred peeks, walker steps, writes and discards, more
// than the copy itself (callgrind, oltp_read_only's range selects).
func (f *forwarder) passRows() error {
	rows, binary := f.w.InRows()
	if !rows || f.cont || f.br.Buffered() <= wire.HeaderSize {
		return nil
	}
	buf, _ := f.br.Peek(f.br.Buffered()) // bytes already read: no I/O, no error
	// Renumbered for the client when packets were dropped before the rows.
	size, count := wire.RowRun(buf, f.seq, f.shift, binary)
	if count == 0 {
		return nil
	}
	f.wrote = true
	if _, err := f.bw.Write(buf[:size]); err != nil {
		return errClientWrite{err}
	}
	_, _ = f.br.Discard(size)
	f.rows += int64(count) // each a whole row: RowRun stops at a packet of MaxPayload
	f.packets += uint64(count)
	f.seq += uint8(count)
	return nil
}

// status is the server's status flags after the response, if it carried
// any (prepare and statistics responses carry none).
func (f *forwarder) status() (uint16, bool) { return f.w.Status() }

// desync logs at error level that the response cannot be followed, and
// returns the error that ends the session (the caller wraps it as a
// server read error); the caller marks the server connection broken, so it
// is closed instead of pooled.
func (f *forwarder) desync(cause error) *errDesync {
	if f.sess != nil {
		f.sess.srv.metrics.desyncs.Add(1)
		f.sess.c.Logger().Error("server response out of step with the proxy; closing the session and its server connection",
			"server", f.be.Server().Name, "thread", f.be.ThreadID(), "expected", f.w.Expecting(), "err", cause)
	}
	return &errDesync{err: cause}
}

// watching reports whether the forwarder checks a silent server.
func (f *forwarder) watching() bool { return f.sess != nil && f.be != nil && f.sess.stallCheck() > 0 }

// arm starts a wait of f.wait for the server's next bytes.
func (f *forwarder) arm() {
	f.mark = progress{f.packets, f.br.Buffered()}
	_ = f.be.SetReadDeadline(time.Now().Add(f.wait))
}

// disarm ends the watch of the server, if it began.
func (f *forwarder) disarm() {
	if f.wait != 0 {
		_ = f.be.SetReadDeadline(time.Time{})
		f.wait = 0
	}
}

// fill peeks n bytes of the response (at most the read buffer's size),
// waiting as long as the server is working on it. The watch of a silent
// server starts when the response has begun and the bytes read so far are
// used up: the wait for the first byte is the server thinking (a server
// that never answers a command is no misreading of its answer), and most
// responses arrive whole in their first read, which spares them the cost
// of a deadline.
func (f *forwarder) fill(n int) ([]byte, error) {
	if f.wait == 0 && f.packets > 0 && f.br.Buffered() < n && f.watching() {
		f.wait = f.sess.stallCheck()
		f.arm()
	}
	for {
		p, err := f.br.Peek(n)
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) || !f.watching() {
			return p, err
		}
		if err := f.stalled(); err != nil {
			return p, err
		}
	}
}

// stalled runs when a wait for the server's bytes timed out. A response
// that moved meanwhile waits on; one that did not is checked: while the
// server's thread for the connection is busy (a long statement, a lock
// wait, a client slow to read) the wait goes on, at doubling intervals;
// once the thread has been idle for idleSettle with nothing more arrived,
// the server believes it has answered, and the response is a desync.
func (f *forwarder) stalled() error {
	if (progress{f.packets, f.br.Buffered()}) == f.mark {
		// No deadline while checking: an expired one would fail the peek
		// at the socket, which must see bytes that came meanwhile.
		_ = f.be.SetReadDeadline(time.Time{})
		f.sess.srv.metrics.stallChecks.Add(1)
		command, idle, err := f.sess.serverIdle(f.be)
		f.sess.c.Logger().Debug("checked a silent server", "server", f.be.Server().Name, "thread", f.be.ThreadID(),
			"command", command, "idle", idle, "err", err)
		switch {
		case err != nil:
			f.sess.c.Logger().Warn("cannot check a silent server; waiting on", "server", f.be.Server().Name, "err", err)
			f.wait = min(2*f.wait, maxStallCheck)
		case idle >= idleSettle && f.br.Buffered() == 0 && !f.be.Unread():
			return f.desync(fmt.Errorf("%w (connection %d idle for %v)", errStalled, f.be.ThreadID(), idle))
		case idle >= 0:
			// Idle just now: its last bytes may still be on their way.
			f.wait = idleSettle
		default:
			f.wait = min(2*f.wait, maxStallCheck)
		}
	}
	f.arm()
	return nil
}

// stallCheck is how long a response may go without a byte before the
// server is asked whether it is still working on it; 0: never.
func (s *session) stallCheck() time.Duration {
	return durationDefault(s.srv.opt.StallCheck, defaultStallCheck)
}

// serverIdle asks sc's server, on another connection of the session's
// pool, what sc's thread is doing (its process list COMMAND): how long it
// has been idle (waiting for a command), or -1 while it works or cannot be
// seen.
func (s *session) serverIdle(sc *backend.Conn) (string, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	l := s.c.login
	pc, err := s.srv.pool.Acquire(ctx, sc.Server(), backend.Request{
		Dial: backend.DialOptions{Creds: l.Creds, Schema: l.Schema, Collation: l.Collation, Capabilities: s.c.caps},
	})
	if err != nil {
		return "", -1, err
	}
	_ = pc.SetDeadline(time.Now().Add(probeTimeout))
	res, err := pc.Query(fmt.Sprintf("SELECT COMMAND, TIME FROM information_schema.PROCESSLIST WHERE ID = %d", sc.ThreadID()))
	_ = pc.SetDeadline(time.Time{})
	if err != nil {
		var me *mysql.MyError
		if !errors.As(err, &me) {
			pc.MarkBroken()
		}
		s.srv.pool.Release(pc)
		return "", -1, err
	}
	s.srv.pool.Release(pc)
	if len(res.Rows) != 1 || len(res.Rows[0]) != 2 {
		return "", -1, nil // gone, or not visible to this user
	}
	command := res.Rows[0][0].String
	if command != "Sleep" {
		return command, -1, nil
	}
	var secs int64
	if _, err := fmt.Sscan(res.Rows[0][1].String, &secs); err != nil {
		return command, -1, fmt.Errorf("process list TIME %q: %w", res.Rows[0][1].String, err)
	}
	return command, time.Duration(secs) * time.Second, nil
}

// peek returns the next physical packet's payload if it fits the read
// buffer, else only its first byte, plus the payload length. The packet's
// sequence id is checked: a server out of step with the proxy would
// otherwise have its bytes read as something they are not.
func (f *forwarder) peek() ([]byte, int, error) {
	h, err := f.fill(wire.HeaderSize)
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
	p, err := f.fill(want)
	if err != nil {
		return nil, 0, errServerRead{noEOF(err)}
	}
	return p[wire.HeaderSize:], n, nil
}

// consume discards a physical packet of payload length n that was dealt
// with.
func (f *forwarder) consume(n int) {
	_, _ = f.br.Discard(wire.HeaderSize + n)
	f.packets++
	f.seq++
	f.cont = n == wire.MaxPayload
}

// pass copies the next physical packet, whose payload length is n, to the
// client.
func (f *forwarder) pass(n int) error {
	f.wrote = true
	total := wire.HeaderSize + n
	if total <= f.br.Size() {
		p, err := f.fill(total)
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
		p, err := f.fill(chunk)
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
		f.packets++ // a piece of a large packet is progress too
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
	if f.sess != nil {
		f.sess.c.expectData()
	}
	buf := make([]byte, wire.HeaderSize, 16<<10)
	clientSeq := f.seq - f.shift
	for {
		p, next, err := wire.ReadPacket(f.cr, buf[:wire.HeaderSize], f.limit, clientSeq)
		if err != nil {
			f.refuseInfile(err, next)
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

// refuseInfile tells a client whose LOCAL INFILE packet is refused what
// a server would (packets out of order, or too large), numbered as the
// server would number it; the session ends after, since the server waits
// in the middle of the statement.
func (f *forwarder) refuseInfile(err error, next uint8) {
	var se *wire.SequenceError
	var tl *wire.TooLargeError
	var me *mysql.MyError
	seq := next
	switch {
	case errors.As(err, &se):
		me, seq = mysql.NewDefaultError(mysql.ER_NET_PACKETS_OUT_OF_ORDER), se.Want
	case errors.As(err, &tl):
		me = mysql.NewDefaultError(mysql.ER_NET_PACKET_TOO_LARGE)
	default:
		return
	}
	pkt := wire.AppendErr(make([]byte, wire.HeaderSize, 64), me)
	wire.PutHeader(pkt, len(pkt)-wire.HeaderSize, seq)
	if _, err := f.bw.Write(pkt); err == nil {
		_ = f.bw.Flush()
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
