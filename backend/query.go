package backend

import (
	"bufio"
	"errors"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/wire"
)

// The proxy's own commands on a server connection: health checks, state
// replay, lazy prepares. Client traffic never goes through here; it is
// forwarded raw by the proxy.

// sendCommand writes a one-packet command.
func (c *Conn) sendCommand(cmd byte, args string) error {
	pkt := wire.AppendCommand(make([]byte, wire.HeaderSize, wire.HeaderSize+1+len(args)), cmd, args)
	if err := c.Write(wire.FrameCommand(pkt)); err != nil {
		return err
	}
	return nil
}

// failed marks the connection broken unless err is the server's own error
// answer, after which the connection is still at a packet boundary.
func (c *Conn) failed(err error) error {
	var me *mysql.MyError
	if err != nil && !errors.As(err, &me) {
		c.broken.Store(true)
	}
	return err
}

// Query runs a statement and returns its (last) result set. It materialises
// the whole result (up to wire.MaxTextRows rows), so it is for the proxy's
// own small queries.
func (c *Conn) Query(sql string) (*wire.TextResult, error) {
	return c.query(sql, wire.ReadTextResult)
}

// Exec runs a statement whose result the proxy does not need; whatever the
// server answers is read and dropped.
func (c *Conn) Exec(sql string) error {
	_, err := c.query(sql, wire.SkipResult)
	return err
}

func (c *Conn) query(sql string, read func(*bufio.Reader, bool, int) (*wire.TextResult, error)) (*wire.TextResult, error) {
	if err := c.sendCommand(mysql.COM_QUERY, sql); err != nil {
		return nil, err
	}
	br := c.Reader()
	defer c.ReleaseReader()
	res, err := read(br, c.caps&mysql.CLIENT_DEPRECATE_EOF != 0, maxServerPacket)
	if err != nil {
		return nil, c.failed(err)
	}
	c.status = res.Status
	return res, nil
}

// Command runs a command whose response the proxy only needs to know
// succeeded: a statement (COM_QUERY), or a command answered with one OK,
// EOF or ERR packet (COM_INIT_DB, COM_SET_OPTION, COM_RESET_CONNECTION).
func (c *Conn) Command(cmd byte, args string) error {
	if cmd == mysql.COM_QUERY {
		return c.Exec(args)
	}
	if err := c.sendCommand(cmd, args); err != nil {
		return err
	}
	br := c.Reader()
	defer c.ReleaseReader()
	p, _, err := wire.ReadPacket(br, nil, maxServerPacket, 1)
	var w wire.Walker
	w.Reset(wire.ShapeOne, false)
	var kind wire.Kind
	if err == nil {
		kind, err = w.Next(p, len(p))
	}
	if err == nil && kind == wire.KindOther {
		// Not an OK, EOF or ERR: whatever it starts is still unread.
		err = wire.ErrMalformed
	}
	if err != nil {
		return c.failed(err)
	}
	if kind == wire.KindErr {
		return wire.ParseErr(p)
	}
	if st, ok := w.Status(); ok {
		c.status = st
	}
	if cmd == mysql.COM_RESET_CONNECTION {
		c.ForgetPrepared()
		c.state = SessionState{}
		if c.trackGTID {
			// The reset put session_track_system_variables back.
			return c.trackLastGTID()
		}
	}
	return nil
}

// trackLastGTID asks the server to report each transaction's GTID in its OK
// packets (MariaDB's last_gtid session tracker), which read-your-writes
// uses. A server without the tracker is left as it is.
func (c *Conn) trackLastGTID() error {
	err := c.Exec("SET SESSION session_track_system_variables = CONCAT_WS(',', @@session_track_system_variables, 'last_gtid')")
	var me *mysql.MyError
	if errors.As(err, &me) {
		return nil // not MariaDB, or too old: no GTIDs, reads after writes use the primary
	}
	if err == nil {
		c.trackGTID = true
	}
	return err
}

// maxPreparedPerConn bounds the statements the proxy keeps prepared on one
// server connection: the server's max_prepared_stmt_count is shared by all
// its connections.
const maxPreparedPerConn = 128

// Prepared returns the server's id for sql on this connection, preparing it
// first if needed. The response's definitions are read and dropped: the
// client got its own when it prepared the statement.
func (c *Conn) Prepared(sql string) (uint32, error) {
	if id, ok := c.prepared[sql]; ok {
		return id, nil
	}
	if len(c.prepared) >= maxPreparedPerConn {
		// Close the oldest; COM_STMT_CLOSE has no response.
		old := c.prepOrder[0]
		c.prepOrder = c.prepOrder[1:]
		id := c.prepared[old]
		delete(c.prepared, old)
		if err := c.Write(wire.FrameCommand(wire.AppendStmtClose(make([]byte, wire.HeaderSize, 9), id))); err != nil {
			return 0, err
		}
	}
	if err := c.sendCommand(mysql.COM_STMT_PREPARE, sql); err != nil {
		return 0, err
	}
	br := c.Reader()
	defer c.ReleaseReader()
	var w wire.Walker
	w.Reset(wire.ShapePrepare, c.caps&mysql.CLIENT_DEPRECATE_EOF != 0)
	var p []byte
	for seq := uint8(1); !w.Done(); {
		var err error
		if p, seq, err = wire.ReadPacket(br, p[:0], maxServerPacket, seq); err != nil {
			return 0, c.failed(err)
		}
		kind, err := w.Next(p, len(p))
		switch {
		case err != nil:
			return 0, c.failed(err)
		case kind == wire.KindErr:
			return 0, wire.ParseErr(p)
		case kind == wire.KindOther:
			return 0, c.failed(wire.ErrMalformed)
		}
	}
	id := w.PrepareOK().StatementID
	c.RememberPrepared(sql, id)
	return id, nil
}

// RememberPrepared records that sql is prepared on this connection as id:
// a statement the client prepared through it, so later executions here
// need no new prepare.
func (c *Conn) RememberPrepared(sql string, id uint32) {
	if c.prepared == nil {
		c.prepared = make(map[string]uint32)
	}
	if _, ok := c.prepared[sql]; !ok {
		c.prepOrder = append(c.prepOrder, sql)
	}
	c.prepared[sql] = id
}

// ForgetPrepared drops the record of prepared statements, after the server
// dropped them (COM_RESET_CONNECTION).
func (c *Conn) ForgetPrepared() { c.prepared, c.prepOrder = nil, nil }

// ClientReset records that a client's COM_RESET_CONNECTION, forwarded raw,
// ran on the connection: its prepared statements and session state are
// gone, and so is the GTID tracking the proxy had asked for, which it asks
// for again. An error means the connection does not report GTIDs now.
func (c *Conn) ClientReset() error {
	c.ForgetPrepared()
	c.state = SessionState{}
	if c.trackGTID {
		return c.trackLastGTID()
	}
	return nil
}
