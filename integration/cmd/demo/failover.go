package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"

	"switchyard/integration/harness"
)

// failoverYAML is the proxy config of the failover demo: checks every
// 500 ms, a primary taken for dead after 3 failed checks.
const failoverYAML = "monitor:\n  interval: 500ms\n  timeout: 500ms\nfailover:\n  failure_threshold: 3\n"

// demoFailover shows a failover and a switchover on the running demo
// cluster (semi-synchronous): it writes through the proxy, kills -9 the
// primary, reports when writes resumed and that every acknowledged write
// is on the new primary, restarts the old primary and shows it rejoin as a
// replica, then switches the primary back over with SIGUSR2 under the same
// writes.
func demoFailover(ctx context.Context, c *harness.Cluster, p *harness.Proxy, logf func(string, ...any)) error {
	// The driver logs each pooled connection the kill broke; the failed
	// writes are counted instead.
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
	db, err := sql.Open("mysql", p.DSN(c.AppUser, c.AppPassword, c.Database, "interpolateParams=true"))
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(4)
	if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS demo_writes (id BIGINT PRIMARY KEY, at DATETIME(6))"); err != nil {
		return err
	}
	w := &demoWriter{db: db}
	stop := w.start(4)
	defer stop()
	wait(ctx, 2*time.Second)

	old := c.Primary
	logf("\n[failover] %d writes acknowledged so far; kill -9 of the primary %s", w.acked.Load(), old.Name)
	old.Kill()
	killed := time.Now()
	for w.lastAck().Before(killed) {
		if !wait(ctx, 10*time.Millisecond) || time.Since(killed) > time.Minute {
			return fmt.Errorf("writes did not resume within a minute of the kill")
		}
	}
	logf("[failover] writes resumed %v after the kill (%d failed: the ones in flight at the kill)",
		w.lastAck().Sub(killed).Round(10*time.Millisecond), w.failed.Load())
	wait(ctx, time.Second)
	stop()
	primary, err := newPrimary(ctx, c, old)
	if err != nil {
		return err
	}
	missing, err := missingOn(ctx, primary, c.Database, w.ids())
	if err != nil {
		return err
	}
	logf("[failover] %s is the primary; %d acknowledged writes, %d missing on it", primary.Name, len(w.ids()), missing)

	old.StartArgs = append(old.StartArgs, "--init-rpl-role=SLAVE")
	if err := old.Start(ctx); err != nil {
		return err
	}
	restarted := time.Now()
	for {
		st, err := old.SlaveStatus(ctx)
		if err == nil && st != nil && st["Master_Port"] == strconv.Itoa(primary.Port) && st["Slave_SQL_Running"] == "Yes" && st["Slave_IO_Running"] == "Yes" {
			break
		}
		if !wait(ctx, 50*time.Millisecond) || time.Since(restarted) > time.Minute {
			return fmt.Errorf("%s did not rejoin as a replica of %s", old.Name, primary.Name)
		}
	}
	logf("[failover] %s restarted writable; switchyard set it read-only and it replicates from %s (%v after the restart)",
		old.Name, primary.Name, time.Since(restarted).Round(10*time.Millisecond))

	stop = w.start(4)
	defer stop()
	wait(ctx, time.Second)
	failedBefore := w.failed.Load()
	logf("[switchover] SIGUSR2: switching %s over to the best replica under writes", primary.Name)
	if err := p.Signal(syscall.SIGUSR2); err != nil {
		return err
	}
	asked := time.Now()
	for {
		np, err := newPrimary(ctx, c, primary)
		if err == nil {
			took := time.Since(asked)
			wait(ctx, time.Second)
			stop()
			logf("[switchover] %s is the primary (%v after it was asked for); %d writes failed during it",
				np.Name, took.Round(10*time.Millisecond), w.failed.Load()-failedBefore)
			c.Primary = np
			return nil
		}
		if !wait(ctx, 50*time.Millisecond) || time.Since(asked) > time.Minute {
			return fmt.Errorf("the switchover did not happen within a minute")
		}
	}
}

// demoWriter inserts rows through the proxy and remembers the acknowledged
// ones.
type demoWriter struct {
	db     *sql.DB
	next   atomic.Int64
	acked  atomic.Int64
	failed atomic.Int64
	last   atomic.Int64 // UnixNano of the last acknowledgement
	mu     sync.Mutex
	done   []int64
}

func (w *demoWriter) start(n int) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-quit:
					return
				default:
				}
				id := w.next.Add(1)
				if _, err := w.db.Exec("INSERT INTO demo_writes VALUES (?, NOW(6))", id); err != nil {
					w.failed.Add(1)
					time.Sleep(20 * time.Millisecond)
					continue
				}
				w.acked.Add(1)
				w.last.Store(time.Now().UnixNano())
				w.mu.Lock()
				w.done = append(w.done, id)
				w.mu.Unlock()
			}
		}()
	}
	var once sync.Once
	return func() { once.Do(func() { close(quit); wg.Wait() }) }
}

func (w *demoWriter) lastAck() time.Time { return time.Unix(0, w.last.Load()) }

func (w *demoWriter) ids() []int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int64(nil), w.done...)
}

// newPrimary returns the writable server other than old.
func newPrimary(ctx context.Context, c *harness.Cluster, old *harness.Server) (*harness.Server, error) {
	for _, s := range c.Servers() {
		if s == old || !s.Running() {
			continue
		}
		db, err := s.DB(ctx)
		if err != nil {
			continue
		}
		var ro int
		err = db.QueryRowContext(ctx, "SELECT @@read_only").Scan(&ro)
		db.Close()
		if err == nil && ro == 0 {
			return s, nil
		}
	}
	return nil, fmt.Errorf("no server but %s is writable", old.Name)
}

// missingOn counts the ids that s lacks.
func missingOn(ctx context.Context, s *harness.Server, schema string, ids []int64) (int, error) {
	db, err := s.DB(ctx)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "SELECT id FROM "+schema+".demo_writes")
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	have := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return 0, err
		}
		have[id] = true
	}
	missing := 0
	for _, id := range ids {
		if !have[id] {
			missing++
		}
	}
	return missing, rows.Err()
}

// wait sleeps d unless ctx ends first; false if it did.
func wait(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}
