package backend

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Account is one row of a server's account table: what the proxy needs to
// accept the account's clients itself (users_from_servers).
type Account struct {
	User string
	// Host is the account's host pattern ('%', 'localhost', '10.0.%',
	// '192.168.1.0/255.255.255.0', ...).
	Host string
	// Plugin is the authentication plugin; AuthString its data, for
	// mysql_native_password the hash ('*' and 40 hex digits) or empty.
	Plugin     string
	AuthString string
}

// accountsQuery reads the accounts. MariaDB's mysql.user (a view over
// mysql.global_priv since 10.4) and MySQL's table both have these columns;
// roles have an empty Host and are left out by the caller.
const accountsQuery = "SELECT User, Host, plugin, authentication_string FROM mysql.user"

// globalPrivQuery reads the same columns from the table MariaDB's
// mysql.user view is made of, as the view computes them, for when the
// view cannot be read: its definer, mariadb.sys@localhost, is an account
// like any other, and deleting it (mtr's grant2 deletes every account at
// 'localhost') breaks the view for everyone, though logins go on working.
const globalPrivQuery = "SELECT User, Host, IFNULL(JSON_VALUE(Priv, '$.plugin'), ''), " +
	"IFNULL(JSON_VALUE(Priv, '$.authentication_string'), '') FROM mysql.global_priv"

// viewBroken says that a query of a view failed because of the view
// itself: its definer does not exist (ER_NO_SUCH_USER, 1449) or what it
// refers to is gone or out of its definer's reach (ER_VIEW_INVALID, 1356).
func viewBroken(err error) bool {
	var me *mysql.MyError
	return errors.As(err, &me) && (me.Code == mysql.ER_NO_SUCH_USER || me.Code == mysql.ER_VIEW_INVALID)
}

// LoadAccounts reads the servers' accounts with the given credentials
// (the monitor's): from the primary, or when there is none, from the first
// server that answers. Replication copies accounts, so any server has them.
func (c *Cluster) LoadAccounts(ctx context.Context, creds Credentials, timeout time.Duration) ([]Account, error) {
	var servers []*Server
	if p, err := c.Primary(); err == nil {
		servers = append(servers, p)
	}
	for _, s := range c.LoginServers(nil) {
		if len(servers) == 0 || s != servers[0] {
			servers = append(servers, s)
		}
	}
	if len(servers) == 0 {
		return nil, errors.New("no server is online to read accounts from")
	}
	var errs []error
	for _, s := range servers {
		accts, err := c.loadAccountsFrom(ctx, s, creds, timeout)
		if err == nil {
			return accts, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", s.Name, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("reading the servers' accounts: %w", errors.Join(errs...))
}

func (c *Cluster) loadAccountsFrom(ctx context.Context, s *Server, creds Credentials, timeout time.Duration) ([]Account, error) {
	cn, err := dial(ctx, s, DialOptions{readers: &c.readers, Creds: creds, timeout: timeout, tls: c.options().TLS})
	if err != nil {
		return nil, err
	}
	defer cn.Close()
	_ = cn.SetDeadline(time.Now().Add(timeout))
	// The connection's own goroutine is this one: a cancelled login wakes
	// it by closing the connection.
	stop := context.AfterFunc(ctx, cn.Abort)
	defer stop()
	res, err := cn.Query(accountsQuery)
	if viewBroken(err) {
		var perr error
		if res, perr = cn.Query(globalPrivQuery); perr != nil {
			return nil, fmt.Errorf("%w; and reading mysql.global_priv instead: %w", err, perr)
		}
		err = nil
	}
	if err != nil {
		return nil, err
	}
	accts := make([]Account, 0, len(res.Rows))
	for _, row := range res.Rows {
		if len(row) < 4 {
			return nil, errors.New("mysql.user answered fewer columns than asked for")
		}
		accts = append(accts, Account{User: row[0].String, Host: row[1].String, Plugin: row[2].String, AuthString: row[3].String})
	}
	return accts, nil
}
