package integration

import (
	"context"
	"testing"

	"switchyard/integration/harness"
)

// serverCounts sums the servers' logins (status Connections) and the
// statements they ran (Questions). Each call is itself one login and one
// statement per server.
func serverCounts(t *testing.T) (logins, statements int64) {
	t.Helper()
	ctx := context.Background()
	for _, s := range cluster.Servers() {
		db, err := s.DB(ctx)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := db.QueryContext(ctx, "SHOW GLOBAL STATUS WHERE Variable_name IN ('Connections', 'Questions')")
		if err != nil {
			db.Close()
			t.Fatalf("%s: %v", s.Name, err)
		}
		for rows.Next() {
			var name string
			var n int64
			if err := rows.Scan(&name, &n); err != nil {
				t.Fatal(err)
			}
			if name == "Connections" {
				logins += n
			} else {
				statements += n
			}
		}
		err = rows.Err()
		rows.Close()
		db.Close()
		if err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
	}
	return logins, statements
}

// TestConnectPerRequestAsksTheServersNothingAtLogin runs PHP-FPM-style
// requests (connect, five primary-key reads, disconnect) through a warm
// proxy: a client's login is answered from the pool, so the servers see
// neither a login nor any statement but the five reads per request. This
// is why switchyard can serve such a load faster than a TCP proxy, which
// makes the server do a full login per request.
func TestConnectPerRequestAsksTheServersNothingAtLogin(t *testing.T) {
	setupRoutingTable(t)
	// No monitor checks while the servers' counters are compared.
	p := startProxy(t, harness.ProxyOptions{ExtraYAML: "monitor:\n  interval: 1h\n  timeout: 10s\n"})
	db := appDB(t, p, "interpolateParams=true")
	db.SetMaxIdleConns(-1) // every request logs in anew, as PHP-FPM's do
	ctx := context.Background()
	request := func(i int) {
		t.Helper()
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatalf("request %d: connect: %v", i, err)
		}
		defer c.Close()
		for k := range 5 {
			var v string
			if err := c.QueryRowContext(ctx, "SELECT v FROM route_t WHERE id = ?", (i+k)%3+1).Scan(&v); err != nil {
				t.Fatalf("request %d, read %d: %v", i, k, err)
			}
		}
	}
	for i := range 20 { // the pool's connections to each server
		request(i)
	}
	const requests = 100
	logins, statements := serverCounts(t)
	for i := range requests {
		request(i)
	}
	afterLogins, afterStatements := serverCounts(t)
	servers := int64(len(cluster.Servers()))
	// The second count's own logins; both counts' own statements (a
	// server counts a statement once it has run).
	gotLogins := afterLogins - logins - servers
	gotStatements := afterStatements - statements - 2*servers
	t.Logf("%d requests: %d server logins, %d statements on the servers", requests, gotLogins, gotStatements)
	// A little room for a pooled connection replaced meanwhile.
	if gotLogins > 3 {
		t.Errorf("%d requests made %d server logins; want none but the pool's own", requests, gotLogins)
	}
	if gotStatements > 5*requests+3 {
		t.Errorf("%d requests of 5 reads ran %d statements on the servers; want %d: a login must cost no server round trip", requests, gotStatements, 5*requests)
	}
}
