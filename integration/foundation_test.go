package integration

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"switchyard/integration/harness"
)

func TestCRUDThroughProxy(t *testing.T) {
	p := startProxy(t, harness.ProxyOptions{})
	db := appDB(t, p, "")
	mustExec(t, db, "DROP TABLE IF EXISTS crud")
	mustExec(t, db, "CREATE TABLE crud (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(50), price DECIMAL(10,2), note TEXT NULL)")
	res, err := db.Exec("INSERT INTO crud (name, price) VALUES (?, ?), (?, ?)", "apple", 1.25, "pear", 2.5)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 2 {
		t.Fatalf("insert affected %d rows, want 2", n)
	}
	if id, _ := res.LastInsertId(); id != 1 {
		t.Fatalf("last insert id %d, want 1", id)
	}
	res = mustExec(t, db, "UPDATE crud SET price = price * 2 WHERE name = 'pear'")
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("update affected %d rows, want 1", n)
	}
	var name string
	var price float64
	var note sql.NullString
	if err := db.QueryRow("SELECT name, price, note FROM crud WHERE id = 2").Scan(&name, &price, &note); err != nil {
		t.Fatal(err)
	}
	if name != "pear" || price != 5 || note.Valid {
		t.Fatalf("got %q %v %v, want pear 5 NULL", name, price, note)
	}
	mustExec(t, db, "DELETE FROM crud WHERE id = 1")
	var count int
	if err := db.QueryRow("SELECT COUNT(*) FROM crud").Scan(&count); err != nil || count != 1 {
		t.Fatalf("count %d (%v), want 1", count, err)
	}
	var sid int
	if err := db.QueryRow("SELECT @@server_id").Scan(&sid); err != nil || sid != primaryServerID(t) {
		t.Fatalf("statements ran on server_id %d (%v), want the primary's %d", sid, err, primaryServerID(t))
	}
}

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) sql.Result {
	t.Helper()
	r, err := db.Exec(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return r
}

func TestMultiStatementsAndResults(t *testing.T) {
	p := startProxy(t, harness.ProxyOptions{})
	db := appDB(t, p, "multiStatements=true")
	db.SetMaxOpenConns(1)
	mustExec(t, db, "DROP TABLE IF EXISTS multi; CREATE TABLE multi (id INT PRIMARY KEY, v VARCHAR(10)); INSERT INTO multi VALUES (1,'a'),(2,'b'),(3,'c')")
	rows, err := db.Query("SELECT id FROM multi ORDER BY id; UPDATE multi SET v = 'z' WHERE id = 3; SELECT v FROM multi WHERE id >= 2 ORDER BY id; SELECT 42")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var sets [][]string
	for {
		var set []string
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			set = append(set, v)
		}
		sets = append(sets, set)
		if !rows.NextResultSet() {
			break
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(sets)
	// go-sql-driver skips the UPDATE's OK and reports the three result sets.
	if got != "[[1 2 3] [b z] [42]]" {
		t.Fatalf("result sets %s, want [[1 2 3] [b z] [42]]", got)
	}
	// An error in the middle stops the batch; the earlier statements ran.
	_, err = db.Exec("INSERT INTO multi VALUES (4,'d'); INSERT INTO multi VALUES (4,'dup'); INSERT INTO multi VALUES (5,'e')")
	assertMySQLError(t, err, 1062, "23000")
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM multi").Scan(&n); err != nil || n != 4 {
		t.Fatalf("after the failed batch: %d rows (%v), want 4", n, err)
	}
}

func assertMySQLError(t *testing.T, err error, code uint16, state string) {
	t.Helper()
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		t.Fatalf("error %v (%T), want MySQL error %d", err, err, code)
	}
	if me.Number != code || string(me.SQLState[:]) != state {
		t.Fatalf("error %d (%s) %q, want %d (%s)", me.Number, string(me.SQLState[:]), me.Message, code, state)
	}
}

