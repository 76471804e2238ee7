package proxy

import (
	"context"
	"log/slog"
	"net"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/backend"
	"switchyard/router"
	"switchyard/wire"
)

// Accounts from the servers (users_from_servers). The proxy reads the
// servers' mysql_native_password accounts with the monitor account and
// accepts their clients itself, as if they were listed under users: (a
// listed user wins). It needs no secret beyond the hash: a
// mysql_native_password answer reveals SHA1(password) to whoever knows
// SHA1(SHA1(password)), and that is what the server login needs.
//
// The accounts are read again when they are older than accountsMaxAge, and
// whenever a login names a user the last read did not have or a password
// the last read does not match, so accounts created or changed on the
// servers work at once. Reads are never concurrent: logins that need one
// while it runs wait for it or for the next, so a flood of unknown names
// costs the servers one query at a time.
//
// As MariaDB does with max_password_errors, the proxy counts each
// account's wrong passwords in a row and refuses an account that has had
// that many (ER_USER_IS_BLOCKED), whatever the password, since the
// servers never see the logins it refuses and so never count them. A good
// login resets the account's count; a FLUSH PRIVILEGES through the proxy
// resets every count, an ALTER USER (or a GRANT or REVOKE of privileges)
// the named accounts' (router.PasswordErrorResets). A read of the accounts
// keeps the counts of the accounts it still has: it is no FLUSH
// PRIVILEGES. The counts are this process's; the servers' own and other
// proxies' are apart.

// AccountSource reads the servers' accounts.
type AccountSource func(ctx context.Context) (backend.Accounts, error)

// accountsMaxAge is how long a read of the accounts serves logins of
// known users before it is refreshed.
const accountsMaxAge = time.Minute

// serverAccounts is the latest read of the servers' accounts.
type serverAccounts struct {
	load AccountSource
	log  *slog.Logger

	mu sync.Mutex
	// byName lists each user's accounts, the most specific host first, as
	// the server orders them to pick the one a client logs in as.
	byName map[string][]serverAccount
	// readAt is when the read that byName holds was started; loading is
	// closed when the read in progress ends.
	readAt  time.Time
	loading chan struct{}
	count   int

	// maxPasswordErrors is the servers' max_password_errors at the last
	// read; 0: no limit.
	maxPasswordErrors uint64
	// passwordErrors counts the wrong passwords in a row of accounts of
	// the last read (no others: its size is bounded by theirs); an
	// account without an entry has none.
	passwordErrors map[accountID]uint64
}

type serverAccount struct {
	host hostPattern
	user *User // nil: an account the proxy cannot check a login for
}

// accountID names one of the servers' accounts: the user and the host
// pattern, in lower case, as MariaDB compares host names.
type accountID struct{ user, host string }

func newServerAccounts(load AccountSource, log *slog.Logger) *serverAccounts {
	if load == nil {
		return nil
	}
	return &serverAccounts{load: load, log: log}
}

// find returns the accounts of user name that a client at addr may use,
// the most specific host first (none: nil), from a read of the accounts
// started no earlier than notBefore (the zero time: any read younger than
// accountsMaxAge).
func (a *serverAccounts) find(ctx context.Context, name, addr string, notBefore time.Time) []*User {
	if a == nil || name == "" {
		return nil
	}
	if notBefore.IsZero() {
		notBefore = time.Now().Add(-accountsMaxAge)
	}
	if !a.readSince(ctx, notBefore) {
		return nil
	}
	host, ip := clientHost(addr), clientIP(addr)
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.match(name, host, ip)
}

