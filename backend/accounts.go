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
	// SecureAuth is the server's @@secure_auth at the read, set on
	// mysql_old_password accounts only: ON, the server refuses their logins
	// (error 1275).
	SecureAuth bool
}

// accountsQuery reads the accounts. MariaDB's mysql.user (a view over
// mysql.global_priv since 10.4) and MySQL's table both have these columns;
// roles have an empty Host and are left out by the caller.
const accountsQuery = "SELECT User, Host, plugin, authentication_string FROM mysql.user"

// secureAuthQuery reads whether the server refuses mysql_old_password
// logins. It is asked only when some account has an old password, so
// servers without such accounts (and MySQL, which removed both the plugin
// and the variable) never see it.
const secureAuthQuery = "SELECT @@global.secure_auth"

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
	if err != nil {
		return nil, err
	}
	accts := make([]Account, 0, len(res.Rows))
	old := false
	for _, row := range res.Rows {
		if len(row) < 4 {
			return nil, errors.New("mysql.user answered fewer columns than asked for")
		}
		a := Account{User: row[0].String, Host: row[1].String, Plugin: row[2].String, AuthString: row[3].String}
		old = old || a.Plugin == mysql.AUTH_MYSQL_OLD_PASSWORD
		accts = append(accts, a)
	}
	if !old {
		return accts, nil
	}
	res, err = cn.Query(secureAuthQuery)
	if err != nil {
		return nil, err
	}
	if len(res.Rows) != 1 || len(res.Rows[0]) != 1 {
		return nil, errors.New("@@global.secure_auth answered no value")
	}
	// Anything but an explicit OFF refuses, as a server that cannot say
	// is not known to accept old passwords.
	secure := !res.Rows[0][0].Valid || res.Rows[0][0].String != "0"
	for i := range accts {
		if accts[i].Plugin == mysql.AUTH_MYSQL_OLD_PASSWORD {
			accts[i].SecureAuth = secure
		}
	}
	return accts, nil
}