func TestServerErrorsPassUnchanged(t *testing.T) {
	p := startProxy(t, harness.ProxyOptions{})
	db := appDB(t, p, "")
	_, err := db.Exec("SELEKT 1")
	assertMySQLError(t, err, 1064, "42000")
	_, err = db.Query("SELECT * FROM no_such_table")
	assertMySQLError(t, err, 1146, "42S02")
	_, err = db.Exec("SIGNAL SQLSTATE '45000' SET MYSQL_ERRNO = 4242, MESSAGE_TEXT = 'custom failure'")
	assertMySQLError(t, err, 4242, "45000")
	// The session is still usable after errors.
	var one int
	if err := db.QueryRow("SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 after errors: %v", err)
	}

	out, err := mariadbCLI(t, p, cluster.AppUser, cluster.AppPassword, cluster.Database, "-e", "SELECT * FROM no_such_table")
	if err == nil || !strings.Contains(out, "ERROR 1146 (42S02)") {
		t.Fatalf("mariadb CLI: err %v, output %q; want ERROR 1146 (42S02)", err, out)
	}
}

func TestLoginFailures(t *testing.T) {
	p := startProxy(t, harness.ProxyOptions{})
	err := openDB(t, p, cluster.AppUser, "wrong-password", "", "").Ping()
	assertMySQLError(t, err, 1045, "28000")
	err = openDB(t, p, "nobody", "whatever", "", "").Ping()
	assertMySQLError(t, err, 1045, "28000")
	// Unknown schema: the server's own error reaches the client at connect.
	err = openDB(t, p, cluster.AppUser, cluster.AppPassword, "no_such_db", "").Ping()
	assertMySQLError(t, err, 1049, "42000")

	out, err := mariadbCLI(t, p, cluster.AppUser, "wrong-password", "-e", "SELECT 1")
	if err == nil || !strings.Contains(out, "ERROR 1045 (28000)") {
		t.Fatalf("mariadb CLI with a wrong password: %v %q", err, out)
	}
	out, err = mariadbCLI(t, p, cluster.AppUser, cluster.AppPassword, "-e", "SELECT CURRENT_USER()")
	if err != nil || !strings.Contains(out, cluster.AppUser+"@") {
		t.Fatalf("mariadb CLI login: %v %q", err, out)
	}
}

func TestPasswordHashUser(t *testing.T) {
	// A user configured with only the mysql_native_password hash: the proxy
	// recovers what the server login needs from the client's answer.
	p := startProxy(t, harness.ProxyOptions{Users: []harness.ProxyUser{{
		Name: cluster.AppUser, PasswordHash: harness.NativePasswordHash(cluster.AppPassword), DefaultSchema: cluster.Database,
	}}})
	var u string
	if err := appDB(t, p, "").QueryRow("SELECT CURRENT_USER()").Scan(&u); err != nil || !strings.HasPrefix(u, cluster.AppUser+"@") {
		t.Fatalf("hash-only user: %q, %v", u, err)
	}
	err := openDB(t, p, cluster.AppUser, "wrong", "", "").Ping()
	assertMySQLError(t, err, 1045, "28000")
	out, err := mariadbCLI(t, p, cluster.AppUser, cluster.AppPassword, "-e", "SELECT 7")
	if err != nil || !strings.Contains(out, "7") {
		t.Fatalf("mariadb CLI with a hash-only user: %v %q", err, out)
	}
}

