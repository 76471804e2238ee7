package proxy

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/internal/fakemysql"
)

// readOnlyFakes answers as MariaDB does for a session made read-only: a
// statement that writes (here: any SELECT from the view v_write, whose
// function inserts) fails with 1792 on such a connection and returns a row
// elsewhere.
type readOnlyFakes struct {
	mu sync.Mutex
	ro map[string]bool // server/connection id → SET SESSION TRANSACTION READ ONLY ran
}

func (f *readOnlyFakes) handle(server string, c *fakemysql.Conn, q string) *fakemysql.Result {
	key := fmt.Sprint(server, "/", c.ID())
	f.mu.Lock()
	defer f.mu.Unlock()
	switch lq := strings.ToLower(q); {
	case lq == "set session transaction read only":
		f.ro[key] = true
		return &fakemysql.Result{}
	case strings.Contains(lq, "from v_write"):
		if f.ro[key] {
			return &fakemysql.Result{Err: mysql.NewError(mysql.ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION, "Cannot execute statement in a READ ONLY transaction")}
		}
		return &fakemysql.Result{Columns: []string{"y"}, Rows: rowsResult([]string{"y"}, []string{server}).Rows, Write: true}
	}
	return nil
}

// TestReplicaConnectionsAreReadOnly: every statement that runs on a replica
// runs in a read-only session, so the server refuses a write the classifier
// could not see (a view over a function that writes). Such a refusal, when
// the client saw nothing yet, runs the statement on the primary instead.
func TestReplicaConnectionsAreReadOnly(t *testing.T) {
	ro := &readOnlyFakes{ro: map[string]bool{}}
	h := newHarness(t, harnessConfig{routing: Routing{ReadYourWrites: "off"}, handle: ro.handle})
	c := h.session(t, "app", "secret", "shop")

	// A plain read runs on a replica, after the connection was made
	// read-only.
	h.resetLogs()
	where := mustValue(t, c, "SELECT name FROM whoami")
	if !isReplica(where) {
		t.Fatalf("read ran on %s", where)
	}
	id, _ := h.connOf(where, "FROM whoami")
	log := h.connLog(where, id)
	i := slices.Index(log, "query:SET SESSION TRANSACTION READ ONLY")
	j := slices.Index(log, "query:SELECT name FROM whoami")
	if i < 0 || i > j {
		t.Fatalf("the replica connection was not made read-only before the read: %v", log)
	}
	// The primary's connections are not.
	mustExec(t, c, "INSERT INTO t VALUES (1)")
	pid, _ := h.connOf(primaryName, "INSERT INTO t")
	if slices.Contains(h.connLog(primaryName, pid), "query:SET SESSION TRANSACTION READ ONLY") {
		t.Fatalf("a primary connection was made read-only: %v", h.connLog(primaryName, pid))
	}

	// The view's write is refused by the replica and runs on the primary;
	// the client sees the primary's answer and nothing of the refusal.
	h.resetLogs()
	if got := mustValue(t, c, "SELECT y FROM v_write"); got != primaryName {
		t.Fatalf("the view's read was answered by %s, want the primary", got)
	}
	if got := h.ran("FROM v_write"); len(got) != 2 || !isReplica(got[1]) && !isReplica(got[0]) {
		t.Fatalf("the view's read ran on %v, want a replica then the primary", got)
	}
	if n := h.srv.replicaWriteRetries.Load(); n != 1 {
		t.Fatalf("replica write retries: %d, want 1", n)
	}
	// The session wrote: the session goes on normally.
	if got := mustValue(t, c, "SELECT 7"); got != "7" {
		t.Fatalf("after the retry: %s", got)
	}

	// A replica hint on a statement that calls a stored function is not
	// followed, and counted.
	h.resetLogs()
	mustValue(t, c, "/* switchyard:route=replica */ SELECT f_unknown(1) FROM whoami")
	h.ranOn("f_unknown", primaryName)
	if n := h.srv.hintsIgnored.Load(); n != 1 {
		t.Fatalf("ignored hints: %d, want 1", n)
	}
}
