package integration

// End-to-end tests of the protocol commands and client libraries the proxy
// must carry: PHP mysqli and PDO_mysql (mysqlnd), go-mysql's client package
// for commands other clients do not expose (COM_FIELD_LIST, COM_PING,
// COM_RESET_CONNECTION), mariadb-admin, and LOAD DATA LOCAL INFILE through
// the mariadb CLI. Every client is real and talks to the shared MariaDB
// cluster through a switchyard process of the test's own.
//
// The PHP scripts live in testdata/php/; each prints one JSON object of what
// it observed, and the assertions are made here.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/integration/harness"
)

// A second account for change_user, created on the primary (it replicates)
// and configured in the proxy next to the app user.
const (
	cmdsUser2 = "app2_cmds"
	cmdsPass2 = "pw2-cmds"
)

// cmdsSecondUser creates (or resets) the second MariaDB account.
func cmdsSecondUser(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := cluster.Primary.Exec(ctx,
		fmt.Sprintf("CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY '%s'", cmdsUser2, cmdsPass2),
		fmt.Sprintf("ALTER USER '%s'@'%%' IDENTIFIED BY '%s'", cmdsUser2, cmdsPass2),
		fmt.Sprintf("GRANT ALL PRIVILEGES ON *.* TO '%s'@'%%'", cmdsUser2),
		// Like the app user: a write misrouted to a read_only replica must fail.
		fmt.Sprintf("REVOKE READ_ONLY ADMIN ON *.* FROM '%s'@'%%'", cmdsUser2),
	)
	if err != nil {
		t.Fatalf("create %s on the primary: %v", cmdsUser2, err)
	}
	if err := cluster.WaitReplicasCaughtUp(ctx); err != nil {
		t.Fatalf("replicas catching up with the new account: %v", err)
	}
}

// cmdsStartProxy starts a proxy that knows the app user and the second user.
func cmdsStartProxy(t *testing.T) *harness.Proxy {
	t.Helper()
	return startProxy(t, harness.ProxyOptions{ExtraYAML: fmt.Sprintf(`users:
  - name: %q
    password: %q
    default_schema: %q
  - name: %q
    password: %q
    default_schema: %q
`, cluster.AppUser, cluster.AppPassword, cluster.Database, cmdsUser2, cmdsPass2, cluster.Database)})
}

// cmdsServerConns snapshots the primary's session count of each user.
func cmdsServerConns(t *testing.T, users ...string) map[string]int {
	t.Helper()
	m := map[string]int{}
	for _, u := range users {
		m[u] = serverConnections(t, u)
	}
	return m
}

// cmdsNoLeak waits until the primary holds no more sessions of each user than
// before. "No more" rather than "exactly": sessions of an earlier test's
// proxy may still be on their way out when before was taken, and a leak
// shows up as more, never fewer.
func cmdsNoLeak(t *testing.T, before map[string]int) {
	t.Helper()
	for u, n := range before {
		var now int
		eventually(t, 10*time.Second, fmt.Sprintf("server sessions of %s back to %d after the clients left", u, n), func() bool {
			now = serverConnections(t, u)
			return now <= n
		})
	}
}

// cmdsRunPHP runs a script from testdata/php with env added to the
// environment and returns its JSON output, failing the test if the script
// reports an unexpected failure.
func cmdsRunPHP(t *testing.T, script string, env ...string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "php", "-d", "display_errors=stderr", "-d", "error_reporting=-1",
		filepath.Join("testdata", "php", script))
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("php %s did not finish in time (hung?)\nstdout: %s\nstderr: %s", script, stdout.String(), stderr.String())
	}
	if err != nil {
		t.Fatalf("php %s: %v\nstdout: %s\nstderr: %s", script, err, stdout.String(), stderr.String())
	}
	var out map[string]any
	if jerr := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &out); jerr != nil {
		t.Fatalf("php %s: output is not one JSON object: %v\nstdout: %s\nstderr: %s", script, jerr, stdout.String(), stderr.String())
	}
	if stderr.Len() > 0 {
		t.Logf("php %s stderr:\n%s", script, stderr.String())
	}
	return out
}

