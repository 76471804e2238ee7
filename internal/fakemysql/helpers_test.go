package fakemysql

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/internal/mysqltest"
)

func wantCode(t *testing.T, err error, code uint16) {
	t.Helper()
	if got, _, _ := mysqltest.ServerError(err); got != code {
		t.Fatalf("error %v: want code %d", err, code)
	}
}

// openDB opens a go-sql-driver pool on s with extra DSN parameters.
func openDB(t *testing.T, s *Server, user, pass, schema, params string) *sql.DB {
	t.Helper()
	dsn := fmt.Sprintf("%s:%s@tcp(%s)/%s?compress=false&timeout=5s", user, pass, s.Addr(), schema)
	if params != "" {
		dsn += "&" + params
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// rawCaps are the capabilities a raw client asks for by default.
const rawCaps = mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_PLUGIN_AUTH |
	mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | mysql.CLIENT_TRANSACTIONS | mysql.CLIENT_MULTI_RESULTS |
	mysql.CLIENT_PS_MULTI_RESULTS | mysql.CLIENT_LONG_FLAG

// dialRaw connects a raw client (mysqltest.Client) asking for caps to s.
func dialRaw(t *testing.T, s *Server, caps uint32) *mysqltest.Client {
	t.Helper()
	return mysqltest.Dial(t, s.Addr(), caps, nil)
}

// loginRaw dials and logs in, failing the test on a refusal.
func loginRaw(t *testing.T, s *Server, caps uint32, user, pass, schema string) *mysqltest.Client {
	t.Helper()
	rc := dialRaw(t, s, caps)
	if err := rc.Login(mysqltest.Login{User: user, Pass: pass, Schema: schema}); err != nil {
		t.Fatalf("login: %v", err)
	}
	return rc
}

func joinRows(rows [][]string) string {
	var parts []string
	for _, r := range rows {
		parts = append(parts, strings.Join(r, ","))
	}
	return strings.Join(parts, ";")
}
