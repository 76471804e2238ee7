package proxy

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"switchyard/conf"
	"switchyard/internal/mysqltest"
	"switchyard/router"
)

// TestStatsFollowTheSessions: the admin's views of the data path count
// statements by kind and by digest, with where they ran and their rows,
// and show each session with why it is pinned.
func TestStatsFollowTheSessions(t *testing.T) {
	h := newHarness(t, harnessConfig{routing: Routing{ReadYourWrites: "off"}})
	c := h.session(t, "app", "secret", "shop")
	for range 3 {
		if where := mustValue(t, c, "SELECT name FROM whoami"); !isReplica(where) {
			t.Fatalf("read ran on %s", where)
		}
	}
	mustExec(t, c, "SET @x = 1")
	if err := c.PingContext(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, d := range h.srv.Digests() {
		if d.Text == "select `name` from `whoami`" {
			found = true
			if d.Count != 3 || d.Rows != 3 || d.Route != "replica" || d.User != "app" || d.Schema != "shop" ||
				d.Min <= 0 || d.Max < d.Min || d.Sum < d.Max || d.LastSeen.Before(d.FirstSeen) {
				t.Errorf("digest row %+v", d)
			}
		}
	}
	if !found {
		t.Errorf("no digest for the read: %+v", h.srv.Digests())
	}
	// A ping's answer leaves before the session counts it.
	var counts map[string]int64
	mysqltest.Eventually(t, "the ping to be counted", func() bool {
		counts = map[string]int64{}
		for _, cc := range h.srv.Commands() {
			counts[cc.Command] = cc.Total
		}
		return counts["COM_PING"] == 1
	})
	if counts["READ"] != 3 || counts["SET"] != 1 || counts["COM_QUERY"] != 4 {
		t.Errorf("command counts %v", counts)
	}
	var pl []Process
	mysqltest.Eventually(t, "the session to show idle and pinned", func() bool {
		pl = h.srv.Processlist()
		return len(pl) == 1 && pl[0].State == "idle" && pl[0].Pinned != ""
	})
	if p := pl[0]; p.User != "app" || p.Schema != "shop" || p.Pinned != router.PinUserVar.String() || p.Server == "" || p.Info != "" {
		t.Errorf("processlist %+v", p)
	}
}

// TestDigestTableIsBounded: digests past the bound are counted in one
// overflow row, so a client that sends endless distinct statements cannot
// grow the table.
func TestDigestTableIsBounded(t *testing.T) {
	srv := &Server{}
	st := &srv.stats
	st.init()
	now := time.Now()
	var memo digestMemo
	for i := range maxDigests + 50 {
		n := &stmtNote{query: true, digest: fmt.Sprint(i), digestText: strings.Repeat("x", 2*maxDigestText), route: 1}
		st.digest(&memo, n, "app", "shop", time.Millisecond, now)
	}
	// A session repeating a statement counts it under its row each time,
	// whether it remembers the row (memo) or looks it up.
	first := &stmtNote{query: true, digest: "0", route: 1}
	st.digest(&memo, first, "app", "shop", time.Millisecond, now)
	st.digest(&memo, first, "app", "shop", time.Millisecond, now)
	st.digest(&memo, first, "app", "other", time.Millisecond, now) // another schema: the overflow row
	rows := srv.Digests()
	if len(rows) != maxDigests+1 {
		t.Fatalf("%d rows, want %d and the overflow row", len(rows), maxDigests)
	}
	for _, r := range rows {
		if len(r.Text) > maxDigestText+3 {
			t.Fatalf("digest text of %d bytes kept", len(r.Text))
		}
		if r.Digest == OverflowDigest && r.Count != 51 {
			t.Errorf("overflow row counts %d, want 51", r.Count)
		}
		if r.Digest == "0" && r.Count != 3 {
			t.Errorf("digest 0 counted %d times, want 3", r.Count)
		}
	}
}

// TestReconfigureAppliesToNewStatements: a reload's users, rules, routing
// and limits apply to the next statements and logins; sessions stay.
func TestReconfigureAppliesToNewStatements(t *testing.T) {
	h := newHarness(t, harnessConfig{routing: Routing{ReadYourWrites: "off"}})
	c := h.session(t, "app", "secret", "shop")
	if where := mustValue(t, c, "SELECT f1() FROM whoami"); where != primaryName {
		t.Fatalf("a read calling an unlisted stored function ran on %s", where)
	}
	rules, err := router.NewRules([]conf.QueryRule{{Name: "no-drop", Match: "(?i)^drop", Error: "no DROP here"}})
	if err != nil {
		t.Fatal(err)
	}
	var users []User
	for _, u := range testUsers {
		if u.Name != "bob" {
			users = append(users, u)
		}
	}
	err = h.srv.Reconfigure(Reconfig{Users: users, Rules: rules,
		Routing: Routing{ReadYourWrites: "off", ReadOnlyFunctions: []string{"f1"}},
		Limits:  Limits{MaxPacketSize: 2048}, MaxParseSize: 64 << 10, MaxPreparedBytesPerSession: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if got := h.srv.parseLimit.MaxSize(); got != 64<<10 {
		t.Errorf("max parse size after the reload: %d", got)
	}
	_, err = c.PrepareContext(testCtx(t), "SELECT ? /* "+strings.Repeat("x", 1500)+" */")
	wantErr(t, err, 1105, "limits.max_prepared_bytes_per_session (1024 bytes)")
	// The classification of the statement above is not reused: f1 is
	// known not to write now.
	if where := mustValue(t, c, "SELECT f1() FROM whoami"); !isReplica(where) {
		t.Errorf("after the reload the read ran on %s", where)
	}
	_, err = c.ExecContext(testCtx(t), "DROP TABLE t")
	wantErr(t, err, 1105, "no DROP here")
	_, err = c.ExecContext(testCtx(t), "SELECT '"+strings.Repeat("x", 4096)+"'")
	wantErr(t, err, 1153, "")
	db := h.db(t, "bob", "bobpw", "shop")
	wantErr(t, db.PingContext(testCtx(t)), 1045, "")
	if err := h.srv.Reconfigure(Reconfig{Routing: Routing{Balance: "sideways"}}); err == nil {
		t.Fatal("an invalid routing was applied")
	}
	if got := h.srv.routingNow().opt.ReadOnlyFunctions; len(got) != 1 {
		t.Errorf("a failed reconfiguration changed the routing: %v", got)
	}
}

// TestAcceptingFollowsReloadedClientLimit: whether the proxy takes new
// clients (for /health) is judged by limits.max_client_connections as
// reloaded, not as it was at start.
func TestAcceptingFollowsReloadedClientLimit(t *testing.T) {
	h := newHarness(t, harnessConfig{listener: ListenerOptions{MaxClientConnections: 1}})
	h.login(t, mysqltest.Login{User: "app", Pass: "secret"})
	if h.srv.Accepting() {
		t.Fatal("accepting with its one client slot taken")
	}
	h.srv.SetLimits(Limits{MaxClientConnections: 10})
	if !h.srv.Accepting() {
		t.Fatal("not accepting after the limit was raised to 10 with one client")
	}
	if m := h.srv.Metrics(); m.MaxClients != 10 {
		t.Fatalf("metrics report a limit of %d", m.MaxClients)
	}
}