// writeCert makes a self-signed certificate for 127.0.0.1 and returns the
// paths of the certificate and key files.
func writeCert(t *testing.T, rsaKey bool) (string, string) {
	t.Helper()
	var key any
	var pub any
	if rsaKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		key, pub = k, &k.PublicKey
	} else {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		key, pub = k, &k.PublicKey
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "switchyard test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}

func usersYAML(authPlugin string, requireTLS bool) string {
	return fmt.Sprintf("users:\n  - name: %s\n    password: %s\n    default_schema: %s\n    auth_plugin: %s\n    require_tls: %v\n",
		cluster.AppUser, cluster.AppPassword, cluster.Database, authPlugin, requireTLS)
}

func TestClientTLS(t *testing.T) {
	cert, key := writeCert(t, false)
	p := startProxy(t, harness.ProxyOptions{ExtraYAML: fmt.Sprintf("tls:\n  cert_file: %s\n  key_file: %s\n", cert, key) +
		usersYAML("mysql_native_password", true)})
	if err := mysql.RegisterTLSConfig("switchyard-test", &tls.Config{InsecureSkipVerify: true}); err != nil {
		t.Fatal(err)
	}
	var v string
	if err := appDB(t, p, "tls=switchyard-test").QueryRow("SELECT 'over tls'").Scan(&v); err != nil || v != "over tls" {
		t.Fatalf("query over TLS: %q %v", v, err)
	}
	// require_tls: the same user without TLS is refused with a clear error.
	err := appDB(t, p, "tls=false").Ping()
	assertMySQLError(t, err, 3159, "HY000")

	out, err := mariadbCLI(t, p, cluster.AppUser, cluster.AppPassword, "--ssl", "--ssl-verify-server-cert=0", "-e", "status")
	if err != nil || !strings.Contains(out, "Cipher in use") {
		t.Fatalf("mariadb CLI over TLS: %v\n%s", err, out)
	}
}

func TestCachingSha2Password(t *testing.T) {
	for _, withTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", withTLS), func(t *testing.T) {
			extra := usersYAML("caching_sha2_password", false)
			params := "tls=false"
			if withTLS {
				cert, key := writeCert(t, true)
				extra += fmt.Sprintf("tls:\n  cert_file: %s\n  key_file: %s\n", cert, key)
				_ = mysql.RegisterTLSConfig("switchyard-sha2", &tls.Config{InsecureSkipVerify: true})
				params = "tls=switchyard-sha2"
			}
			p := startProxy(t, harness.ProxyOptions{ExtraYAML: extra})
			// The first login is a full authentication (the password over
			// TLS, or RSA-encrypted with the proxy's key); later ones take
			// the fast path. Both must work and reach the server.
			for i := range 3 {
				db := appDB(t, p, params)
				var u string
				if err := db.QueryRow("SELECT CURRENT_USER()").Scan(&u); err != nil || !strings.HasPrefix(u, cluster.AppUser+"@") {
					t.Fatalf("login %d: %q %v", i, u, err)
				}
				db.Close()
			}
			err := openDB(t, p, cluster.AppUser, "wrong", "", params).Ping()
			assertMySQLError(t, err, 1045, "28000")
			logs := p.Logs()
			if !strings.Contains(logs, "client logged in") {
				t.Fatalf("no login in the proxy log")
			}
		})
	}
}

