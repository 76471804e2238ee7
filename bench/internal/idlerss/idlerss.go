// Package idlerss measures what idle client connections cost a proxy in
// resident memory: it reads the proxy's RSS, opens N logged-in client
// connections that then sit idle, and reads the RSS again.
package idlerss

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Options says where to connect and which process to watch.
type Options struct {
	Addr, User, Password, DB string
	PID                      int           // the proxy's process id
	N                        int           // idle connections to open
	Settle                   time.Duration // wait before each reading
}

// Result holds the two VmRSS readings, in kB as /proc reports them.
type Result struct {
	N                 int
	BeforeKB, AfterKB int
}

// BytesPerClient is the RSS growth divided by the number of idle clients.
func (r Result) BytesPerClient() int { return (r.AfterKB - r.BeforeKB) * 1024 / r.N }

// RSSKB returns VmRSS of pid in kB.
func RSSKB(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			return strconv.Atoi(strings.Fields(line)[1])
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// Measure opens opt.N idle connections, each after one ping, and returns
// the RSS before and after. All connections are closed again on return.
func Measure(ctx context.Context, opt Options) (Result, error) {
	res := Result{N: opt.N}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = opt.User, opt.Password, "tcp", opt.Addr, opt.DB
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return res, err
	}
	pool := sql.OpenDB(connector)
	defer pool.Close()
	pool.SetMaxIdleConns(opt.N + 1)
	pool.SetMaxOpenConns(opt.N + 1)

	// Warm up: one connection and a query, so the proxy's one-time costs
	// (first server connection, buffer pools) are not counted per client.
	warm, err := pool.Conn(ctx)
	if err == nil {
		defer warm.Close()
		err = warm.PingContext(ctx)
	}
	if err != nil {
		return res, fmt.Errorf("warm-up: %w", err)
	}
	if err := sleep(ctx, opt.Settle); err != nil {
		return res, err
	}
	if res.BeforeKB, err = RSSKB(opt.PID); err != nil {
		return res, err
	}
	conns := make([]*sql.Conn, 0, opt.N)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < opt.N; i++ {
		c, err := pool.Conn(ctx)
		if err == nil {
			conns = append(conns, c)
			err = c.PingContext(ctx)
		}
		if err != nil {
			return res, fmt.Errorf("connection %d: %w", i, err)
		}
	}
	if err := sleep(ctx, opt.Settle); err != nil {
		return res, err
	}
	res.AfterKB, err = RSSKB(opt.PID)
	return res, err
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
