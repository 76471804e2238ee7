package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/wire"
)

// The client's own TLS session in SHOW STATUS. A server answers SHOW
// [SESSION] STATUS about the connection it runs on: one of the proxy's,
// encrypted or not by backend_tls. Passed on as is, Ssl_cipher would tell
// a client on a plain connection that it is encrypted (or the reverse), so
// the proxy runs the statement, puts the client's own TLS session in the
// Ssl_* rows and sends the result itself. The same statement prepared
// (COM_STMT_PREPARE) or a read of information_schema.SESSION_STATUS still
// shows the server connection's.

// showSessionStatus runs SHOW [SESSION] STATUS sql on the session's
// connection and answers with the client's own Ssl_* values.
func (s *session) showSessionStatus(ctx context.Context, sql string) error {
	sc, err := s.sessionConn(ctx)
	if err != nil {
		return err
	}
	res, err := sc.Query(sql)
	if err != nil {
		var me *mysql.MyError
		if errors.As(err, &me) {
			return me
		}
		return s.serverLost(sc, err, false)
	}
	s.c.ownTLSStatus(res)
	return s.c.WriteResult(res)
}

// ownTLSStatus replaces the Ssl_* rows of a SHOW STATUS result that
// describe a connection's TLS session by the client connection's.
func (c *ClientConn) ownTLSStatus(res *wire.TextResult) {
	name, value := res.ColumnIndex("Variable_name"), res.ColumnIndex("Value")
	if name < 0 || value < 0 {
		return
	}
	for _, row := range res.Rows {
		if v, ok := c.tlsStatusValue(row[name].String); ok {
			row[value].String, row[value].Valid = v, true
		}
	}
}

// tlsStatusValue is the value of session status variable name for this
// client connection, as MariaDB shows it, when it describes the
// connection's TLS session. What a plain connection shows is MariaDB's
// for one; an encrypted one shows its protocol version and cipher, in
// OpenSSL's names as MariaDB gives them, and the server's other values.
func (c *ClientConn) tlsStatusValue(name string) (string, bool) {
	switch strings.ToLower(name) {
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
