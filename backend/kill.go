package backend

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// KillQuery interrupts the statement target runs now (KILL QUERY), from a
// short-lived connection of its own to the same server as the same user:
// MariaDB lets a user interrupt its own connections' statements, so this
// needs no privilege beyond the client's. It is safe from any goroutine;
// the caller makes sure target does not start another session's statement
// before KillQuery returns.
func (c *Cluster) KillQuery(ctx context.Context, target *Conn) error {
	err := c.asOwner(ctx, target, func(kc *Conn) error {
		return kc.Exec(fmt.Sprintf("KILL QUERY %d", target.threadID))
	})
	if err != nil {
		return fmt.Errorf("kill query on server %s: %w", target.srv.Name, err)
	}
	return nil
}

// ThreadOfQuery returns the server thread of target's server that runs
// the statement the server numbered qid (its process list's QUERY_ID), as
// target's user sees the process list: its own threads at least. 0: none
// it can see.
func (c *Cluster) ThreadOfQuery(ctx context.Context, target *Conn, qid uint64) (uint32, error) {
	var thread uint32
	err := c.asOwner(ctx, target, func(kc *Conn) error {
		res, err := kc.Query(fmt.Sprintf("SELECT ID FROM information_schema.PROCESSLIST WHERE QUERY_ID = %d", qid))
		if err != nil || len(res.Rows) != 1 || len(res.Rows[0]) != 1 {
			return err
		}
		id, err := strconv.ParseUint(res.Rows[0][0].String, 10, 32)
		thread = uint32(id)
		return err
	})
	return thread, err
}

// KillQueryID interrupts the statement target's server numbered qid (KILL
// QUERY ID), as target's user, from a short-lived connection: a query id
// names one statement of one server, whichever connection runs it, and
// the server refuses it if that statement is over.
func (c *Cluster) KillQueryID(ctx context.Context, target *Conn, qid uint64) error {
	return c.asOwner(ctx, target, func(kc *Conn) error {
		return kc.Exec(fmt.Sprintf("KILL QUERY ID %d", qid))
	})
}

// asOwner runs fn on a short-lived connection to target's server, logged
// in as target's user; a failure to connect is returned as it is.
func (c *Cluster) asOwner(ctx context.Context, target *Conn, fn func(*Conn) error) error {
	opt := DialOptions{Creds: target.creds, timeout: c.options().ConnectTimeout, tls: c.options().TLS, readers: &c.readers}
	if opt.timeout <= 0 {
		opt.timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, opt.timeout)
	defer cancel()
	kc, err := dial(ctx, target.srv, opt)
	if err != nil {
		return err
	}
	defer kc.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = kc.nc.SetDeadline(dl)
	}
	return fn(kc)
}
