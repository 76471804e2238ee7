package proxy

import "switchyard/wire"

// Answers a Handler other than the data path's builds itself (the admin
// interface's prepared statements), beside WriteResult.

// WriteBinaryResult answers a COM_STMT_EXECUTE with a whole binary result
// set, as the admin interface does.
func (c *ClientConn) WriteBinaryResult(cols []wire.Column, rows [][]wire.Value) error {
	out, next := wire.AppendBinaryResult(nil, cols, rows, c.status, c.seq, c.caps)
	c.seq = next
	_, err := c.writer().Write(out)
	return err
}

// WritePrepareResponse answers a COM_STMT_PREPARE with the statement's id
// and its parameters (wire.AppendPrepareResponse).
func (c *ClientConn) WritePrepareResponse(ok wire.PrepareOK) error {
	out, next := wire.AppendPrepareResponse(nil, ok, c.seq, c.caps)
	c.seq = next
	_, err := c.writer().Write(out)
	return err
}