// readSince makes sure the accounts were read by a read started no earlier
// than notBefore: it waits for one in progress, or reads them itself. A
// read that fails leaves the previous one serving. It is false when ctx
// ended first.
func (a *serverAccounts) readSince(ctx context.Context, notBefore time.Time) bool {
	if a == nil {
		return true
	}
	for {
		a.mu.Lock()
		if !a.readAt.Before(notBefore) {
			a.mu.Unlock()
			return true
		}
		if ch := a.loading; ch != nil {
			a.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return false
			}
		}
		ch := make(chan struct{})
		a.loading = ch
		a.mu.Unlock()
		started := time.Now()
		accts, err := a.load(ctx)
		a.mu.Lock()
		a.loading = nil
		if err != nil {
			// The previous read goes on serving; this login (and those
			// waiting) take what it has.
			a.mu.Unlock()
			close(ch)
			a.log.Warn("reading the servers' accounts failed", "err", err)
			return true
		}
		a.byName, a.count = indexAccounts(accts.List)
		a.readAt = started
		a.maxPasswordErrors = accts.MaxPasswordErrors
		for id := range a.passwordErrors {
			if !a.has(id) {
				delete(a.passwordErrors, id)
			}
		}
		n := a.count
		a.mu.Unlock()
		close(ch)
		a.log.Debug("read the servers' accounts", "accounts", n)
		return true
	}
}

// match is find's lookup in the current read; a.mu is held. A name with
// no account for the client's host falls back to the anonymous accounts
// (the empty user name at a host pattern), as on MariaDB; the proxy then logs in to the servers with the
// name the client gave, and the server makes the same choice.
func (a *serverAccounts) match(name, host, ip string) []*User {
	var users []*User
	matched := false
	for _, acct := range a.byName[name] {
		if acct.host.matches(host, ip) {
			matched = true
			if acct.user != nil {
				users = append(users, acct.user)
			}
		}
	}
	if matched {
		return users
	}
	for _, acct := range a.byName[""] {
		if acct.host.matches(host, ip) {
			u := *acct.user
			u.Name = name
			users = append(users, &u)
		}
	}
	return users
}

// indexAccounts keeps the accounts the proxy can check a login for:
// mysql_native_password with an empty password or a hash, and
// mysql_old_password with an empty password or a 16-digit hash (legacy
// accounts, let in only while the servers' @@secure_auth is OFF),
// anonymous ones (the empty user name) included. Others (unix_socket,
// ed25519, roles) are left out: their clients get access denied, as if
// the account did not exist.
func indexAccounts(accts []backend.Account) (map[string][]serverAccount, int) {
	byName := make(map[string][]serverAccount)
	n := 0
	for _, acct := range accts {
		if acct.Host == "" { // a role
			continue
		}
		host := parseHostPattern(acct.Host)
		id := accountID{user: acct.User, host: host.pattern}
		ignores := acct.ConnectionAdmin && isLocalHost(host.pattern)
		if acct.Plugin == mysql.AUTH_MYSQL_OLD_PASSWORD {
			u, ok := oldPasswordUser(acct)
			if ok {
				u.account, u.ignoresPasswordErrors = id, ignores
				n++
			}
			byName[acct.User] = append(byName[acct.User], serverAccount{host: host, user: u})
			continue
		}
		u := User{Name: acct.User, PasswordHash: acct.AuthString, fromServer: true, account: id, ignoresPasswordErrors: ignores}
		if acct.Plugin != "" && acct.Plugin != mysql.AUTH_NATIVE_PASSWORD ||
			acct.AuthString != "" && !nativeHashRE.MatchString(acct.AuthString) || prepareUser(&u) != nil {
			// Kept without a user: the name has an account for these
			// hosts, so its clients are not anonymous ones.
			byName[acct.User] = append(byName[acct.User], serverAccount{host: host})
			continue
		}
		byName[acct.User] = append(byName[acct.User], serverAccount{host: host, user: &u})
		n++
	}
	for _, list := range byName {
		sort.SliceStable(list, func(i, j int) bool { return list[i].host.rank > list[j].host.rank })
	}
	return byName, n
}

var nativeHashRE = regexp.MustCompile(`^\*[0-9A-Fa-f]{40}$`)

// oldPasswordUser is the user of a mysql_old_password account; nil and
// false when its hash is not one (its clients are then refused, as a
// server refuses them).
func oldPasswordUser(acct backend.Account) (*User, bool) {
	u := &User{Name: acct.User, AuthPlugin: mysql.AUTH_MYSQL_OLD_PASSWORD, fromServer: true, oldRefused: acct.SecureAuth}
	if acct.AuthString == "" {
		u.empty = true
		return u, true
	}
	h, ok := wire.ParseOldPasswordHash(acct.AuthString)
	if !ok {
		return nil, false
	}
	u.oldHash = h
	return u, true
}