// TestLargeResultStreams checks that a 300 MB result passes through without
// the proxy holding it: its peak RSS grows by far less than the result.
func TestLargeResultStreams(t *testing.T) {
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info"})
	db := appDB(t, p, "")
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	peakBefore := procStatusKB(t, p.PID(), "VmHWM")
	const rowsWanted, rowSize = 300, 1 << 20
	rows, err := db.Query(fmt.Sprintf("SELECT seq, REPEAT('x', %d) FROM seq_1_to_%d", rowSize, rowsWanted))
	if err != nil {
		t.Fatal(err)
	}
	var total, count int
	for rows.Next() {
		var seq int
		var payload sql.RawBytes
		if err := rows.Scan(&seq, &payload); err != nil {
			t.Fatal(err)
		}
		total += len(payload)
		count++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if count != rowsWanted || total != rowsWanted*rowSize {
		t.Fatalf("got %d rows, %d bytes; want %d rows, %d bytes", count, total, rowsWanted, rowsWanted*rowSize)
	}
	growthMB := float64(procStatusKB(t, p.PID(), "VmHWM")-peakBefore) / 1024
	t.Logf("300 MB result: proxy peak RSS grew %.1f MB", growthMB)
	if growthMB >= 64 {
		t.Fatalf("proxy peak RSS grew %.1f MB for a 300 MB result; want < 64 MB (results must stream)", growthMB)
	}
}

// TestClientDisconnectMidResult kills a client while a large result is
// streaming: the proxy must close the server connection too, and keep
// serving others.
func TestClientDisconnectMidResult(t *testing.T) {
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info"})
	before := serverConnections(t, cluster.AppUser)

	host, port, _ := strings.Cut(p.Addr(), ":")
	cmd := exec.Command("mariadb", "--no-defaults", "-h", host, "-P", port, "-u", cluster.AppUser, "-p"+cluster.AppPassword,
		"--quick", "-e", "SELECT seq, REPEAT('y', 100000) FROM seq_1_to_100000")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Read some of the result, then kill the client without a goodbye.
	if _, err := io.ReadFull(stdout, make([]byte, 2<<20)); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()

	eventually(t, 20*time.Second, "the server connection of the killed client to close", func() bool {
		return serverConnections(t, cluster.AppUser) <= before
	})
	var one int
	if err := appDB(t, p, "").QueryRow("SELECT 1").Scan(&one); err != nil {
		t.Fatalf("proxy unusable after a client vanished mid-result: %v", err)
	}
}

// TestHostileClients sends what a broken or hostile client might: nothing
// at all, garbage, truncated packets, a packet over the limit. Each gets a
// clear error or a closed connection; the proxy keeps serving.
func TestHostileClients(t *testing.T) {
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: "limits:\n  handshake_timeout: 500ms\n  max_packet_size: 1MiB\n"})

	// Silent client: dropped after the handshake timeout.
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	_, err = io.Copy(io.Discard, c) // the greeting, then EOF when the proxy gives up
	c.Close()
	if err != nil {
		t.Fatalf("silent client: %v (the proxy did not close it)", err)
	}
	t.Logf("silent client closed after %v", time.Since(start).Round(time.Millisecond))

	// Garbage and truncated packets in place of the login.
	for _, junk := range [][]byte{
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		{0xff, 0xff, 0xff, 0x01, 1, 2, 3},
		{5, 0, 0, 1, 0x85, 0xa6},
		{40, 0, 0, 1, 0x0d, 0xa6, 0xff, 0x01, 0, 0, 0, 1, 33},
	} {
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(junk); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Fatalf("junk %q: proxy did not close the connection: %v", junk, err)
		}
		c.Close()
	}

	// A statement bigger than limits.max_packet_size: error 1153, then the
	// connection closes, as with a server's max_allowed_packet.
	db := appDB(t, p, "")
	db.SetMaxOpenConns(1)
	_, err = db.Exec("SELECT '" + strings.Repeat("a", 2<<20) + "'")
	assertMySQLError(t, err, 1153, "08S01")

	var one int
	if err := appDB(t, p, "").QueryRow("SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("proxy unusable after hostile clients: %v", err)
	}
	if !strings.Contains(p.Logs(), "did not finish the handshake") {
		t.Errorf("handshake timeout not logged")
	}
}

