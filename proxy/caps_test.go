package proxy

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/conf"
	"switchyard/internal/mysqltest"
	"switchyard/wire"
)

// specialCaps are the capabilities the proxy treats itself instead of
// passing them to the server unchanged: EOF conversion, session-state
// stripping, compression and TLS per hop, the login packet's auth data
// encoding, the login schema.
var specialCaps = []struct {
	name string
	bit  uint32
}{
	{"deprecate_eof", mysql.CLIENT_DEPRECATE_EOF},
	{"session_track", mysql.CLIENT_SESSION_TRACK},
	{"compress", mysql.CLIENT_COMPRESS},
	{"ssl", mysql.CLIENT_SSL},
	{"lenenc_auth", mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA},
	{"connect_with_db", mysql.CLIENT_CONNECT_WITH_DB},
}

// TestCapabilityCombinations runs one script through the raw client for
// every combination of the special capabilities (as TiProxy's suite does)
// and checks each response is well-formed for what that client negotiated:
// sequence ids (every read), EOF after definitions and classic EOF
// terminators only without CLIENT_DEPRECATE_EOF, OK-0xfe terminators only
// with it, session state in OK packets only with CLIENT_SESSION_TRACK (and
// present with it where the server sent some), status flags, and routing.
func TestCapabilityCombinations(t *testing.T) {
	for mask := 0; mask < 1<<len(specialCaps); mask++ {
		caps := uint32(rawCaps)
		var names []string
		for i, c := range specialCaps {
			if mask&(1<<i) != 0 {
				caps |= c.bit
				names = append(names, c.name)
			}
		}
		name := strings.Join(names, "+")
		if name == "" {
			name = "none"
		}
		t.Run(name, func(t *testing.T) {
			// A harness of its own: the pool's connections carry no other
			// combination's state, and each combination is checked for
			// leaks. Read-your-writes off: the script's reads after its
			// write still go to replicas, so that its prepared statement
			// runs on one.
			h := newHarness(t, harnessConfig{routing: Routing{ReadYourWrites: conf.RYWOff}})
			capabilityScript(t, h, caps)
		})
	}
}

