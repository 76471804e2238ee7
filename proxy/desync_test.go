package proxy

import (
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/internal/fakemysql"
	"switchyard/internal/mysqltest"
	"switchyard/wire"
)

// A server whose response the proxy cannot follow (see forward.go) ends the
// client's session, loudly, and its connection is never used again: not a
// client left waiting, not a pooled connection holding another response's
// bytes.

// desyncHarness answers "SELECT raw ..." statements with rawAnswers' packets
// and the process list query of the stall check with processList, after
// processListDelay.
func desyncHarness(t *testing.T, stallCheck time.Duration, processList []string, processListDelay time.Duration, rawAnswers map[string][][]byte) *harness {
	return newHarness(t, harnessConfig{stallCheck: stallCheck,
		handle: func(server string, c *fakemysql.Conn, q string) *fakemysql.Result {
			switch {
			case rawAnswers[q] != nil:
				return &fakemysql.Result{Raw: rawAnswers[q]}
			case strings.Contains(q, "information_schema.PROCESSLIST") && processList != nil:
				r := rowsResult([]string{"COMMAND", "TIME"}, processList)
				r.Delay = processListDelay
				return r
			case q == "SELECT slow":
				// The definitions at once, the row a second later.
				r := rowsResult([]string{"a"}, []string{"done"})
				r.Delay, r.PauseAfter = time.Second, 3
				return r
			}
			return nil
		}})
}

func colDefPacket(name string) []byte {
	return wire.AppendColumnDef(nil, &wire.Column{Name: name, Charset: 33, Type: mysql.MYSQL_TYPE_VAR_STRING})
}

// checkDesync runs q, which the fake answers in a way the proxy cannot
// follow: the client's connection must close, the desync be logged at
// error level, and the next session get right answers on any connection.
func checkDesync(t *testing.T, h *harness, q string) {
	t.Helper()
	c := h.login(t, mysqltest.Login{User: "app", Pass: "secret", Schema: "shop"})
	c.Command(wire.AppendCommand(nil, mysql.COM_QUERY, q))
	c.ExpectClosed()
	mysqltest.Eventually(t, "the desync logged at error level", func() bool {
		return h.logs.count("ERROR server response out of step") == 1
	})
	// Every server connection is at a packet boundary: a few sessions'
	// statements, on pooled connections, get their own answers.
	for i := range 3 {
		c := h.login(t, mysqltest.Login{User: "app", Pass: "secret", Schema: "shop"})
		if got := c.Value("SELECT 'fine'"); got != "fine" {
			t.Fatalf("session %d after the desync: %q", i, got)
		}
	}
}

func TestDesyncTrailingPackets(t *testing.T) {
	ok := wire.AppendOK(nil, wire.OK{Status: mysql.SERVER_STATUS_AUTOCOMMIT})
	h := desyncHarness(t, 0, nil, 0, map[string][][]byte{"SELECT raw twice": {ok, ok}})
	checkDesync(t, h, "SELECT raw twice")
}

func TestDesyncGrammar(t *testing.T) {
	h := desyncHarness(t, 0, nil, 0, map[string][][]byte{
		// A row where a result set starts.
		"SELECT raw row": {{1, 'x'}, wire.AppendEOF(nil, wire.EOF{Status: mysql.SERVER_STATUS_AUTOCOMMIT})},
	})
	checkDesync(t, h, "SELECT raw row")
}

// TestDesyncStalledResponse: the server stops after the column
// definitions and waits for the next command; the proxy, waiting for the
// rest, asks it and learns the connection is idle.
func TestDesyncStalledResponse(t *testing.T) {
	h := desyncHarness(t, 50*time.Millisecond, []string{"Sleep", "3"}, 0, map[string][][]byte{
		"SELECT raw cut": {{1}, colDefPacket("a")},
	})
	start := time.Now()
	checkDesync(t, h, "SELECT raw cut")
	t.Logf("desync found in %v", time.Since(start))
	if h.logs.count("ERROR server response out of step") != 1 || h.logs.count("idle for 3s") == 0 {
		t.Errorf("the log does not say why:\n%s", h.logs.dump())
	}
}

// TestNoDesyncForSlowStatements: a statement that computes its rows slowly
// sends nothing for a while in the middle of its response; the proxy
// checks, learns the server works on it, and waits.
func TestNoDesyncForSlowStatements(t *testing.T) {
	for _, tc := range []struct {
		name        string
		processList []string // nil: the check fails (the fake does not know the query)
		delay       time.Duration
	}{
		{"server busy", []string{"Query", "0"}, 0},
		{"check fails", nil, 0},
		// The check answers late, after the rest of the response came:
		// the connection idle then is no desync, the bytes are there.
		{"rest arrives during the check", []string{"Sleep", "3"}, 1500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := desyncHarness(t, 50*time.Millisecond, tc.processList, tc.delay, nil)
			c := h.login(t, mysqltest.Login{User: "app", Pass: "secret", Schema: "shop"})
			if got := c.Value("SELECT slow"); got != "done" {
				t.Fatalf("slow statement: %q", got)
			}
			if n := len(h.ran("information_schema.PROCESSLIST")); n == 0 {
				t.Errorf("the silent server was never checked")
			}
			if errorLines(h) != 0 {
				t.Errorf("errors logged:\n%s", h.logs.dump())
			}
		})
	}
}

// errorLines counts the records logged at error level.
func errorLines(h *harness) int {
	h.logs.mu.Lock()
	defer h.logs.mu.Unlock()
	n := 0
	for _, r := range h.logs.recs {
		if strings.HasPrefix(r, "ERROR ") {
			n++
		}
	}
	return n
}