// proxyGoroutines reads the proxy's goroutine count from its pprof endpoint.
func proxyGoroutines(t *testing.T, pprofAddr string) int {
	t.Helper()
	resp, err := http.Get("http://" + pprofAddr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var n int
	if _, err := fmt.Fscanf(resp.Body, "goroutine profile: total %d", &n); err != nil {
		t.Fatalf("reading the goroutine count: %v", err)
	}
	return n
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestNoServerConnectionLeak(t *testing.T) {
	pprofAddr := freeAddr(t)
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", Args: []string{"--pprof", pprofAddr}})
	before := serverConnections(t, cluster.AppUser)
	eventually(t, 10*time.Second, "the pprof endpoint", func() bool {
		c, err := net.Dial("tcp", pprofAddr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	goroutinesBefore := proxyGoroutines(t, pprofAddr)
	db := appDB(t, p, "")
	db.SetMaxIdleConns(50)
	ctx := context.Background()
	var conns []*sql.Conn
	for range 50 {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.PingContext(ctx); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// Idle clients hold no server connection: between statements they go
	// back to the pool, which the 50 sessions share.
	if n := serverConnections(t, cluster.AppUser); n > before+2 {
		t.Fatalf("%d server sessions on the primary with 50 idle clients (%d before); want the pool to share them", n, before)
	}
	for _, c := range conns {
		c.Close()
	}
	db.Close()
	// The pool closes idle connections after pool.idle_timeout (1s here).
	eventually(t, 10*time.Second, "server sessions to return to their count before the test", func() bool {
		return serverConnections(t, cluster.AppUser) <= before
	})
	eventually(t, 10*time.Second, "the proxy's goroutines to return to their count before the test", func() bool {
		return proxyGoroutines(t, pprofAddr) <= goroutinesBefore
	})
}

func TestGracefulShutdownLetsTransactionFinish(t *testing.T) {
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", ExtraYAML: "limits:\n  shutdown_timeout: 20s\n"})
	db := appDB(t, p, "")
	mustExec(t, db, "CREATE TABLE IF NOT EXISTS shutdown_tx (id INT PRIMARY KEY)")
	mustExec(t, db, "DELETE FROM shutdown_tx")
	idle := appDB(t, p, "")
	if err := idle.Ping(); err != nil {
		t.Fatal(err)
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("INSERT INTO shutdown_tx VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The idle client is let go; the transaction may still finish.
	eventually(t, 10*time.Second, "the proxy to log that it is shutting down", func() bool {
		return strings.Contains(p.Logs(), "shutting down")
	})
	if _, err := tx.Exec("INSERT INTO shutdown_tx VALUES (2)"); err != nil {
		t.Fatalf("statement in an open transaction during shutdown: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("commit during shutdown: %v", err)
	}
	select {
	case <-p.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("proxy did not exit after the last transaction ended")
	}
	direct, err := cluster.Primary.DB(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	var n int
	if err := direct.QueryRow("SELECT COUNT(*) FROM " + cluster.Database + ".shutdown_tx").Scan(&n); err != nil || n != 2 {
		t.Fatalf("committed rows on the primary: %d (%v), want 2", n, err)
	}
}

// TestBackendTLS runs a MariaDB server that has TLS on and a proxy with
// backend_tls verifying its certificate: the proxy's server sessions are
// encrypted. SHOW STATUS describes the client's own TLS session, as
// directly: a plain client is not told it is encrypted because the proxy's
// server connection is, and a TLS client sees the protocol and cipher it
// negotiated, named as MariaDB names them.
func TestBackendTLS(t *testing.T) {
	cert, key := writeCert(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := harness.StartCluster(ctx, harness.ClusterOptions{
		Replicas:  -1,
		ExtraArgs: []string{"--ssl-cert=" + cert, "--ssl-key=" + key, "--ssl-ca=" + cert},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Minute)
	defer cancel2()
	p, err := harness.StartProxy(ctx2, harness.ProxyOptions{Binary: binary, Cluster: c, LogLevel: "info",
		ExtraYAML: fmt.Sprintf("backend_tls:\n  ca_file: %s\n  verify: true\ntls:\n  cert_file: %s\n  key_file: %s\n", cert, cert, key)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	// One TLS 1.2 suite that both Go and OpenSSL offer, so the proxy and
	// MariaDB negotiate the same with this client.
	if err := mysql.RegisterTLSConfig("switchyard-tls12", &tls.Config{InsecureSkipVerify: true,
		MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}}); err != nil {
		t.Fatal(err)
	}
	open := func(dsn string) *sql.DB {
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	status := func(db *sql.DB, what string) map[string]string {
		rows, err := db.Query("SHOW STATUS LIKE 'Ssl_%'")
		if err != nil {
			t.Fatalf("%s: %v\n%s", what, err, p.LogTail(20))
		}
		defer rows.Close()
		out := map[string]string{}
		for rows.Next() {
			var name, value string
			if err := rows.Scan(&name, &value); err != nil {
				t.Fatal(err)
			}
			out[name] = value
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	plain := open(p.DSN(c.AppUser, c.AppPassword, c.Database, ""))
	// Without the name column the proxy cannot tell the rows apart and
	// leaves the server connection's values (README, SHOW STATUS).
	var serverCipher string
	if err := plain.QueryRow("SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_cipher'").Scan(&serverCipher); err != nil {
		t.Fatalf("query through a TLS server connection: %v\n%s", err, p.LogTail(20))
	}
	if serverCipher == "" {
		t.Fatal("the proxy's server session is not encrypted")
	}
	t.Logf("server session cipher: %s", serverCipher)

	directDSN := c.Primary.DSN(c.AppUser, c.AppPassword, c.Database)
	sep := "?"
	if strings.Contains(directDSN, "?") {
		sep = "&"
	}
	directPlain := open(directDSN)
	directTLS := open(directDSN + sep + "tls=switchyard-tls12")
	proxyTLS := open(p.DSN(c.AppUser, c.AppPassword, c.Database, "tls=switchyard-tls12"))
	for _, tc := range []struct {
		what            string
		direct, proxied *sql.DB
	}{{"plain client", directPlain, plain}, {"TLS 1.2 client", directTLS, proxyTLS}} {
		want, got := status(tc.direct, tc.what+" directly"), status(tc.proxied, tc.what+" through switchyard")
		for _, v := range []string{"Ssl_cipher", "Ssl_version"} {
			if got[v] != want[v] {
				t.Errorf("%s: %s is %q through switchyard, %q directly", tc.what, v, got[v], want[v])
			}
		}
		t.Logf("%s: Ssl_cipher %q, Ssl_version %q", tc.what, got["Ssl_cipher"], got["Ssl_version"])
	}
}

// TestClientTLSCertificateReload: a certificate replaced on disk and
// reloaded (SIGHUP) is what the next client gets, while a TLS session
// opened before keeps working on the old one.
func TestClientTLSCertificateReload(t *testing.T) {
	cert, key := writeCert(t, false)
	p := startProxy(t, harness.ProxyOptions{ExtraYAML: fmt.Sprintf("tls:\n  cert_file: %s\n  key_file: %s\n", cert, key)})
	var mu sync.Mutex
	var served []byte // the leaf certificate of the last handshake
	if err := mysql.RegisterTLSConfig("switchyard-capture", &tls.Config{InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			mu.Lock()
			served = cs.PeerCertificates[0].Raw
			mu.Unlock()
			return nil
		}}); err != nil {
		t.Fatal(err)
	}
	lastServed := func() []byte {
		mu.Lock()
		defer mu.Unlock()
		return served
	}
	ctx := context.Background()
	before, err := appDB(t, p, "tls=switchyard-capture").Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	if err := before.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	first := lastServed()

	newCert, newKey := writeCert(t, false)
	for src, dst := range map[string]string{newCert: cert, newKey: key} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	reloads := strings.Count(p.Logs(), "event=reload ")
	if err := p.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the reload", func() bool { return strings.Count(p.Logs(), "event=reload ") > reloads })

	after := appDB(t, p, "tls=switchyard-capture")
	if err := after.Ping(); err != nil {
		t.Fatal(err)
	}
	if second := lastServed(); bytes.Equal(first, second) {
		t.Fatal("the next client got the old certificate after the reload")
	}
	var v string
	if err := before.QueryRowContext(ctx, "SELECT 'still here'").Scan(&v); err != nil || v != "still here" {
		t.Fatalf("the TLS session opened before the reload: %q %v", v, err)
	}
}
