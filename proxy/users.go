package proxy

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/wire"
)

// User is a client account the proxy accepts.
type User struct {
	Name string
	// Password is the plain password; empty when only PasswordHash is known.
	Password string
	// PasswordHash is a mysql_native_password hash: '*' and 40 hex digits.
	PasswordHash  string
	DefaultSchema string
	RequireTLS    bool
	// AuthPlugin is the plugin clients are asked to use.
	AuthPlugin     string
	MaxConnections int
	// Reads overrides routing.reads for this user when not empty.
	Reads string

	stage2 []byte // SHA1(SHA1(password))
	empty  bool
	// fromServer: a server's account (users_from_servers), not listed in
	// the config; account names it (for an anonymous account's client,
	// the anonymous account), ignoresPasswordErrors says that
	// max_password_errors does not apply to it.
	fromServer            bool
	account               accountID
	ignoresPasswordErrors bool
	// oldHash is the hash of a server's account with AuthPlugin
	// mysql_old_password; oldRefused, that the servers' @@secure_auth
	// was ON at the read, so they refuse its logins.
	oldHash    wire.OldPasswordHash
	oldRefused bool
}

// oldPassword tells a server's account with a mysql_old_password.
func (u *User) oldPassword() bool { return u.AuthPlugin == mysql.AUTH_MYSQL_OLD_PASSWORD }

// userTable is an immutable snapshot of the accounts; a reload swaps it whole.
type userTable struct {
	byName map[string]*User
}

// NewUsers validates and indexes accounts.
func newUserTable(users []User) (*userTable, error) {
	t := &userTable{byName: make(map[string]*User, len(users))}
	for i := range users {
		u := users[i]
		if err := prepareUser(&u); err != nil {
			return nil, err
		}
		t.byName[u.Name] = &u
	}
	return t, nil
}

// prepareUser derives what checking a login needs from u's password or
// hash.
func prepareUser(u *User) error {
	switch {
	case u.PasswordHash != "":
		h, err := hex.DecodeString(strings.TrimPrefix(u.PasswordHash, "*"))
		if err != nil || len(h) != sha1.Size {
			return fmt.Errorf("user %q: password_hash is not a mysql_native_password hash", u.Name)
		}
		u.stage2 = h
	case u.Password != "":
		s1 := sha1.Sum([]byte(u.Password))
		s2 := sha1.Sum(s1[:])
		u.stage2 = s2[:]
	default:
		u.empty = true
	}
	return nil
}

func (t *userTable) lookup(name string) *User {
	if t == nil {
		return nil
	}
	return t.byName[name]
}

func (u *User) hasPassword() bool { return !u.empty }

// matchesPlain checks a password the client sent in the clear (over TLS or
// RSA-encrypted) against the configured password or hash.
func (u *User) matchesPlain(p []byte) bool {
	if u.Password != "" {
		return subtle.ConstantTimeCompare(p, []byte(u.Password)) == 1
	}
	s1 := sha1.Sum(p)
	s2 := sha1.Sum(s1[:])
	return subtle.ConstantTimeCompare(s2[:], u.stage2) == 1
}

// sha2Cache remembers, per account, the SHA256(SHA256(password)) of the last
// full caching_sha2_password login, and what the proxy learned of the
// password then, so a fast login can still reach the servers.
type sha2Cache struct {
	mu sync.Mutex
	m  map[string]sha2Entry
}

type sha2Entry struct {
	user   *User // the config entry it was learned for: a reload invalidates
	sha2   []byte
	plain  string
	stage1 []byte
}

func (c *sha2Cache) get(u *User) (sha2Entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[u.Name]
	return e, ok && e.user == u
}

func (c *sha2Cache) put(u *User, plain string, stage1 []byte) {
	h1 := sha256.Sum256([]byte(plain))
	h2 := sha256.Sum256(h1[:])
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]sha2Entry)
	}
	c.m[u.Name] = sha2Entry{user: u, sha2: h2[:], plain: plain, stage1: stage1}
}

// keyOnce generates the RSA key used for caching_sha2_password password
// exchange on connections without TLS, on first use: generating it costs
// tens of milliseconds that most deployments never need.
type keyOnce struct {
	once sync.Once
	key  *rsa.PrivateKey
	err  error
}

func (k *keyOnce) get() (*rsa.PrivateKey, error) {
	k.once.Do(func() {
		if k.key == nil {
			k.key, k.err = rsa.GenerateKey(rand.Reader, 2048)
		}
	})
	return k.key, k.err
}
