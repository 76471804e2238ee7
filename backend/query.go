package backend

import (
	"bufio"
	"errors"
	"fmt"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/wire"
)

// sendCommand writes a one-packet command.
func (c *Conn) sendCommand(cmd byte, payload string) error {
	pkt := make([]byte, 4, 5+len(payload))
	pkt = append(pkt, cmd)
	pkt = append(pkt, payload...)
	if err := c.writePacket(pkt, 0); err != nil {
		c.broken = true
		return err
	}
	return nil
}

// readPacket reads one whole packet of a response; a failure leaves the
// connection at an unknown point, so it is marked broken.
func (c *Conn) readPacket(br *bufio.Reader) ([]byte, error) {
	p, _, err := wire.ReadPacket(br, nil, 1<<24)
	if err == nil && len(p) == 0 {
		err = wire.ErrMalformed
	}
	if err != nil {
		c.broken = true
		return nil, err
	}
	return p, nil
}

// Query runs a statement on the connection and returns its rows as strings
// (NULL as nil). It materialises the whole result, so it is for the proxy's
// own small queries (health checks, state replay), never for client traffic,
// which is forwarded raw.
func (c *Conn) Query(sql string) ([][]*string, error) {
	if err := c.sendCommand(mysql.COM_QUERY, sql); err != nil {
		return nil, err
	}
	br := c.Reader()
	defer c.ReleaseReader()
	read := func() ([]byte, error) { return c.readPacket(br) }
	var rows [][]*string
	for {
		p, err := read()
		if err != nil {
			return nil, err
		}
		switch p[0] {
		case wire.ErrHeader:
			return nil, wire.ParseErr(p)
		case wire.OKHeader:
			ok, err := wire.ParseOK(p)
			if err != nil {
				c.broken = true
				return nil, err
			}
			c.Status = ok.Status
			if ok.Status&mysql.SERVER_MORE_RESULTS_EXISTS == 0 {
				return rows, nil
			}
			continue
		}
		cols, _, err := wire.Lenenc(p)
		if err != nil {
			c.broken = true
			return nil, err
		}
		names := make([]string, 0, cols)
		for range cols {
			p, err := read()
			if err != nil {
				return nil, err
			}
			names = append(names, columnName(p))
		}
		if c.Capabilities&mysql.CLIENT_DEPRECATE_EOF == 0 {
			if _, err := read(); err != nil {
				return nil, err
			}
		}
		c.lastColumns = names
		for {
			p, err := read()
			if err != nil {
				return nil, err
			}
			if p[0] == wire.ErrHeader {
				return nil, wire.ParseErr(p)
			}
			if wire.IsEOFPacket(p, len(p)) {
				st, err := wire.EOFStatus(p)
				if err != nil {
					c.broken = true
					return nil, err
				}
				c.Status = st
				break
			}
			row := make([]*string, 0, cols)
			for pos := 0; pos < len(p); {
				if p[pos] == 0xfb {
					row = append(row, nil)
					pos++
					continue
				}
				v, n, err := wire.LenencString(p[pos:])
				if err != nil {
					c.broken = true
					return nil, fmt.Errorf("bad row: %w", err)
				}
				s := string(v)
				row = append(row, &s)
				pos += n
			}
			rows = append(rows, row)
		}
		if c.Status&mysql.SERVER_MORE_RESULTS_EXISTS == 0 {
			return rows, nil
		}
	}
}

// columnName reads the name from a column definition packet: the fifth
// length-encoded string, after catalog, schema, table and original table.
func columnName(p []byte) string {
	pos := 0
	for i := range 5 {
		v, n, err := wire.LenencString(p[pos:])
		if err != nil {
			return ""
		}
		if i == 4 {
			return string(v)
		}
		pos += n
	}
	return ""
}

// QueryNamed is Query that also returns the column names of the (last)
// result set, for results whose columns are found by name.
func (c *Conn) QueryNamed(sql string) ([]string, [][]*string, error) {
	c.lastColumns = nil
	rows, err := c.Query(sql)
	return c.lastColumns, rows, err
}

// Exec runs a statement whose result the proxy does not need.
func (c *Conn) Exec(sql string) error {
	_, err := c.Query(sql)
	return err
}

// Command runs a command whose response the proxy only needs to know
// succeeded: a statement (COM_QUERY), or a command answered with one OK,
// EOF or ERR packet (COM_INIT_DB, COM_SET_OPTION, COM_RESET_CONNECTION).
func (c *Conn) Command(cmd byte, payload string) error {
	if cmd == mysql.COM_QUERY {
		return c.Exec(payload)
	}
	if err := c.sendCommand(cmd, payload); err != nil {
		return err
	}
	br := c.Reader()
	defer c.ReleaseReader()
	p, err := c.readPacket(br)
	if err != nil {
		return err
	}
	switch p[0] {
	case wire.ErrHeader:
		return wire.ParseErr(p)
	case wire.OKHeader:
		if ok, err := wire.ParseOK(p); err == nil {
			c.Status = ok.Status
		}
	}
	if cmd == mysql.COM_RESET_CONNECTION {
		c.ForgetPrepared()
		if c.trackGTID {
			// The reset put session_track_system_variables back.
			return c.TrackGTID()
		}
	}
	return nil
}

// TrackGTID asks the server to report each transaction's GTID in its OK
// packets (MariaDB's last_gtid session tracker), which read-your-writes
// uses. A server without the tracker is left as it is.
func (c *Conn) TrackGTID() error {
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
		if err := c.writePacket([]byte{0, 0, 0, 0, mysql.COM_STMT_CLOSE, byte(id), byte(id >> 8), byte(id >> 16), byte(id >> 24)}, 0); err != nil {
			c.broken = true
			return 0, err
		}
	}
	if err := c.sendCommand(mysql.COM_STMT_PREPARE, sql); err != nil {
		return 0, err
	}
	br := c.Reader()
	defer c.ReleaseReader()
	p, err := c.readPacket(br)
	if err != nil {
		return 0, err
	}
	if p[0] == wire.ErrHeader {
		return 0, wire.ParseErr(p)
	}
	if p[0] != wire.OKHeader || len(p) < 12 {
		c.broken = true
		return 0, wire.ErrMalformed
	}
	id := uint32(p[1]) | uint32(p[2])<<8 | uint32(p[3])<<16 | uint32(p[4])<<24
	cols := int(p[5]) | int(p[6])<<8
	params := int(p[7]) | int(p[8])<<8
	skip := 0
	for _, n := range []int{params, cols} {
		if n > 0 {
			skip += n
			if c.Capabilities&mysql.CLIENT_DEPRECATE_EOF == 0 {
				skip++
			}
		}
	}
	for range skip {
		if _, err := c.readPacket(br); err != nil {
			return 0, err
		}
	}
	c.rememberPrepared(sql, id)
	return id, nil
}

// rememberPrepared records that sql is prepared on this connection as id.
func (c *Conn) rememberPrepared(sql string, id uint32) {
	if c.prepared == nil {
		c.prepared = make(map[string]uint32)
	}
	if _, ok := c.prepared[sql]; !ok {
		c.prepOrder = append(c.prepOrder, sql)
	}
	c.prepared[sql] = id
}

// RememberPrepared records a statement the client prepared through this
// connection, so later executions here need no new prepare.
func (c *Conn) RememberPrepared(sql string, id uint32) { c.rememberPrepared(sql, id) }

// ForgetPrepared drops the record of prepared statements, after the server
// dropped them (COM_RESET_CONNECTION).
func (c *Conn) ForgetPrepared() { c.prepared, c.prepOrder = nil, nil }
