package proxy

import (
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/backend"
	"switchyard/router"
	"switchyard/wire"
)

// Errors. A Session's commands return errors instead of writing them: the
// command loop sends an ordinary error to the client as an ERR packet and
// goes on; ErrQuit, or an error made with EndSession or EndSessionTelling,
// ends the session. clientError is the one place that decides what a
// client sees.

// ErrQuit ends a session quietly: a Session returns it for COM_QUIT.
var ErrQuit = errors.New("client quit")

// sessionEnd is an error that ends the session.
type sessionEnd struct {
	err error
	// tell: the client has seen nothing of the response, so it gets err as
	// an ERR packet before the connection closes.
	tell bool
}

func (e *sessionEnd) Error() string { return e.err.Error() }
func (e *sessionEnd) Unwrap() error { return e.err }

// EndSession makes err end the session without a word to the client: it
// has seen part of a response (once rows have started, an error cannot be
// sent), or it is gone.
func EndSession(err error) error { return &sessionEnd{err: err} }

// EndSessionTelling makes err end the session after it is sent to the
// client.
func EndSessionTelling(err error) error { return &sessionEnd{err: err, tell: true} }

// clientError is the ERR packet a client sees for err: a server's own error
// unchanged (errno, SQLSTATE and message), the proxy's with the MySQL code
// that fits, anything else as 1105 (HY000) saying what failed.
func clientError(err error) *mysql.MyError {
	var (
		full    *backend.ErrServerFull
		ruleErr *router.RuleError
	)
	switch e := err.(type) {
	case *mysql.MyError:
		// Only a bare server error passes unchanged: wrapped, it carries
		// the proxy's account of what it was doing.
		return e
	case *wire.TooLargeError:
		// Bare, these come from reading the client's packet; wrapped, from
		// a server, which is not the client's fault.
		return mysql.NewDefaultError(mysql.ER_NET_PACKET_TOO_LARGE)
	case *wire.SequenceError:
		return mysql.NewDefaultError(mysql.ER_NET_PACKETS_OUT_OF_ORDER)
	}
	var told clientMessage
	switch {
	case errors.As(err, &told):
		return told.MyError()
	case errors.As(err, &full):
		return wire.Errorf(mysql.ER_CON_COUNT_ERROR, "switchyard: %v; raise servers[].max_connections or retry", full)
	case errors.As(err, &ruleErr):
		return wire.Errorf(mysql.ER_UNKNOWN_ERROR, "%s (query rule %q)", ruleErr.Message, ruleErr.Rule)
	}
	return wire.Errorf(mysql.ER_UNKNOWN_ERROR, "switchyard: %v", err)
}

// clientMessage is an error that knows what the client should be told.
type clientMessage interface {
	error
	MyError() *mysql.MyError
}

// isDisconnect is true for the ordinary ways a peer goes away, which are
// not worth a log line.
func isDisconnect(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed)
}

// errClientWrite wraps failures to write to the client, so that a session
// can tell a vanished client from a vanished server.
type errClientWrite struct{ err error }

func (e errClientWrite) Error() string { return "write to client: " + e.err.Error() }
func (e errClientWrite) Unwrap() error { return e.err }

// errServerRead wraps failures to read from (or write to) the server.
type errServerRead struct{ err error }

func (e errServerRead) Error() string { return "read from server: " + e.err.Error() }
func (e errServerRead) Unwrap() error { return e.err }

func isClientErr(err error) bool {
	var cw errClientWrite
	return errors.As(err, &cw)
}
