package proxy

import (
	"context"
	"crypto/tls"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/router"
	"switchyard/wire"
)

// The client's own connection in SHOW STATUS. A server answers SHOW
// [SESSION] STATUS, and reads of information_schema.SESSION_STATUS, about
// the connection it runs on: one of the proxy's, encrypted or not by
// backend_tls, never compressed. Passed on as is, Ssl_cipher would tell a
// client on a plain connection that it is encrypted (or the reverse), and
// Compression that its compressed connection is not. So the proxy runs the
// statement, puts the client connection's own values in those rows and
// sends the result itself, as text or, for a prepared statement without
// parameters, in the binary protocol. A read that does not return both the
// name and the value column (SELECT VARIABLE_VALUE ... WHERE VARIABLE_NAME
// = 'COMPRESSION') still shows the server connection's.

// showSessionStatus runs SHOW [SESSION] STATUS, or a read of
// information_schema.SESSION_STATUS, sql on the session's connection and
// answers with the client connection's own values.
func (s *session) showSessionStatus(ctx context.Context, sql string, global bool) error {
	res, err := s.sessionStatus(ctx, sql, global)
	if err != nil {
		return err
	}
	return s.c.WriteResult(res)
}

// executeSessionStatus is showSessionStatus for a prepared statement
// without parameters, answered in the binary protocol. handled is false
// when the result has a column the text protocol's strings cannot stand
// for as they are (numbers, dates): the execution then takes its usual
// way, and the server connection's values show.
func (s *session) executeSessionStatus(ctx context.Context, sql string, global bool) (handled bool, err error) {
	res, err := s.sessionStatus(ctx, sql, global)
	if err != nil {
		return true, err
	}
	for i := range res.Columns {
		if !stringType(res.Columns[i].Type) {
			return false, nil
		}
	}
	rows := make([][]wire.Value, len(res.Rows))
	for i, row := range res.Rows {
		rows[i] = make([]wire.Value, len(row))
		for j, v := range row {
			rows[i][j] = wire.Value{Type: res.Columns[j].Type, Null: !v.Valid, Bytes: []byte(v.String)}
		}
	}
	return true, s.c.WriteBinaryResult(res.Columns, rows)
}

// sessionStatus runs sql on the session's connection and puts the client
// connection's own values in its result; with global (SHOW GLOBAL STATUS)
// only Aborted_clients, the proxy's own clients' aborts added.
func (s *session) sessionStatus(ctx context.Context, sql string, global bool) (*wire.TextResult, error) {
	res, err := s.queryOnSessionConn(ctx, sql)
	if err != nil {
		return nil, err
	}
	s.c.ownStatus(res, global)
	return res, nil
}

// stringType reports whether a column of MYSQL_TYPE t is sent as the same
// length-encoded string in the text and the binary protocol.
func stringType(t byte) bool {
	switch t {
	case mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING, mysql.MYSQL_TYPE_STRING,
		mysql.MYSQL_TYPE_TINY_BLOB, mysql.MYSQL_TYPE_MEDIUM_BLOB, mysql.MYSQL_TYPE_LONG_BLOB, mysql.MYSQL_TYPE_BLOB:
		return true
	}
	return false
}

// ownStatus replaces the values of a status result's rows that describe a
// connection's TLS session or compression by the client connection's, and
// adds the proxy's own clients' aborts to Aborted_clients (router's
// status.go); with global only the latter. The result is SHOW STATUS's
// (Variable_name, Value) or SESSION_STATUS's (VARIABLE_NAME,
// VARIABLE_VALUE).
func (c *ClientConn) ownStatus(res *wire.TextResult, global bool) {
	name, value := res.ColumnIndex("Variable_name"), res.ColumnIndex("Value")
	if name < 0 || value < 0 {
		name, value = res.ColumnIndex("VARIABLE_NAME"), res.ColumnIndex("VARIABLE_VALUE")
	}
	if name < 0 || value < 0 {
		return
	}
	aborted := c.ln.metrics.abortedSinceFlush()
	for _, row := range res.Rows {
		if strings.EqualFold(row[name].String, "aborted_clients") {
			if n, err := strconv.ParseUint(row[value].String, 10, 64); err == nil && aborted > 0 {
				row[value].String = strconv.FormatUint(n+aborted, 10)
			}
			continue
		}
		if global {
			continue
		}
		if v, ok := c.ownStatusValue(row[name].String); ok {
			row[value].String, row[value].Valid = v, true
		}
	}
}

