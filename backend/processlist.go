package backend

import (
	"errors"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// processlistColumns are the columns of a server's
// information_schema.PROCESSLIST, in order, for the version that listed
// them.
type processlistColumns struct {
	version string
	names   []string
}

// ProcesslistColumns returns the columns of information_schema.PROCESSLIST
// on the connection's server, in the table's order, which the proxy needs
// to put its own view of the table in its place (router.RewriteProcesslist)
// with SELECT * unchanged. They differ between versions, so they are read
// from the server, on this connection, once per server version announced;
// a server error comes back as *mysql.MyError, any other error means the
// connection broke.
func (c *Conn) ProcesslistColumns() ([]string, error) {
	s := c.srv
	if known := s.processlistColumns.Load(); known != nil && known.version == c.version {
		return known.names, nil
	}
	res, err := c.Query("SELECT COLUMN_NAME FROM information_schema.COLUMNS" +
		" WHERE TABLE_SCHEMA = 'information_schema' AND TABLE_NAME = 'PROCESSLIST' ORDER BY ORDINAL_POSITION")
	if err != nil {
		var me *mysql.MyError
		if errors.As(err, &me) {
			return nil, me
		}
		return nil, err
	}
	names := make([]string, 0, len(res.Rows))
	for _, row := range res.Rows {
		if len(row) == 1 && row[0].Valid {
			names = append(names, row[0].String)
		}
	}
	s.processlistColumns.Store(&processlistColumns{version: c.version, names: names})
	return names, nil
}
