package integration

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"switchyard/integration/harness"
)

// TestNoWriteReachesAReplica: hints, query rules and views cannot send a
// statement that writes to a replica. The client here is root, which has
// READ_ONLY ADMIN: a replica's read_only does not stop it, so a misrouted
// write would land on the replica and break its replication. The cluster is
// its own, so a regression cannot break the shared one's replication.
func TestNoWriteReachesAReplica(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := harness.StartCluster(ctx, harness.ClusterOptions{Replicas: 1, ExtraArgs: []string{"--log-bin-trust-function-creators=1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	primary, replica := c.Primary, c.Replicas[0]
	if err := primary.Exec(ctx,
		"CREATE TABLE shop.ws_t (a INT)",
		"CREATE FUNCTION shop.f_write(x INT) RETURNS INT MODIFIES SQL DATA BEGIN INSERT INTO shop.ws_t VALUES (x); RETURN x; END",
		"CREATE FUNCTION shop.f_read(x INT) RETURNS INT READS SQL DATA RETURN x + (SELECT COUNT(*) FROM shop.ws_t)",
		"CREATE FUNCTION shop.f_undeclared(x INT) RETURNS INT READS SQL DATA BEGIN INSERT INTO shop.ws_t VALUES (x); RETURN x; END",
		"CREATE VIEW shop.v_write AS SELECT shop.f_write(7) AS y",
		"CREATE VIEW shop.v_nested AS SELECT y FROM shop.v_write",
		"CREATE PROCEDURE shop.p_write(x INT) INSERT INTO shop.ws_t VALUES (x)",
	); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReplicasCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}

	p, err := harness.StartProxy(ctx, harness.ProxyOptions{Binary: binary, Cluster: c, LogLevel: "debug",
		Users: []harness.ProxyUser{{Name: "root", Password: c.Primary.RootPassword(), DefaultSchema: "shop"}},
		ExtraYAML: `routing:
  read_only_functions: [f_read]
query_rules:
  - name: ruled-to-replica
    match: 'ruled'
    route: replica
`})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	db, err := sql.Open("mysql", p.DSN("root", c.Primary.RootPassword(), "shop", "multiStatements=true"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxIdleConns(0) // new sessions: no read-your-writes pinning reads to the primary

	writes := []string{
		"/* switchyard:route=replica */ SELECT f_write(1)",
		"/* switchyard:route=replica */ SELECT shop.f_write(2)",
		"SELECT f_write(3) AS ruled",
		"/* switchyard:route=replica */ SELECT f_undeclared(4)",
		"SELECT * FROM v_write",
		"/* switchyard:route=replica */ SELECT * FROM v_write",
		"SELECT y AS ruled FROM v_nested",
		"/* switchyard:route=replica */ SELECT 1; SELECT f_write(5)",
		"/* switchyard:route=replica */ EXECUTE IMMEDIATE 'SELECT f_write(6)'",
		"/* switchyard:route=replica */ CALL p_write(8)",
		"/* switchyard:route=replica */ SELECT 1 /*!50100 , f_write(9) */",
		"/* switchyard:route=replica */ SELECT 1 /*M!100000 , f_write(10) */",
	}
	for _, q := range writes {
		rows, err := db.Query(q)
		if err != nil {
			t.Errorf("%s: %v", q, err)
			continue
		}
		for rows.NextResultSet() {
			for rows.Next() {
			}
		}
		if err := rows.Err(); err != nil {
			t.Errorf("%s: %v", q, err)
		}
		rows.Close()
	}
	if err := c.WaitReplicasCaughtUp(ctx); err != nil {
		t.Fatalf("replication after the statements: %v", err)
	}

	// Every write ran once, on the primary, and reached the replica by
	// replication only.
	count := func(s *harness.Server) string {
		sdb, err := s.DB(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer sdb.Close()
		var got string
		if err := sdb.QueryRowContext(ctx, "SELECT IFNULL(GROUP_CONCAT(a ORDER BY a), '') FROM shop.ws_t").Scan(&got); err != nil {
			t.Fatal(err)
		}
		var io, sqlRunning, lastErr string
		rows, err := sdb.QueryContext(ctx, "SHOW SLAVE STATUS")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]sql.NullString, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, col := range cols {
				switch col {
				case "Slave_IO_Running":
					io = vals[i].String
				case "Slave_SQL_Running":
					sqlRunning = vals[i].String
				case "Last_SQL_Error":
					lastErr = vals[i].String
				}
			}
		}
		if s != primary && (io != "Yes" || sqlRunning != "Yes" || lastErr != "") {
			t.Errorf("replication on %s broke: IO %s, SQL %s, %s", s.Name, io, sqlRunning, lastErr)
		}
		return got
	}
	want := "1,2,3,4,5,6,7,7,7,8,9,10"
	if got := count(primary); got != want {
		t.Errorf("rows on the primary: %s, want %s", got, want)
	}
	if got := count(replica); got != want {
		t.Errorf("rows on the replica: %s, want %s (the primary's)", got, want)
	}

	// A function listed in routing.read_only_functions may still go to a
	// replica when asked.
	var id int
	for range 3 {
		if err := db.QueryRow("/* switchyard:route=replica */ SELECT f_read(1) * 0 + @@server_id").Scan(&id); err != nil {
			t.Fatal(err)
		}
		if id != replica.ServerID {
			t.Errorf("a read-only function with a replica hint ran on server %d, want the replica %d", id, replica.ServerID)
		}
	}
	if !strings.Contains(p.Logs(), "a replica refused a read that writes") {
		t.Errorf("the view's write was not refused by the replica and retried on the primary:\n%s", p.LogTail(30))
	}
	if !strings.Contains(p.Logs(), "hint or rule ignored") {
		t.Errorf("the proxy did not log the ignored replica hints:\n%s", p.LogTail(30))
	}
}
