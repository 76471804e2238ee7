package proxy

import (
	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/firewall"
	"switchyard/router"
)

// The query firewall (firewall.mode): a session checks each statement it is
// asked to run or prepare against the allow-list before it routes it. In
// learn mode every statement runs and is recorded; in enforce mode one
// that is not on the list for the session's user is refused with
// errFirewall and sent nowhere.

// errFirewall is what a refused statement gets: ER_NOT_ALLOWED_COMMAND,
// whose SQLSTATE is 42000 (syntax error or access rule violation), the
// code ProxySQL's firewall answers with too.
func errFirewall(digest string) *mysql.MyError {
	return &mysql.MyError{Code: mysql.ER_NOT_ALLOWED_COMMAND, State: "42000",
		Message: "switchyard firewall: this statement is not on the allow-list for your user (digest " + digest + "); ask the operator to allow it"}
}

// SetFirewall installs the query firewall; nil or a firewall in mode off
// turns it off. It applies to the next statements.
func (s *Server) SetFirewall(fw *firewall.Firewall) {
	if fw != nil && fw.Mode() == firewall.Off {
		fw = nil
	}
	s.firewall.Store(fw)
}

// FirewallStats are the firewall's counters; zero with the firewall off.
func (s *Server) FirewallStats() firewall.Stats {
	if fw := s.firewall.Load(); fw != nil {
		return fw.Stats()
	}
	return firewall.Stats{}
}

// checkFirewall returns errFirewall if the firewall refuses the statement
// classified as class, whose text is sql. A string with no statement in it
// (empty, or comments only) runs nothing and is let through.
func (s *session) checkFirewall(class *router.Class, sql string) error {
	fw := s.srv.firewall.Load()
	if fw == nil || class.Statements == 0 {
		return nil
	}
	key, ok := router.FirewallKey(class, sql, s.srv.parseLimit.MaxSize())
	if !ok {
		key = "" // the firewall refuses it in enforce mode, records nothing in learn mode
	}
	user := s.c.login.User.Name
	if fw.Check(user, key) {
		return nil
	}
	s.c.Logger().Info("firewall refused a statement not on the allow-list", "digest", class.Digest, "digest_text", truncate(class.DigestText, maxSlowDigestText))
	return errFirewall(class.Digest)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
