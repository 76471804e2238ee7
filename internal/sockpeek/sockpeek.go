// Package sockpeek looks at a TCP socket without blocking or consuming:
// whether bytes wait to be read, or the peer closed it. The backend checks
// a server connection after each response with it (bytes behind a
// response's end mean a desync; a closed one is not lent out), the proxy a
// client's socket during a long statement (a client that went away).
package sockpeek

import (
	"net"
	"syscall"
	"unsafe"
)

// Peeker peeks at one socket. Made once per connection, a peek allocates
// nothing (the forwarder peeks after every response).
type Peeker struct {
	raw          syscall.RawConn
	fn           func(fd uintptr)
	data, closed bool
	b            [1]byte
}

// New returns a Peeker for nc, or nil for a connection whose socket it
// cannot see (TLS, a wrapper): there, records or bytes may arrive unasked,
// so the caller trusts the connection.
func New(nc net.Conn) *Peeker {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return &Peeker{} // a socket already gone: Peek says closed
	}
	p := &Peeker{raw: raw}
	p.fn = p.peek
	return p
}

// Peek reports whether bytes wait unread on the socket, and whether the
// peer closed it or it failed. A nil Peeker reports neither.
func (p *Peeker) Peek() (data, closed bool) {
	if p == nil {
		return false, false
	}
	p.data, p.closed = false, false
	if p.raw == nil {
		return false, true
	}
	// Control, not Read: Read first checks the read deadline (a client's
	// idle deadline may have passed while its statement runs, and the peer
	// is alive) and takes the socket's read lock, which a goroutine reading
	// from the peer holds. Control only needs the descriptor open.
	if err := p.raw.Control(p.fn); err != nil {
		return false, true
	}
	return p.data, p.closed
}

func (p *Peeker) peek(fd uintptr) {
	// A raw system call: MSG_DONTWAIT never blocks, so the scheduler need
	// not know.
	n, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&p.b[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	switch {
	case errno == syscall.EAGAIN || errno == syscall.EWOULDBLOCK || errno == syscall.EINTR:
	case errno != 0, n == 0:
		p.closed = true
	default:
		p.data = true
	}
}
