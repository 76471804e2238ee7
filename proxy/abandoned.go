package proxy

import (
	"net"
	"time"

	"switchyard/internal/sockpeek"
)

// A client that goes away while its statement runs (it closed its
// connection: a killed process, a timeout in a driver) leaves the proxy
// waiting for an answer nobody will read, and the statement holding its
// place on the server: a lock wait or SLEEP would run its whole course.
// A server notices its own client gone while a statement waits, and ends
// the statement. The proxy does the same: every abandonedCheck it looks at
// the sessions whose statement has run that long, and ends those whose
// client socket is closed, which closes their server connections; the
// server then finds its client gone as it would directly. Looking costs a
// non-blocking peek per long statement, nothing per ordinary one.

// abandonedCheck is how often, and after how long a statement, the
// listener looks for clients that went away.
const abandonedCheck = 2 * time.Second

// statementClock is a Session that says since when its statement runs on
// a server (zero: none runs).
type statementClock interface {
	runningSince() time.Time
}

func (s *session) runningSince() time.Time {
	s.running.mu.Lock()
	defer s.running.mu.Unlock()
	return s.running.since
}

// watchAbandoned ends the sessions whose client went away during a
// statement, until the listener's context ends.
func (ln *Listener) watchAbandoned() {
	defer ln.watchers.Done()
	t := time.NewTicker(abandonedCheck)
	defer t.Stop()
	for {
		select {
		case <-ln.ctx.Done():
			return
		case <-t.C:
		}
		for _, c := range ln.loggedIn() {
			b := c.sess.Load()
			sc, ok := b.Session.(statementClock)
			if !ok {
				continue
			}
			if since := sc.runningSince(); since.IsZero() || time.Since(since) < abandonedCheck {
				continue
			}
			if socketClosed(c.raw) {
				c.Logger().Info("client went away during its statement; ending the statement on the server")
				c.kill()
			}
		}
	}
}

// socketClosed reports, without blocking or reading, whether the peer
// closed nc (or it failed). Unknown for sockets the proxy cannot peek at
// (a PROXY protocol header's wrapper): false.
func socketClosed(nc net.Conn) bool {
	_, closed := sockpeek.New(nc).Peek()
	return closed
}
