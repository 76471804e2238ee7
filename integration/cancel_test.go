package integration

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"switchyard/backend"
	"switchyard/integration/harness"
	"switchyard/proxy"
)

// TestShutdownCutsRunningStatement: a statement that would run for an hour
// does not hold shutdown past limits.shutdown_timeout. The proxy aborts the
// server connection running it and exits.
func TestShutdownCutsRunningStatement(t *testing.T) {
	const timeout = 2 * time.Second
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: "limits:\n  shutdown_timeout: 2s\n"})
	db := appDB(t, p, "")
	db.SetMaxOpenConns(2)
	queryErr := make(chan error, 2)
	for _, q := range []string{"SELECT SLEEP(3600)", "/* switchyard:route=primary */ SELECT SLEEP(3600)"} {
		go func() {
			var v int
			queryErr <- db.QueryRow(q).Scan(&v)
		}()
	}
	eventually(t, 10*time.Second, "both sleeps to run on the servers", func() bool {
		return sleepingServerSessions(t) >= 2
	})
	start := time.Now()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(timeout + 10*time.Second):
		t.Fatalf("proxy still running %v after SIGTERM with shutdown_timeout %v", time.Since(start), timeout)
	}
	took := time.Since(start)
	// No bound on took beyond the generous one above: on a loaded machine
	// the exit after the timeout (closing connections, the monitor) may take
	// seconds; what matters is that an hour's statement does not hold it.
	t.Logf("shutdown took %v with shutdown_timeout %v and two SLEEP(3600) running", took.Round(time.Millisecond), timeout)
	for range 2 {
		select {
		case err := <-queryErr:
			if err == nil {
				t.Error("a sleeping query succeeded although shutdown cut it")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a client still waits for its query after the proxy exited")
		}
	}
	if !strings.Contains(p.Logs(), "shutdown timeout reached") {
		t.Errorf("the log does not say that the timeout cut the sessions:\n%s", p.LogTail(20))
	}
}

// sleepingServerSessions counts the app user's server sessions running
// SLEEP on all servers.
func sleepingServerSessions(t *testing.T) int {
	t.Helper()
	n := 0
	for _, s := range cluster.Servers() {
		db, err := s.DB(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var k int
		err = db.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ? AND INFO LIKE '%SLEEP(3600)%'", cluster.AppUser).Scan(&k)
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		n += k
	}
	return n
}

// TestOfflineHardCutsHeldConnection runs the proxy in-process against the
// real cluster (OFFLINE_HARD has no outside switch until the admin
// interface exists): a transaction holds a connection to the primary, the
// operator takes the primary OFFLINE_HARD, and the server session is gone
// at once, not at the connection's next use; the client's next statement
// in that transaction fails instead of running elsewhere.
func TestOfflineHardCutsHeldConnection(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var specs []backend.ServerSpec
	for _, s := range cluster.Servers() {
		specs = append(specs, backend.ServerSpec{Name: s.Name, Address: s.Addr(), Weight: 100})
	}
	cl := backend.NewCluster(specs, backend.Options{Logger: log})
	pool := backend.NewPool(backend.PoolOptions{}, cl)
	srv, err := proxy.NewServer(proxy.Options{
		ListenerOptions: proxy.ListenerOptions{
			Users:  []proxy.User{{Name: cluster.AppUser, Password: cluster.AppPassword, DefaultSchema: cluster.Database}},
			Logger: log,
		},
		Servers: cl,
		Pool:    pool,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		pool.Close()
	}()
	db, err := sql.Open("mysql", cluster.AppUser+":"+cluster.AppPassword+"@tcp("+ln.Addr().String()+")/"+cluster.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mustExec(t, db, "CREATE TABLE IF NOT EXISTS offline_hard (id INT PRIMARY KEY)")
	mustExec(t, db, "DELETE FROM offline_hard")
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec("INSERT INTO offline_hard VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if n := openTransactions(t); n != 1 {
		t.Fatalf("%d open transactions of the app user on the primary, want the test's one", n)
	}
	start := time.Now()
	if err := cl.SetServerStatus(specs[0].Name, backend.StatusOfflineHard); err != nil {
		t.Fatal(err)
	}
	defer cl.SetServerStatus(specs[0].Name, backend.StatusOnline)
	eventually(t, 5*time.Second, "the primary's server session of the transaction to go", func() bool {
		return openTransactions(t) == 0
	})
	t.Logf("server session of the transaction gone %v after OFFLINE_HARD", time.Since(start).Round(time.Millisecond))
	if _, err := tx.Exec("INSERT INTO offline_hard VALUES (2)"); err == nil {
		t.Fatal("a statement of the cut transaction succeeded")
	}
	direct, err := cluster.Primary.DB(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	var n int
	if err := direct.QueryRow("SELECT COUNT(*) FROM " + cluster.Database + ".offline_hard").Scan(&n); err != nil || n != 0 {
		t.Fatalf("rows of the cut transaction on the primary: %d (%v), want 0", n, err)
	}
}

// openTransactions counts the app user's open InnoDB transactions on the
// primary.
func openTransactions(t *testing.T) int {
	t.Helper()
	db, err := cluster.Primary.DB(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	err = db.QueryRow(`SELECT COUNT(*) FROM information_schema.INNODB_TRX t
		JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id WHERE p.USER = ?`, cluster.AppUser).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