func capabilityScript(t *testing.T, h *harness, caps uint32) {
	has := func(bit uint32) bool { return caps&bit != 0 }
	schema := ""
	if has(mysql.CLIENT_CONNECT_WITH_DB) {
		schema = "shop"
	}
	rc := h.dial(t)
	if err := rc.Login(mysqltest.Login{User: "app", Pass: "secret", Schema: schema, Caps: caps &^ mysql.CLIENT_SSL, TLS: has(mysql.CLIENT_SSL)}); err != nil {
		t.Fatalf("login: %v", err)
	}
	if want := caps; rc.Caps != want {
		t.Fatalf("negotiated %#x, asked for %#x", rc.Caps, want)
	}
	if rc.Compress != has(mysql.CLIENT_COMPRESS) {
		t.Fatalf("compression on: %v", rc.Compress)
	}
	status := func(resp []mysqltest.Packet) uint16 { return mysqltest.Status(t, resp[len(resp)-1].Payload) }
	// tracked says whether the OK packet ending resp carries session state.
	tracked := func(resp []mysqltest.Packet) bool {
		return status(resp)&mysql.SERVER_SESSION_STATE_CHANGED != 0
	}

	// COM_PING is answered by the proxy.
	if ok := rc.MustOK(rc.Cmd(mysql.COM_PING, "", wire.ShapeOne)); ok.Status&mysql.SERVER_STATUS_AUTOCOMMIT == 0 {
		t.Fatalf("ping status %#x", ok.Status)
	}

	// A read goes to a replica, logged in to the login's schema.
	want := "NULL"
	if schema != "" {
		want = schema
	}
	if got := rc.Value("SELECT DATABASE()"); got != want {
		t.Fatalf("DATABASE() = %s, want %s", got, want)
	}
	resp := rc.Query("SELECT name FROM whoami")
	who := rc.Rows(resp)[0][0]
	if who != replica1Name && who != replica2Name {
		t.Fatalf("read answered by %s, want a replica", who)
	}
	if st := status(resp); st != mysql.SERVER_STATUS_AUTOCOMMIT {
		t.Fatalf("result set status %#x", st)
	}
	h.ranOn("SELECT name FROM whoami", who)

	// COM_INIT_DB runs on the primary; the server reports the schema
	// change as session state, which only a tracking client sees.
	resp = rc.Cmd(mysql.COM_INIT_DB, "shop", wire.ShapeOne)
	rc.MustOK(resp)
	if tracked(resp) != has(mysql.CLIENT_SESSION_TRACK) {
		t.Fatalf("COM_INIT_DB's OK: session state %v", tracked(resp))
	}

	// A write: primary, one row, its GTID as session state.
	resp = rc.Query("INSERT INTO t VALUES (1)")
	if ok := rc.MustOK(resp); ok.AffectedRows != 1 || ok.Status&mysql.SERVER_STATUS_IN_TRANS != 0 {
		t.Fatalf("INSERT: %+v", ok)
	}
	if tracked(resp) != has(mysql.CLIENT_SESSION_TRACK) {
		t.Fatalf("INSERT's OK: session state %v", tracked(resp))
	}
	h.ranOn("INSERT INTO t VALUES (1)", primaryName)

	// Several results: a result set, an OK and a result set, each but the
	// last saying more results exist.
	resp = rc.Query("SELECT 1; INSERT INTO t VALUES (2); SELECT 'x'")
	var ends []uint16
	for _, rp := range resp {
		if rp.Kind == wire.KindOK || rp.Kind == wire.KindEOF {
			ends = append(ends, mysqltest.Status(t, rp.Payload))
		}
	}
	if len(ends) != 3 || ends[0]&mysql.SERVER_MORE_RESULTS_EXISTS == 0 || ends[1]&mysql.SERVER_MORE_RESULTS_EXISTS == 0 ||
		ends[2]&mysql.SERVER_MORE_RESULTS_EXISTS != 0 {
		t.Fatalf("multi-result terminators %#x", ends)
	}
	if rows := rc.Rows(resp); fmt.Sprint(rows) != "[[1] [x]]" {
		t.Fatalf("multi-result rows %v", rows)
	}
	h.ranOn("INSERT INTO t VALUES (2)", primaryName)

	// COM_FIELD_LIST: two definitions and the terminator.
	rc.Command(wire.AppendFieldList(nil, "t", ""))
	resp = rc.Response(wire.ShapeFieldList)
	if len(resp) != 3 || resp[0].Kind != wire.KindColumnDef || resp[2].Kind != wire.KindEOF {
		t.Fatalf("field list: %v", resp)
	}

	// COM_SET_OPTION is answered with an EOF, converted for the client.
	rc.Command(wire.AppendSetOption(nil, wire.MultiStatementsOn))
	if resp = rc.Response(wire.ShapeOne); resp[0].Kind != wire.KindEOF {
		t.Fatalf("COM_SET_OPTION: %x", resp[0].Payload)
	}

	// COM_STATISTICS: a string.
	resp = rc.Cmd(mysql.COM_STATISTICS, "", wire.ShapeOne)
	if resp[0].Kind != wire.KindOther || !strings.HasPrefix(string(resp[0].Payload), "Uptime:") {
		t.Fatalf("COM_STATISTICS: %q", resp[0].Payload)
	}

	// A prepared statement, executed on a replica, then closed.
	pok := rc.Prepare("SELECT name FROM whoami WHERE id = ?")
	if pok.StatementID != 1 || pok.Params != 1 || pok.Columns != 1 {
		t.Fatalf("prepare OK %+v", pok)
	}
	resp = rc.Execute(pok.StatementID, 0, true, int64(7))
	rows := mysqltest.BinaryRows(t, resp)
	if len(rows) != 1 || !slices.Contains([]string{replica1Name, replica2Name}, rows[0][0]) {
		t.Fatalf("execution rows %v", rows)
	}
	h.ranOn("SELECT name FROM whoami WHERE id = 7", rows[0][0])
	rc.Command(wire.AppendStmtClose(nil, pok.StatementID))
	if e := rc.MustErr(rc.Execute(pok.StatementID, 0, true, int64(7))); e.Code != mysql.ER_UNKNOWN_STMT_HANDLER {
		t.Fatalf("execution after close: %v", e)
	}

	// COM_RESET_CONNECTION, then the session goes on.
	rc.MustOK(rc.Cmd(mysql.COM_RESET_CONNECTION, "", wire.ShapeOne))
	if got := rc.Value("SELECT 'after reset'"); got != "after reset" {
		t.Fatalf("after reset: %s", got)
	}

	// COM_QUIT: the proxy closes the connection without answering.
	rc.Command([]byte{mysql.COM_QUIT})
	if got := rc.ExpectClosed(); len(got) != 0 {
		t.Fatalf("answer to COM_QUIT: %x", got)
	}
}
