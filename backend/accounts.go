package backend

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
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
	// SecureAuth is the server's @@secure_auth at the read, set on
	// mysql_old_password accounts only: ON, the server refuses their logins
	// (error 1275).
	SecureAuth bool
	// ConnectionAdmin: the account has SUPER or CONNECTION ADMIN, which
	// exempt a local account from MariaDB's max_password_errors.
	// CONNECTION ADMIN is known only when the monitor account may read
	// mysql.global_priv.
	ConnectionAdmin bool
}

// Accounts is one read of the servers' accounts.
type Accounts struct {
	List []Account
	// MaxPasswordErrors is the servers' @@global.max_password_errors, the
	// wrong passwords in a row after which MariaDB blocks an account; 0
	// when the servers have no such limit (MySQL).
	MaxPasswordErrors uint64
}

// accountsQuery reads the accounts. MariaDB's mysql.user (a view over
// mysql.global_priv since 10.4) and MySQL's table both have these columns;
// roles have an empty Host and are left out by the caller. MariaDB's
// query also reads max_password_errors, in the same round trip.
const (
	accountsQuery        = "SELECT User, Host, plugin, authentication_string, Super_priv FROM mysql.user"
	mariadbAccountsQuery = "SELECT User, Host, plugin, authentication_string, Super_priv, @@global.max_password_errors FROM mysql.user"
)

// connectionAdminQuery names the accounts with CONNECTION ADMIN (bit 32 of
// MariaDB's privilege mask since 10.5.2), which mysql.user has no column
// for. It needs SELECT on mysql.global_priv, which the monitor account
// may not have: then only SUPER is known.
const connectionAdminQuery = "SELECT User, Host FROM mysql.global_priv WHERE CAST(JSON_VALUE(Priv, '$.access') AS UNSIGNED) & 4294967296 <> 0"

// secureAuthQuery reads whether the server refuses mysql_old_password
// logins. It is asked only when some account has an old password, so
// servers without such accounts (and MySQL, which removed both the plugin
// and the variable) never see it.
const secureAuthQuery = "SELECT @@global.secure_auth"

// globalPrivQuery reads the same columns from the table MariaDB's
// mysql.user view is made of, as the view computes them, for when the
// view cannot be read: its definer, mariadb.sys@localhost, is an account
// like any other, and deleting it (mtr's grant2 deletes every account at
// 'localhost') breaks the view for everyone, though logins go on working.
const (
	globalPrivQuery = "SELECT User, Host, IFNULL(JSON_VALUE(Priv, '$.plugin'), ''), " +
		"IFNULL(JSON_VALUE(Priv, '$.authentication_string'), ''), " +
		"IF(JSON_VALUE(Priv, '$.access') & 32768, 'Y', 'N') FROM mysql.global_priv"
	mariadbGlobalPrivQuery = "SELECT User, Host, IFNULL(JSON_VALUE(Priv, '$.plugin'), ''), " +
		"IFNULL(JSON_VALUE(Priv, '$.authentication_string'), ''), " +
		"IF(JSON_VALUE(Priv, '$.access') & 32768, 'Y', 'N'), @@global.max_password_errors FROM mysql.global_priv"
)

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
func (c *Cluster) LoadAccounts(ctx context.Context, creds Credentials, timeout time.Duration) (Accounts, error) {
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
		return Accounts{}, errors.New("no server is online to read accounts from")
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
	return Accounts{}, fmt.Errorf("reading the servers' accounts: %w", errors.Join(errs...))
}

func (c *Cluster) loadAccountsFrom(ctx context.Context, s *Server, creds Credentials, timeout time.Duration) (Accounts, error) {
	cn, err := dial(ctx, s, DialOptions{readers: &c.readers, Creds: creds, timeout: timeout, tls: c.options().TLS})
	if err != nil {
		return Accounts{}, err
	}
	defer cn.Close()
	_ = cn.SetDeadline(time.Now().Add(timeout))
	// The connection's own goroutine is this one: a cancelled login wakes
	// it by closing the connection.
	stop := context.AfterFunc(ctx, cn.Abort)
	defer stop()
	mariadb := strings.Contains(cn.ServerVersion(), "MariaDB")
	q, fallback, cols := accountsQuery, globalPrivQuery, 5
	if mariadb {
		q, fallback, cols = mariadbAccountsQuery, mariadbGlobalPrivQuery, 6
	}
	res, err := cn.Query(q)
	var me *mysql.MyError
	if mariadb && errors.As(err, &me) && me.Code == mysql.ER_UNKNOWN_SYSTEM_VARIABLE {
		// MariaDB before 10.4 has no max_password_errors (nor
		// mysql.global_priv).
		mariadb, cols = false, 5
		res, err = cn.Query(accountsQuery)
	}
	if mariadb && viewBroken(err) {
		var perr error
		if res, perr = cn.Query(fallback); perr != nil {
			return Accounts{}, fmt.Errorf("%w; and reading mysql.global_priv instead: %w", err, perr)
		}
		err = nil
	}
	if err != nil {
		return Accounts{}, err
	}
	out := Accounts{List: make([]Account, 0, len(res.Rows))}
	old := false
	for _, row := range res.Rows {
		if len(row) < cols {
			return Accounts{}, errors.New("mysql.user answered fewer columns than asked for")
		}
		a := Account{User: row[0].String, Host: row[1].String, Plugin: row[2].String,
			AuthString: row[3].String, ConnectionAdmin: row[4].String == "Y"}
		old = old || a.Plugin == mysql.AUTH_MYSQL_OLD_PASSWORD
		out.List = append(out.List, a)
		if mariadb {
			// The same in every row; unparsable would be no limit.
			out.MaxPasswordErrors, _ = strconv.ParseUint(row[5].String, 10, 64)
		}
	}
	if old {
		res, err = cn.Query(secureAuthQuery)
		if err != nil {
			return Accounts{}, err
		}
		if len(res.Rows) != 1 || len(res.Rows[0]) != 1 {
			return Accounts{}, errors.New("@@global.secure_auth answered no value")
		}
		// Anything but an explicit OFF refuses, as a server that cannot say
		// is not known to accept old passwords.
		secure := !res.Rows[0][0].Valid || res.Rows[0][0].String != "0"
		for i := range out.List {
			if out.List[i].Plugin == mysql.AUTH_MYSQL_OLD_PASSWORD {
				out.List[i].SecureAuth = secure
			}
		}
	}
	if !mariadb {
		return out, nil
	}
	res, err = cn.Query(connectionAdminQuery)
	switch {
	case errors.As(err, &me):
		// Not allowed to read mysql.global_priv (or a MariaDB without
		// it): SUPER is what is known.
		return out, nil
	case err != nil:
		return Accounts{}, err
	}
	admins := make(map[[2]string]bool, len(res.Rows))
	for _, row := range res.Rows {
		if len(row) >= 2 {
			admins[[2]string{row[0].String, row[1].String}] = true
		}
	}
	for i := range out.List {
		if admins[[2]string{out.List[i].User, out.List[i].Host}] {
			out.List[i].ConnectionAdmin = true
		}
	}
	return out, nil
}