// isLocalHost reports whether an account's host (in lower case) is one of
// those for which MariaDB lets SUPER or CONNECTION ADMIN ignore
// max_password_errors: an administrator at the server's own machine is
// never locked out.
func isLocalHost(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// has reports whether id is an account of the last read; a.mu is held.
func (a *serverAccounts) has(id accountID) bool {
	for _, acct := range a.byName[id.user] {
		if acct.host.pattern == id.host {
			return true
		}
	}
	return false
}

// blocked reports whether u, one of the servers' accounts, has had
// max_password_errors wrong passwords in a row, so that MariaDB would
// refuse it whatever the password.
func (a *serverAccounts) blocked(u *User) bool {
	if a == nil || u == nil || !u.fromServer || u.ignoresPasswordErrors {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.maxPasswordErrors > 0 && a.passwordErrors[u.account] >= a.maxPasswordErrors
}

// passwordRefused counts a wrong password for u, one of the servers'
// accounts, as long as the account is still there.
func (a *serverAccounts) passwordRefused(u *User) {
	if a == nil || u == nil || !u.fromServer {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.has(u.account) {
		return
	}
	if a.passwordErrors == nil {
		a.passwordErrors = make(map[accountID]uint64)
	}
	a.passwordErrors[u.account]++
}

// passwordAccepted ends u's run of wrong passwords.
func (a *serverAccounts) passwordAccepted(u *User) {
	if a == nil || u == nil || !u.fromServer {
		return
	}
	a.mu.Lock()
	delete(a.passwordErrors, u.account)
	a.mu.Unlock()
}

// resetPasswordErrors follows a statement that succeeded through the
// proxy and reset MariaDB's counts of wrong passwords (FLUSH PRIVILEGES,
// ALTER USER, ...). current is the account of the session that ran it,
// for CURRENT_USER (nil: not one of the servers').
func (a *serverAccounts) resetPasswordErrors(r router.PasswordErrorReset, current *User) {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if r.All {
		clear(a.passwordErrors)
		return
	}
	for _, acct := range r.Accounts {
		delete(a.passwordErrors, accountID{user: acct.User, host: strings.ToLower(acct.Host)})
	}
	if r.CurrentUser && current != nil && current.fromServer {
		delete(a.passwordErrors, current.account)
	}
	for _, mv := range r.Renamed {
		from := accountID{user: mv.From.User, host: strings.ToLower(mv.From.Host)}
		if n, ok := a.passwordErrors[from]; ok {
			delete(a.passwordErrors, from)
			a.passwordErrors[accountID{user: mv.To.User, host: strings.ToLower(mv.To.Host)}] = n
		}
	}
}

// hostPattern is an account's host part as MariaDB matches it: a name or
// address with the wildcards % and _, or an IPv4 address/netmask.
type hostPattern struct {
	pattern string
	network *net.IPNet // address/netmask form
	// rank orders a user's accounts: exact hosts first, then patterns by
	// how much comes before their first wildcard, '%' last.
	rank int
}

func parseHostPattern(h string) hostPattern {
	p := hostPattern{pattern: strings.ToLower(h)}
	if addr, mask, ok := strings.Cut(h, "/"); ok {
		ip, m := net.ParseIP(addr).To4(), net.ParseIP(mask).To4()
		if ip != nil && m != nil {
			p.network = &net.IPNet{IP: ip.Mask(net.IPMask(m)), Mask: net.IPMask(m)}
			p.rank = 1 << 20
			return p
		}
	}
	if i := strings.IndexAny(p.pattern, "%_"); i >= 0 {
		p.rank = i
	} else {
		p.rank = 1 << 21
	}
	return p
}

// matches reports whether a client known by host name host and address ip
// may use the account. The proxy does no reverse lookups: names match only
// 'localhost' (a loopback client) and patterns that match the address.
func (p hostPattern) matches(host, ip string) bool {
	if p.network != nil {
		a := net.ParseIP(ip)
		return a != nil && p.network.Contains(a)
	}
	return wildMatch(p.pattern, strings.ToLower(host)) || (ip != "" && wildMatch(p.pattern, ip))
}

// wildMatch matches s against a LIKE-style pattern: % any run, _ one
// character, \ escapes the next. It runs in time len(pattern)*len(s),
// whatever the pattern.
func wildMatch(pattern, s string) bool {
	// ok[j]: the pattern so far matches s[:j].
	ok := make([]bool, len(s)+1)
	ok[0] = true
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		switch {
		case c == '%':
			for j := 1; j <= len(s); j++ {
				ok[j] = ok[j] || ok[j-1]
			}
			continue
		case c == '\\' && i+1 < len(pattern):
			i++
			c = pattern[i]
		case c == '_':
			for j := len(s); j >= 1; j-- {
				ok[j] = ok[j-1]
			}
			ok[0] = false
			continue
		}
		for j := len(s); j >= 1; j-- {
			ok[j] = ok[j-1] && s[j-1] == c
		}
		ok[0] = false
	}
	return ok[len(s)]
}

// clientIP is the address of a client at addr, as text.
func clientIP(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if ip := net.ParseIP(host); ip != nil {
		if v4 := ip.To4(); v4 != nil {
			return v4.String()
		}
		return ip.String()
	}
	return ""
}

// renewLogins follows a statement of the session that changed what a new
// login gets (router.Class.AffectsNewLogins): pooled server connections
// logged in before it serve no new statement (Pool.Renew), and the
// servers' accounts are read again at once, before the session reads its
// client's next command: a server's privilege cache changes with such
// statements (and FLUSH PRIVILEGES), not with edits of the mysql tables
// alone, so the proxy's view is the one the server now has even when the
// client edits the tables next (mtr sp_notembedded). A change made on a
// server directly, not through the proxy, is seen by neither until the
// connections are replaced (pool.max_lifetime) or the accounts are read
// again.
//
// sql is the statement's text; ok says it succeeded, and then the counts
// of wrong passwords it resets on the servers (FLUSH PRIVILEGES, ALTER
// USER, ...) are reset here too. A failed one resets nothing: a client
// refused FLUSH PRIVILEGES must not unblock an account.
func (s *session) renewLogins(ctx context.Context, sql string, ok bool) {
	s.srv.pool.Renew()
	s.srv.pool.PruneStale(s.c.ln.hasSessions)
	if ok && s.c.ln.accounts != nil {
		s.c.ln.accounts.resetPasswordErrors(router.PasswordErrorResets(sql), s.c.login.User)
	}
	s.c.ln.accounts.invalidate()
	s.c.ln.accounts.readSince(ctx, time.Now())
}

// pruneStaleAtEnd is called as a session ends: when it was the last of its
// user and logged in before a Renew, no session is left that may use its
// user's connections from before, and they are closed.
func (s *session) pruneStaleAtEnd() {
	user := s.c.login.User
	if user == nil || s.loginEpoch == s.srv.pool.Epoch() {
		return
	}
	s.srv.pool.PruneStale(func(name string) bool {
		// The ending session still counts until the listener lets it go.
		if name == user.Name {
			return s.c.ln.sessionsOf(name) > 1
		}
		return s.c.ln.hasSessions(name)
	})
}

// sessionsOf is how many client connections user has; hasSessions
// whether it has any. They read the users[].max_connections counts.
func (ln *Listener) sessionsOf(user string) int {
	ln.userMu.Lock()
	defer ln.userMu.Unlock()
	return ln.userConns[user]
}

func (ln *Listener) hasSessions(user string) bool { return ln.sessionsOf(user) > 0 }

// invalidate makes the next login read the accounts again.
func (a *serverAccounts) invalidate() {
	if a == nil {
		return
	}
	a.mu.Lock()
	a.readAt = time.Time{}
	a.mu.Unlock()
}

// resetsAlone reports whether a statement that succeeded may reset the
// counts of wrong passwords or of aborted clients (FLUSH PRIVILEGES, ALTER
// USER, FLUSH STATUS, ...): only one statement the parser read whole. In a
// compound statement a handler may have swallowed the refusal of a FLUSH
// PRIVILEGES the client may not run, and the text still succeeds; of
// several statements, which ran is not known.
func resetsAlone(class *router.Class) bool {
	return class.Statements == 1 && !class.Unparsed
}
