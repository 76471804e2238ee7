package main

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"switchyard/integration/harness"
)

// connsResult is what a proxy costs the servers for many clients.
type connsResult struct {
	clients    int
	statements int64
	peak       int // most sessions of the app user on all servers at once
}

// serverConnsPerClients opens n client connections through addr, runs
// autocommit point selects on them from 32 workers for d (each statement on
// a connection picked at random, so every client is used), and samples the
// servers' process lists every 20 ms.
func serverConnsPerClients(ctx context.Context, c *harness.Cluster, sb sysbench, addr string, n int, d time.Duration) (connsResult, error) {
	res := connsResult{clients: n}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = sb.user, sb.password, "tcp", addr, sb.db
	cfg.InterpolateParams = true
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return res, err
	}
	pool := sql.OpenDB(connector)
	defer pool.Close()
	pool.SetMaxOpenConns(n)
	pool.SetMaxIdleConns(n)
	conns := make([]*sql.Conn, 0, n)
	defer func() {
		for _, cn := range conns {
			cn.Close()
		}
	}()
	for i := range n {
		cn, err := pool.Conn(ctx)
		if err == nil {
			conns = append(conns, cn)
			err = cn.PingContext(ctx)
		}
		if err != nil {
			return res, fmt.Errorf("client %d: %w", i, err)
		}
	}
	var dbs []*sql.DB
	for _, s := range c.Servers() {
		db, err := s.DB(ctx)
		if err != nil {
			return res, err
		}
		defer db.Close()
		dbs = append(dbs, db)
	}
	count := func() int {
		total := 0
		for _, db := range dbs {
			var k int
			if db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ?", sb.user).Scan(&k) == nil {
				total += k
			}
		}
		return total
	}
	res.peak = count()
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				res.peak = max(res.peak, count())
			}
		}
	}()
	var statements atomic.Int64
	var firstErr error
	var once sync.Once
	locks := make([]sync.Mutex, len(conns))
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 11))
			for time.Now().Before(deadline) && ctx.Err() == nil {
				i := rng.IntN(len(conns))
				locks[i].Lock()
				var s string
				err := conns[i].QueryRowContext(ctx, "SELECT c FROM sbtest1 WHERE id=?", 1+rng.IntN(sb.tableSize)).Scan(&s)
				locks[i].Unlock()
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				statements.Add(1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-sampled
	res.statements = statements.Load()
	return res, firstErr
}

// bigResult is what streaming one huge result costs a proxy.
type bigResult struct {
	mb                 int
	rssBeforeKB, hwmKB int // VmRSS before, VmHWM after (the peak was reset before)
	seconds, cpu       float64
}

// streamBigResult reads mb MiB of rows (1 MiB each) through addr as fast as
// the client can and reports the proxy's peak RSS during it.
func streamBigResult(ctx context.Context, sb sysbench, addr string, pid, mb int) (bigResult, error) {
	res := bigResult{mb: mb}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = sb.user, sb.password, "tcp", addr, sb.db
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return res, err
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		return res, err
	}
	time.Sleep(time.Second) // let the login's garbage be collected
	resetPeakRSS(pid)
	if res.rssBeforeKB, err = statusKB(pid, "VmRSS"); err != nil {
		return res, err
	}
	cpu0, _ := cpuSeconds(pid)
	t0 := time.Now()
	rows, err := db.QueryContext(ctx, "SELECT REPEAT('x', 1048576) FROM seq_1_to_"+strconv.Itoa(mb))
	if err != nil {
		return res, err
	}
	n := 0
	for rows.Next() {
		var b sql.RawBytes
		if err := rows.Scan(&b); err != nil {
			rows.Close()
			return res, err
		}
		n++
	}
	if err := rows.Close(); err != nil {
		return res, err
	}
	if err := rows.Err(); err != nil {
		return res, err
	}
	if n != mb {
		return res, fmt.Errorf("read %d rows, want %d", n, mb)
	}
	res.seconds = time.Since(t0).Seconds()
	cpu1, _ := cpuSeconds(pid)
	res.cpu = cpu1 - cpu0
	res.hwmKB, err = statusKB(pid, "VmHWM")
	return res, err
}