// ownStatusValue is the value of session status variable name for this
// client connection, as MariaDB shows it, when it describes the
// connection itself: Compression, and the TLS session. What a plain
// connection shows is MariaDB's for one; an encrypted one shows its
// protocol version and cipher, in OpenSSL's names as MariaDB gives them,
// and the server's other values.
func (c *ClientConn) ownStatusValue(name string) (string, bool) {
	switch strings.ToLower(name) {
	case "compression":
		if c.caps&mysql.CLIENT_COMPRESS != 0 {
			return "ON", true
		}
		return "OFF", true
	case "ssl_cipher":
		if !c.tls {
			return "", true
		}
		return opensslCipherName(c.tlsCipher), true
	case "ssl_version":
		if !c.tls {
			return "", true
		}
		return opensslVersionName(c.tlsVersion), true
	case "ssl_cipher_list", "ssl_server_not_after", "ssl_server_not_before":
		return "", !c.tls
	case "ssl_default_timeout", "ssl_verify_depth", "ssl_verify_mode", "ssl_sessions_reused":
		return "0", !c.tls
	}
	return "", false
}

// opensslVersionName names a TLS version as OpenSSL (and so MariaDB's
// Ssl_version) does.
func opensslVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "TLSv1.3"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS10:
		return "TLSv1"
	}
	return tls.VersionName(v)
}

// opensslCipherName names a cipher suite as OpenSSL (and so MariaDB's
// Ssl_cipher) does: TLS 1.3 suites have the same name in both; the TLS 1.2
// ones Go offers are listed.
func opensslCipherName(id uint16) string {
	switch id {
	case tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256:
		return "ECDHE-RSA-AES128-GCM-SHA256"
	case tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:
		return "ECDHE-RSA-AES256-GCM-SHA384"
	case tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256:
		return "ECDHE-ECDSA-AES128-GCM-SHA256"
	case tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384:
		return "ECDHE-ECDSA-AES256-GCM-SHA384"
	case tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256:
		return "ECDHE-RSA-CHACHA20-POLY1305"
	case tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256:
		return "ECDHE-ECDSA-CHACHA20-POLY1305"
	case tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256:
		return "ECDHE-RSA-AES128-SHA256"
	case tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256:
		return "ECDHE-ECDSA-AES128-SHA256"
	case tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA:
		return "ECDHE-RSA-AES128-SHA"
	case tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA:
		return "ECDHE-RSA-AES256-SHA"
	case tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA:
		return "ECDHE-ECDSA-AES128-SHA"
	case tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA:
		return "ECDHE-ECDSA-AES256-SHA"
	case tls.TLS_RSA_WITH_AES_128_GCM_SHA256:
		return "AES128-GCM-SHA256"
	case tls.TLS_RSA_WITH_AES_256_GCM_SHA384:
		return "AES256-GCM-SHA384"
	case tls.TLS_RSA_WITH_AES_128_CBC_SHA256:
		return "AES128-SHA256"
	case tls.TLS_RSA_WITH_AES_128_CBC_SHA:
		return "AES128-SHA"
	case tls.TLS_RSA_WITH_AES_256_CBC_SHA:
		return "AES256-SHA"
	}
	return tls.CipherSuiteName(id)
}

// flushedStatus follows a statement: a FLUSH STATUS that succeeded resets
// the count of aborted clients the proxy adds to Aborted_clients, as it
// reset the server's.
func (s *session) flushedStatus(class *router.Class, sql string, ok bool) {
	if ok && (class.Kind == router.Admin || class.Statements > 1) && router.FlushesStatus(sql) {
		m := &s.c.ln.metrics
		m.abortedAtFlush.Store(m.aborted.Load())
	}
}
