package backend

import (
	"context"
	"fmt"
	"time"
)

// KillQuery interrupts the statement target runs now (KILL QUERY), from a
// short-lived connection of its own to the same server as the same user:
// MariaDB lets a user interrupt its own connections' statements, so this
// needs no privilege beyond the client's. It is safe from any goroutine;
// the caller makes sure target does not start another session's statement
// before KillQuery returns.
func (c *Cluster) KillQuery(ctx context.Context, target *Conn) error {
	opt := DialOptions{Creds: target.creds, timeout: c.options().ConnectTimeout, tls: c.options().TLS, readers: &c.readers}
	if opt.timeout <= 0 {
		opt.timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, opt.timeout)
	defer cancel()
	kc, err := dial(ctx, target.srv, opt)
	if err != nil {
		return fmt.Errorf("kill query on server %s: %w", target.srv.Name, err)
	}
	defer kc.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = kc.nc.SetDeadline(dl)
	}
	if err := kc.Exec(fmt.Sprintf("KILL QUERY %d", target.threadID)); err != nil {
		return fmt.Errorf("kill query on server %s: %w", target.srv.Name, err)
	}
	return nil
}