func cmdsProxyEnv(p *harness.Proxy) []string {
	host, port, _ := strings.Cut(p.Addr(), ":")
	return []string{"SY_HOST=" + host, "SY_PORT=" + port,
		"SY_USER=" + cluster.AppUser, "SY_PASS=" + cluster.AppPassword, "SY_DB=" + cluster.Database}
}

// cmdsGet walks a decoded JSON value along path.
func cmdsGet(v any, path ...string) (any, bool) {
	for _, k := range path {
		switch c := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = c[k]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			v = c[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// cmdsExpect checks that the value at path equals the JSON literal want.
func cmdsExpect(t *testing.T, out any, want string, path ...string) {
	t.Helper()
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad expectation %s: %v", want, err)
	}
	got, ok := cmdsGet(out, path...)
	if !ok {
		t.Errorf("%s: missing from the output", strings.Join(path, "."))
		return
	}
	if !reflect.DeepEqual(got, w) {
		g, _ := json.Marshal(got)
		t.Errorf("%s = %s, want %s", strings.Join(path, "."), g, want)
	}
}

// cmdsExpectErr checks a PHP attempt() record: it failed with errno and
// sqlstate (mysqli field names; PDO uses driver_code).
func cmdsExpectErr(t *testing.T, out any, codeKey string, code int, sqlstate string, path ...string) {
	t.Helper()
	rec, ok := cmdsGet(out, path...)
	m, isMap := rec.(map[string]any)
	if !ok || !isMap {
		t.Errorf("%s: missing from the output", strings.Join(path, "."))
		return
	}
	if m["ok"] != false || m[codeKey] != float64(code) || m["sqlstate"] != sqlstate {
		g, _ := json.Marshal(m)
		t.Errorf("%s = %s, want an error with %s %d and SQLSTATE %s", strings.Join(path, "."), g, codeKey, code, sqlstate)
	}
}

// TestCommandsPHPMysqli drives mysqli through the proxy: CRUD, server-side
// prepared statements with typed parameters and results (including long data
// and statement reset, and a read-only cursor), errors with errno and
// SQLSTATE, warnings, multi_query over COM_SET_OPTION, change_user (success, state
// reset, wrong password, missing schema), COM_STATISTICS, COM_PING and
// COM_INIT_DB, then checks that no server session outlives the PHP clients.
func TestCommandsPHPMysqli(t *testing.T) {
	cmdsSecondUser(t)
	p := cmdsStartProxy(t)
	before := cmdsServerConns(t, cluster.AppUser, cmdsUser2)

	const table, otherDB = "cmds_mysqli", "cmds_other"
	out := cmdsRunPHP(t, "mysqli_commands.php", append(cmdsProxyEnv(p),
		"SY_USER2="+cmdsUser2, "SY_PASS2="+cmdsPass2, "SY_TABLE="+table, "SY_OTHER_DB="+otherDB)...)
	if testing.Verbose() {
		b, _ := json.MarshalIndent(out, "", "  ")
		t.Logf("mysqli output:\n%s", b)
	}
	primaryID := strconv.Itoa(primaryServerID(t))

	t.Run("connect", func(t *testing.T) {
		cmdsExpect(t, out, primaryID, "server_id")
		cmdsExpect(t, out, `"shop"`, "connect_database")
		cmdsExpect(t, out, `"app@%"`, "connect_user")
	})
	t.Run("crud", func(t *testing.T) {
		// Text-protocol results arrive as strings.
		cmdsExpect(t, out, `3`, "crud", "insert_affected")
		cmdsExpect(t, out, `1`, "crud", "insert_id")
		cmdsExpect(t, out, `2`, "crud", "update_affected")
		cmdsExpect(t, out, `1`, "crud", "delete_affected")
		cmdsExpect(t, out, `[["2","20","beta"],["3","30","gamma"]]`, "crud", "rows")
	})
	t.Run("prepared", func(t *testing.T) {
		// Binary-protocol results keep their types.
		cmdsExpect(t, out, `5`, "prepared", "param_count")
		cmdsExpect(t, out, `6`, "prepared", "field_count")
		cmdsExpect(t, out, `[4,5]`, "prepared", "ids")
		cmdsExpect(t, out, `{"id":4,"qty":42,"name":"café ☕","note":null,"price":12.5,"created":"2024-02-29 13:45:07"}`, "prepared", "row1")
		cmdsExpect(t, out, `{"id":"integer","qty":"integer","name":"string","note":"NULL","price":"double","created":"string"}`, "prepared", "row1_types")
		cmdsExpect(t, out, `false`, "prepared", "row1_more")
		cmdsExpect(t, out, `{"id":5,"qty":-7,"name":"second","note":"has a note","price":-0.25,"created":"1999-12-31 23:59:59"}`, "prepared", "row2")
		// COM_STMT_SEND_LONG_DATA (100000 bytes + 4) and COM_STMT_RESET.
		cmdsExpect(t, out, `1`, "prepared", "long_data_affected")
		cmdsExpect(t, out, `true`, "prepared", "reset")
		cmdsExpect(t, out, `["100004","tail"]`, "prepared", "payload")
	})
	t.Run("errors", func(t *testing.T) {
		// From COM_QUERY and COM_STMT_PREPARE, unchanged, session still usable.
		cmdsExpectErr(t, out, "errno", 1146, "42S02", "missing_table")
		cmdsExpectErr(t, out, "errno", 1146, "42S02", "missing_table_prepare")
		cmdsExpect(t, out, `42`, "after_error")
	})
	t.Run("multi_query", func(t *testing.T) {
		// An OK, then two result sets, all iterated; afterwards the session
		// is in sync and multi-statements are off again (COM_SET_OPTION).
		cmdsExpect(t, out, `[{"affected":1},{"rows":[["beta","20"],["multi","5"]]},{"rows":[["tail","3"]]}]`, "multi")
		cmdsExpect(t, out, `4`, "after_multi")
		cmdsExpectErr(t, out, "errno", 1064, "42000", "multi_off")
		// An error in the middle ends the batch; the session goes on.
		cmdsExpect(t, out, `[[["first"]],{"errno":1146,"sqlstate":"42S02"}]`, "multi_error")
		cmdsExpect(t, out, `false`, "multi_error_more")
		cmdsExpect(t, out, `42`, "after_multi_error")
	})
	t.Run("warnings", func(t *testing.T) {
		cmdsExpect(t, out, `null`, "warning_value")
		cmdsExpect(t, out, `1`, "warning_count")
		cmdsExpect(t, out, `[["Warning","1365","Division by 0"]]`, "warnings")
	})
	t.Run("change_user", func(t *testing.T) {
		// The new user, on a session without the old one's state.
		cmdsExpect(t, out, `"before"`, "change_user", "marker_before")
		cmdsExpect(t, out, `7`, "change_user", "aii_before")
		cmdsExpect(t, out, `true`, "change_user", "result")
		cmdsExpect(t, out, `"`+cmdsUser2+`@%"`, "change_user", "current_user")
		cmdsExpect(t, out, `null`, "change_user", "marker_after")
		cmdsExpect(t, out, `1`, "change_user", "aii_after")
		cmdsExpectErr(t, out, "errno", 1146, "42S02", "change_user", "tmp_after")
		cmdsExpect(t, out, `"shop"`, "change_user", "database")
		cmdsExpect(t, out, primaryID, "change_user", "server_id")
		cmdsExpect(t, out, `5`, "change_user", "count_as_user2")
		// Back to the first user, naming another schema.
		cmdsExpect(t, out, `true`, "change_user", "back_result")
		cmdsExpect(t, out, `"app@%"`, "change_user", "back_user")
		cmdsExpect(t, out, `"`+otherDB+`"`, "change_user", "back_database")
	})
	t.Run("change_user_wrong_password", func(t *testing.T) {
		cmdsExpectErr(t, out, "errno", 1045, "28000", "bad_change_user")
		// MariaDB keeps the connection after a refused COM_CHANGE_USER, still
		// logged in as the previous user (and the PHP manual promises it:
		// "the current user authentication will remain"); the proxy must not
		// turn a wrong password into a dropped connection.
		cmdsExpect(t, out, `{"ok":true,"result":"app@%"}`, "bad_change_user", "after")
	})
	t.Run("change_user_missing_schema", func(t *testing.T) {
		// Refused with 1049; the session stays with the previous user.
		cmdsExpectErr(t, out, "errno", 1049, "42000", "bad_change_user_db")
		cmdsExpect(t, out, `{"ok":true,"result":"app@%"}`, "bad_change_user_db", "after")
	})
	t.Run("cursor", func(t *testing.T) {
		// COM_STMT_EXECUTE opening a read-only cursor, rows by COM_STMT_FETCH.
		cmdsExpect(t, out, `[[3,"gamma"],[4,"café ☕"],[5,"second"],[6,"multi"]]`, "cursor")
		cmdsExpect(t, out, `10`, "after_cursor")
	})
	t.Run("stat_ping", func(t *testing.T) {
		if s, _ := cmdsGet(out, "stat"); !strings.Contains(fmt.Sprint(s), "Uptime: ") || !strings.Contains(fmt.Sprint(s), "Threads: ") {
			t.Errorf("stat() = %v, want the server's statistics string with Uptime and Threads", s)
		}
		cmdsExpect(t, out, `true`, "ping")
		cmdsExpect(t, out, `9`, "after_ping")
	})
	t.Run("select_db", func(t *testing.T) {
		cmdsExpect(t, out, `"`+otherDB+`"`, "select_db", "before")
		cmdsExpect(t, out, `true`, "select_db", "result")
		cmdsExpect(t, out, `"shop"`, "select_db", "database")
		cmdsExpect(t, out, `5`, "select_db", "unqualified_count")
		cmdsExpect(t, out, `true`, "select_db", "result_other")
		cmdsExpect(t, out, `"`+otherDB+`"`, "select_db", "database_other")
		cmdsExpectErr(t, out, "errno", 1049, "42000", "select_db", "missing")
		cmdsExpect(t, out, `"`+otherDB+`"`, "select_db", "database_after_missing")
	})

	// What PHP wrote is really on the primary.
	db, err := cluster.Primary.DB(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM shop." + table + " WHERE name IN ('beta','gamma','second','multi','café ☕')").Scan(&n); err != nil || n != 5 {
		t.Errorf("rows of %s on the primary: %d (%v), want 5", table, n, err)
	}

	cmdsNoLeak(t, before)
}

// TestCommandsPHPPDO runs PDO_mysql through the proxy with native and with
// emulated prepares: prepared round trips, PDOExceptions with SQLSTATE and
// driver code (from prepare, execute and query), and a committed and a rolled
// back transaction, then checks that no server session is left behind.
func TestCommandsPHPPDO(t *testing.T) {
	p := cmdsStartProxy(t)
	before := cmdsServerConns(t, cluster.AppUser)
	for _, emulate := range []bool{false, true} {
		t.Run(fmt.Sprintf("emulate=%v", emulate), func(t *testing.T) {
			table := "cmds_pdo_native"
			flag := "0"
			if emulate {
				table, flag = "cmds_pdo_emulated", "1"
			}
			out := cmdsRunPHP(t, "pdo_commands.php", append(cmdsProxyEnv(p), "SY_TABLE="+table, "SY_EMULATE="+flag)...)
			if testing.Verbose() {
				b, _ := json.MarshalIndent(out, "", "  ")
				t.Logf("pdo output:\n%s", b)
			}
			cmdsExpect(t, out, strconv.FormatBool(emulate), "emulate")
			cmdsExpect(t, out, strconv.Itoa(primaryServerID(t)), "server_id")
			cmdsExpect(t, out, `1`, "insert_count")
			cmdsExpect(t, out, `1`, "insert2_count")
			// PHP 8.1+ returns native ints in both modes; DECIMAL stays a string.
			cmdsExpect(t, out, `{"id":1,"qty":42,"name":"Zoë's \"quoted\" name","note":null,"price":"19.99","created":"2023-07-01 08:09:10"}`, "row1")
			cmdsExpect(t, out, `false`, "row1_more")
			cmdsExpect(t, out, `{"id":2,"qty":7,"name":"two","note":"n2","price":"0.50","created":"2000-01-01 00:00:00"}`, "row2")

			cmdsExpectErr(t, out, "driver_code", 1146, "42S02", "missing_table")
			cmdsExpect(t, out, `"42S02"`, "missing_table", "code")
			cmdsExpectErr(t, out, "driver_code", 1146, "42S02", "missing_table_prepared")
			cmdsExpectErr(t, out, "driver_code", 1062, "23000", "duplicate_key")
			cmdsExpect(t, out, `"23000"`, "duplicate_key", "code")
			cmdsExpect(t, out, `42`, "after_error")

			cmdsExpect(t, out, `true`, "tx", "begin")
			cmdsExpect(t, out, `true`, "tx", "in_tx")
			cmdsExpect(t, out, `true`, "tx", "commit")
			cmdsExpect(t, out, `1`, "tx", "committed_seen_by_other")
			cmdsExpect(t, out, `true`, "tx", "begin2")
			cmdsExpect(t, out, `1`, "tx", "seen_inside")
			cmdsExpect(t, out, `0`, "tx", "seen_by_other_during")
			cmdsExpect(t, out, `true`, "tx", "rollback")
			cmdsExpect(t, out, `false`, "tx", "in_tx_after")
			cmdsExpect(t, out, `0`, "tx", "seen_after_rollback")
			cmdsExpect(t, out, `0`, "tx", "seen_by_other_after")
			cmdsExpect(t, out, `[1,2,10]`, "tx", "ids")

			// The rolled back row is not on the primary; the committed one is.
			db, err := cluster.Primary.DB(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var ids string
			if err := db.QueryRow("SELECT GROUP_CONCAT(id ORDER BY id) FROM shop." + table).Scan(&ids); err != nil || ids != "1,2,10" {
				t.Errorf("ids in %s on the primary: %q (%v), want 1,2,10", table, ids, err)
			}
		})
	}
	cmdsNoLeak(t, before)
}

// TestCommandsGoMySQLClient uses go-mysql's client package for commands that
// go-sql-driver and the CLIs do not send: COM_FIELD_LIST, a bare COM_PING and
// COM_RESET_CONNECTION (which client.Conn has no method for, so it goes out
// with WritePacket and its answer is read with ReadOKPacket). It runs with
// CLIENT_DEPRECATE_EOF, go-mysql's default, and without it, the two shapes of
// a field list's terminator, and checks after each command that the next one
// still gets its own answer.
func TestCommandsGoMySQLClient(t *testing.T) {
	p := startProxy(t, harness.ProxyOptions{})
	before := cmdsServerConns(t, cluster.AppUser)
	primaryID := strconv.Itoa(primaryServerID(t))
	for _, deprecateEOF := range []bool{true, false} {
		t.Run(fmt.Sprintf("deprecate_eof=%v", deprecateEOF), func(t *testing.T) {
			opt := func(c *client.Conn) error {
				c.ReadTimeout, c.WriteTimeout = 30*time.Second, 30*time.Second
				if !deprecateEOF {
					c.UnsetCapability(mysql.CLIENT_DEPRECATE_EOF)
				}
				return nil
			}
			conn, err := client.Connect(p.Addr(), cluster.AppUser, cluster.AppPassword, cluster.Database, opt)
			if err != nil {
				t.Fatalf("go-mysql connect through the proxy: %v", err)
			}
			defer conn.Close()
			// The capabilities both sides agreed on.
			if got := strings.Contains("|"+conn.CapabilityString()+"|", "|CLIENT_DEPRECATE_EOF|"); got != deprecateEOF {
				t.Fatalf("CLIENT_DEPRECATE_EOF negotiated: %v, want %v (%s)", got, deprecateEOF, conn.CapabilityString())
			}
			run := func(q string) *mysql.Result {
				t.Helper()
				r, err := conn.Execute(q)
				if err != nil {
					t.Fatalf("%s: %v", q, err)
				}
				return r
			}
			// value runs a query that returns one value; ok is false for NULL.
			value := func(q string) (string, bool) {
				t.Helper()
				r := run(q)
				if r.RowNumber() != 1 || r.ColumnNumber() != 1 {
					t.Fatalf("%s: %d rows x %d columns, want one value", q, r.RowNumber(), r.ColumnNumber())
				}
				if null, _ := r.IsNull(0, 0); null {
					return "", false
				}
				s, _ := r.GetString(0, 0)
				return s, true
			}
			table := "cmds_fields"
			if deprecateEOF {
				table = "cmds_fields_deof"
			}
			run("DROP TABLE IF EXISTS " + table)
			run("CREATE TABLE " + table + " (id INT PRIMARY KEY, name VARCHAR(20) NOT NULL, price DECIMAL(8,2), created_at DATETIME)")

			// COM_FIELD_LIST.
			fields, err := conn.FieldList(table, "")
			if err != nil {
				t.Fatalf("FieldList(%s): %v", table, err)
			}
			var names []string
			for _, f := range fields {
				names = append(names, string(f.Name))
				if string(f.Table) != table {
					t.Errorf("field %s: table %q, want %s", f.Name, f.Table, table)
				}
			}
			if want := []string{"id", "name", "price", "created_at"}; !reflect.DeepEqual(names, want) {
				t.Fatalf("FieldList(%s) = %q, want %q", table, names, want)
			}
			if fields[0].Type != mysql.MYSQL_TYPE_LONG || fields[2].Type != mysql.MYSQL_TYPE_NEWDECIMAL || fields[3].Type != mysql.MYSQL_TYPE_DATETIME {
				t.Errorf("FieldList types %d %d %d, want LONG, NEWDECIMAL, DATETIME", fields[0].Type, fields[2].Type, fields[3].Type)
			}
			fields, err = conn.FieldList(table, "na%")
			if err != nil || len(fields) != 1 || string(fields[0].Name) != "name" {
				t.Errorf("FieldList(%s, na%%) = %d fields (%v), want just name", table, len(fields), err)
			}
			_, err = conn.FieldList("cmds_no_such_table", "")
			var me *mysql.MyError
			if !errors.As(err, &me) || me.Code != mysql.ER_NO_SUCH_TABLE || me.State != "42S02" {
				t.Errorf("FieldList on a missing table: %v, want error 1146 (42S02)", err)
			}
			if s, _ := value("SELECT 'after field list'"); s != "after field list" {
				t.Errorf("query after COM_FIELD_LIST returned %q", s)
			}

			// COM_PING.
			if err := conn.Ping(); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			if s, _ := value("SELECT @@server_id"); s != primaryID {
				t.Errorf("@@server_id after ping = %s, want the primary's %s", s, primaryID)
			}

			// COM_RESET_CONNECTION: user variables, temporary tables and the
			// open transaction are gone; the session stays logged in, in its
			// schema, and usable.
			run("SET @cmds_v = 'kept?'")
			run("CREATE TEMPORARY TABLE cmds_reset_tmp (x INT)")
			run("BEGIN")
			run("INSERT INTO " + table + " (id, name) VALUES (1, 'uncommitted')")
			if s, ok := value("SELECT @cmds_v"); !ok || s != "kept?" {
				t.Fatalf("@cmds_v before reset = %q (set: %v)", s, ok)
			}
			conn.ResetSequence()
			if err := conn.WritePacket([]byte{1, 0, 0, 0, mysql.COM_RESET_CONNECTION}); err != nil {
				t.Fatalf("send COM_RESET_CONNECTION: %v", err)
			}
			if _, err := conn.ReadOKPacket(); err != nil {
				t.Fatalf("COM_RESET_CONNECTION: %v", err)
			}
			if s, ok := value("SELECT @cmds_v"); ok {
				t.Errorf("@cmds_v after COM_RESET_CONNECTION = %q, want NULL", s)
			}
			if _, err := conn.Execute("SELECT * FROM cmds_reset_tmp"); !errors.As(err, &me) || me.Code != mysql.ER_NO_SUCH_TABLE {
				t.Errorf("temporary table after COM_RESET_CONNECTION: %v, want error 1146", err)
			}
			if s, _ := value("SELECT COUNT(*) FROM " + table); s != "0" {
				t.Errorf("rows after COM_RESET_CONNECTION (the transaction must be rolled back): %s, want 0", s)
			}
			want := fmt.Sprintf("app@%% %s %s", cluster.Database, primaryID)
			if s, _ := value("SELECT CONCAT(CURRENT_USER(), ' ', DATABASE(), ' ', @@server_id)"); s != want {
				t.Errorf("session after COM_RESET_CONNECTION: %q, want %q", s, want)
			}
			if err := conn.Ping(); err != nil {
				t.Errorf("Ping after COM_RESET_CONNECTION: %v", err)
			}
			if err := conn.Quit(); err != nil {
				t.Errorf("Quit: %v", err)
			}
		})
	}
	cmdsNoLeak(t, before)
}

// cmdsExec runs a client binary with a deadline, so that a proxy that hangs
// fails the test quickly instead of stalling it.
func cmdsExec(t *testing.T, timeout time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s %s did not finish within %v (hung); output:\n%s", name, strings.Join(args, " "), timeout, out)
	}
	return string(out), err
}

// TestCommandsMariadbAdmin runs mariadb-admin ping (COM_PING) and status
// (COM_STATISTICS) through the proxy.
func TestCommandsMariadbAdmin(t *testing.T) {
	p := startProxy(t, harness.ProxyOptions{})
	before := cmdsServerConns(t, cluster.AppUser)
	host, port, _ := strings.Cut(p.Addr(), ":")
	base := []string{"--no-defaults", "--connect-timeout=10", "-h", host, "-P", port, "-u", cluster.AppUser, "-p" + cluster.AppPassword}

	// ping exits 0 even when the login is refused (the server answered),
	// so the output must be the success line and nothing else.
	out, err := cmdsExec(t, 30*time.Second, "mariadb-admin", append(base, "ping")...)
	if err != nil || strings.TrimSpace(out) != "mysqld is alive" {
		t.Errorf("mariadb-admin ping: %v\n%s", err, out)
	}
	out, err = cmdsExec(t, 30*time.Second, "mariadb-admin", append(base, "status")...)
	if err != nil {
		t.Errorf("mariadb-admin status: %v\n%s", err, out)
	}
	for _, want := range []string{"Uptime:", "Threads:", "Questions:", "Open tables:"} {
		if !strings.Contains(out, want) {
			t.Errorf("mariadb-admin status output lacks %q:\n%s", want, out)
		}
	}
	cmdsNoLeak(t, before)
}

// TestCommandsLoadDataLocalInfile loads a client-side CSV through the proxy
// with the mariadb CLI; a file the client cannot read and a client without
// local infile each get an error rather than a hang, and the session goes on.
func TestCommandsLoadDataLocalInfile(t *testing.T) {
	p := startProxy(t, harness.ProxyOptions{})
	before := cmdsServerConns(t, cluster.AppUser)
	cmdsLoadData(t, p.Addr())
	cmdsNoLeak(t, before)
}

func cmdsLoadData(t *testing.T, addr string) {
	const rows = 300
	var csv strings.Builder
	sum := 0
	for i := 1; i <= rows; i++ {
		fmt.Fprintf(&csv, "%d,item-%03d,%d.%02d\n", i, i, i, i%100)
		sum += i
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "cmds_items.csv")
	if err := os.WriteFile(path, []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(addr, ":")
	// Statements go in on stdin: with -e the CLI stops at the first error
	// even with --force, and here the session after an error matters.
	cli := func(localInfile string, sql string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "mariadb", "--no-defaults", "--connect-timeout=10", "-h", host, "-P", port,
			"-u", cluster.AppUser, "-p"+cluster.AppPassword, "--batch", "--skip-column-names", "--force",
			"--local-infile="+localInfile, "-D", cluster.Database)
		cmd.Stdin = strings.NewReader(sql)
		out, err := cmd.CombinedOutput()
		if ctx.Err() != nil {
			t.Fatalf("mariadb --local-infile=%s did not finish within 30s (hung); output:\n%s", localInfile, out)
		}
		if err != nil {
			t.Errorf("mariadb --local-infile=%s: %v", localInfile, err)
		}
		if testing.Verbose() {
			t.Logf("mariadb --local-infile=%s:\n%s", localInfile, out)
		}
		return string(out)
	}
	load := func(file string) string {
		return fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE cmds_infile FIELDS TERMINATED BY ',' LINES TERMINATED BY '\\n' (id, name, price);\n", file)
	}
	count := "SELECT CONCAT('count ', COUNT(*), ' ', COALESCE(SUM(id), 0)) FROM cmds_infile;\n"

	out := cli("1", "DROP TABLE IF EXISTS cmds_infile;\n"+
		"CREATE TABLE cmds_infile (id INT PRIMARY KEY, name VARCHAR(20) NOT NULL, price DECIMAL(8,2) NOT NULL);\n"+
		load(path)+
		"SELECT CONCAT('loaded ', COUNT(*), ' ', SUM(id), ' ', MAX(name), ' ', MAX(price)) FROM cmds_infile;\n"+
		// The client offers the file but cannot open it: it answers the
		// server's request with an empty upload.
		load(filepath.Join(dir, "missing.csv"))+
		count)
	if want := fmt.Sprintf("loaded %d %d item-%03d %d.%02d\n", rows, sum, rows, rows, rows%100); !strings.Contains(out, want) {
		t.Errorf("LOAD DATA LOCAL INFILE with --local-infile=1: want %q in the output:\n%s", want, out)
	}
	if want := fmt.Sprintf("count %d %d\n", rows, sum); !strings.Contains(out, "missing.csv' not found") || !strings.Contains(out, want) {
		t.Errorf("LOAD DATA LOCAL INFILE of a missing file: want an error, then %q:\n%s", want, out)
	}

	// The client does not enable local infile: the server refuses the
	// statement, nothing is loaded, and the session's next statement runs.
	out = cli("0", "DELETE FROM cmds_infile WHERE id > 100;\n"+load(path)+count)
	if !strings.Contains(out, "ERROR 4166 (HY000)") {
		t.Errorf("LOAD DATA LOCAL INFILE without local infile: want ERROR 4166 (HY000), got:\n%s", out)
	}
	if want := "count 100 5050\n"; !strings.Contains(out, want) {
		t.Errorf("after the refused LOAD DATA: want %q (nothing loaded, session alive), got:\n%s", want, out)
	}
}
