// Package conf is the switchyard config file: its schema, defaults, loading
// and validation.
//
// Loading is strict. Every problem in a file is reported at once, each with
// the file, line and key path it concerns, so an operator can fix a config in
// one pass instead of one error per restart.
package conf

import (
	"net/netip"
	"os"
	"strings"
	"time"
)

// Config is a whole config file after defaults have been applied: a field
// absent from the file holds its default, so callers never need to know
// which keys were written.
type Config struct {
	Listen     Listen      `yaml:"listen"`
	Admin      Admin       `yaml:"admin"`
	TLS        *TLS        `yaml:"tls"`         // nil: clients cannot use TLS
	BackendTLS *BackendTLS `yaml:"backend_tls"` // nil: plain connections to servers
	// UsersFromServers: also accept the servers' own mysql_native_password
	// accounts, read with the monitor account (a listed user wins).
	UsersFromServers bool        `yaml:"users_from_servers"`
	Users            []User      `yaml:"users"`
	Servers          []Server    `yaml:"servers"` // at least one
	Monitor          Monitor     `yaml:"monitor"`
	Failover         Failover    `yaml:"failover"`
	Routing          Routing     `yaml:"routing"`
	Pool             Pool        `yaml:"pool"`
	Limits           Limits      `yaml:"limits"`
	QueryRules       []QueryRule `yaml:"query_rules"` // first match wins, in file order
	Firewall         Firewall    `yaml:"firewall"`
	SlowLog          SlowLog     `yaml:"slow_log"`

	// Where each key was written, so that problems found after loading
	// (a certificate that cannot be read) can still name a line.
	file  string
	lines map[string]int
}

// Problem builds a problem about key (a path such as "tls.cert_file"),
// placed at the line where the key, or its nearest written parent, is.
func (c *Config) Problem(key, msg string) Problem {
	line := 1
	for k := key; ; {
		if l, ok := c.lines[k]; ok {
			line = l
			break
		}
		i := strings.LastIndexAny(k, ".[")
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return Problem{File: c.file, Line: line, Key: key, Msg: msg}
}

// Listen holds the addresses switchyard accepts connections on, as host:port.
// An empty host (":6033") means all interfaces.
type Listen struct {
	MySQL string `yaml:"mysql"`
	Admin string `yaml:"admin"` // "" disables the admin interface
	HTTP  string `yaml:"http"`  // "" disables /metrics, /health and /status
	// Peers in these networks may send a PROXY protocol v1/v2 header. A bare
	// address in the file becomes a single-address prefix (/32 or /128).
	ProxyProtocolNetworks []netip.Prefix `yaml:"proxy_protocol_networks"`
}

// Admin holds the credentials of the admin SQL interface.
type Admin struct {
	User     string `yaml:"user"`
	Password string `yaml:"password"` // "" is allowed; it is the operator's call
}

// TLS is client-facing TLS. CertFile and KeyFile are both set; whether the
// files exist is for the caller to find out.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	Require  bool   `yaml:"require"` // refuse clients that do not upgrade
	// MinVersion (extension, default TLS12) is the oldest TLS version
	// clients may use: TLS12 or TLS13.
	MinVersion string `yaml:"min_version"`
}

// BackendTLS is TLS from the proxy to the servers.
type BackendTLS struct {
	CAFile string `yaml:"ca_file"` // "": the system roots
	Verify bool   `yaml:"verify"`  // default true
}

// User is a client account. The same credentials are used towards the
// servers.
type User struct {
	Name string `yaml:"name"`
	// Exactly one of Password and PasswordHash was given. PasswordHash is a
	// mysql_native_password hash: '*' and 40 upper- or lower-case hex digits.
	Password      string `yaml:"password"`
	PasswordHash  string `yaml:"password_hash"`
	DefaultSchema string `yaml:"default_schema"`
	// MaxConnections 0 means unlimited.
	MaxConnections int `yaml:"max_connections"`
	// Reads overrides Routing.Reads for this user; "" means use Routing.Reads.
	Reads      string `yaml:"reads"`
	RequireTLS bool   `yaml:"require_tls"`
	// AuthPlugin (extension, key users[].auth_plugin) is the plugin the proxy
	// asks this client to authenticate with: AuthNative (default) or
	// AuthCachingSHA2. caching_sha2_password cannot be checked against a
	// mysql_native_password hash, so it requires Password.
	AuthPlugin string `yaml:"auth_plugin"`
}

// Server is a database server. Its role is discovered by the monitor.
type Server struct {
	Name           string `yaml:"name"`
	Address        string `yaml:"address"`         // host:port
	Weight         int    `yaml:"weight"`          // default 100; 0 takes no reads
	MaxConnections int    `yaml:"max_connections"` // default 1000
	// MaxReplicationLag 0 means Monitor.MaxReplicationLag applies. Written
	// values must be positive, so 0 is never ambiguous.
	MaxReplicationLag time.Duration `yaml:"max_replication_lag"`
	Promotable        bool          `yaml:"promotable"` // default true
}

// Monitor configures the health and lag checks.
type Monitor struct {
	User     string        `yaml:"user"`
	Password string        `yaml:"password"`
	Interval time.Duration `yaml:"interval"`
	Timeout  time.Duration `yaml:"timeout"`
	// Replicas lagging more serve no reads. 0: only replicas that are fully
	// caught up serve reads.
	MaxReplicationLag time.Duration `yaml:"max_replication_lag"`
	// HeartbeatTable is "" or schema.table (identifier characters only,
	// because it is written into SQL).
	HeartbeatTable string `yaml:"heartbeat_table"`
}

// Failover configures automatic promotion.
type Failover struct {
	Auto                bool   `yaml:"auto"`
	FailureThreshold    int    `yaml:"failure_threshold"` // at least 1
	ReplicationUser     string `yaml:"replication_user"`
	ReplicationPassword string `yaml:"replication_password"`
	Cooperative         bool   `yaml:"cooperative"`
	// HoldTimeout (default 5s) is how long a statement that needs the
	// primary waits for a failover or switchover to give it one.
	HoldTimeout time.Duration `yaml:"hold_timeout"`
}

// Routing configures where reads go.
type Routing struct {
	Reads             string `yaml:"reads"`   // ReadsReplicas | ReadsPrimary
	Balance           string `yaml:"balance"` // Balance*
	FallbackToPrimary bool   `yaml:"fallback_to_primary"`
	// ReadYourWrites is whose acknowledged writes a read must see: RYWOff
	// (none), RYWSession (its own session's), RYWUser (its user's) or
	// RYWGlobal (everyone's).
	ReadYourWrites string `yaml:"read_your_writes"`
	// GTIDWait (default 50ms) is how long a read may wait on a replica
	// (MASTER_GTID_WAIT) for the writes it must see before it goes to the
	// primary; 0: it goes to the primary at once.
	GTIDWait time.Duration `yaml:"gtid_wait"`
	// ReadOnlyFunctions names stored functions known not to write, as
	// "name" (any schema) or "schema.name", case-insensitively. A read that
	// calls any other stored function stays on the primary, whatever a hint
	// or rule says.
	ReadOnlyFunctions []string `yaml:"read_only_functions"`
}

// Pool configures the server connection pools. Zero durations mean no limit.
type Pool struct {
	Multiplexing     bool          `yaml:"multiplexing"`
	MaxIdlePerServer int           `yaml:"max_idle_per_server"`
	IdleTimeout      time.Duration `yaml:"idle_timeout"`
	MaxLifetime      time.Duration `yaml:"max_lifetime"`
}

// Limits protects the proxy. Zero ClientIdleTimeout means no timeout; zero
// ShutdownTimeout means close at once.
type Limits struct {
	MaxClientConnections int           `yaml:"max_client_connections"`
	ClientIdleTimeout    time.Duration `yaml:"client_idle_timeout"`
	// MaxPacketSize is in bytes, between 1KiB and 1GiB like MySQL's
	// max_allowed_packet. The file may write 65536, 64MiB, 512KiB, 1GiB, or
	// KB/MB/GB, which are decimal (1MB = 1000000 bytes).
	MaxPacketSize   int64         `yaml:"max_packet_size" conf:"size"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// HandshakeTimeout (extension, default 10s) drops a client that connects
	// but does not finish the handshake, so idle sockets cannot exhaust
	// MaxClientConnections.
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`
	// ConnectTimeout (extension, default 5s) bounds dialing a server,
	// including its handshake.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// NetReadTimeout (default 30s, like MariaDB's net_read_timeout) drops a
	// client that started a packet and stalls; zero means no timeout.
	NetReadTimeout time.Duration `yaml:"net_read_timeout"`
	// MaxParseSize (default 256KiB): longer statements are classified by a
	// token scan only, never fully parsed, so a huge statement cannot cost
	// memory that is a multiple of its size.
	MaxParseSize int64 `yaml:"max_parse_size" conf:"size"`
	// MaxPreparedBytesPerSession (extension, default 64MiB) bounds the
	// statement text one session's open prepared statements hold in the
	// proxy; a prepare past it is refused.
	MaxPreparedBytesPerSession int64 `yaml:"max_prepared_bytes_per_session" conf:"size"`
}

// QueryRule routes or rejects matching statements. Exactly one of Match (an
// RE2 regexp known to compile) and Digest is set, and exactly one of Route
// and Error.
type QueryRule struct {
	Name   string `yaml:"name"`
	Match  string `yaml:"match"`
	Digest string `yaml:"digest"`
	User   string `yaml:"user"`   // "" matches every user; else a configured user
	Schema string `yaml:"schema"` // "" matches every schema
	Route  string `yaml:"route"`  // RoutePrimary | RouteReplica
	Error  string `yaml:"error"`  // non-empty message sent to the client
}

// Firewall is the query firewall: an allow-list of statement digests per
// user (see package firewall).
type Firewall struct {
	Mode string `yaml:"mode"` // FirewallOff | FirewallLearn | FirewallEnforce
	// AllowlistFile is where learn mode records digests and enforce mode
	// reads them; required unless Mode is off.
	AllowlistFile string `yaml:"allowlist_file"`
}

// SlowLog (extension) logs statements slower than Threshold: digest, user,
// server, duration and rows, never their literals at info level. Zero
// Threshold turns it off.
type SlowLog struct {
	Threshold time.Duration `yaml:"threshold"`
}

// Values of the enumerated keys.
const (
	ReadsReplicas = "replicas"
	ReadsPrimary  = "primary"

	BalanceLeastOutstanding = "least_outstanding"
	BalanceRoundRobin       = "round_robin"
	BalanceWeightedRandom   = "weighted_random"

	RYWOff     = "off"
	RYWSession = "session"
	RYWUser    = "user"
	RYWGlobal  = "global"

	RoutePrimary = "primary"
	RouteReplica = "replica"

	TLS12 = "1.2"
	TLS13 = "1.3"

	FirewallOff     = "off"
	FirewallLearn   = "learn"
	FirewallEnforce = "enforce"

	AuthNative      = "mysql_native_password"
	AuthCachingSHA2 = "caching_sha2_password"
)

// Default returns the config an empty file would give, minus the required
// servers. Defaults of list items (servers, users) are documented on their
// fields.
func Default() *Config {
	return &Config{
		Listen:   Listen{MySQL: "127.0.0.1:6033", Admin: "127.0.0.1:6032", HTTP: "127.0.0.1:6070"},
		Admin:    Admin{User: "admin"},
		Monitor:  Monitor{Interval: time.Second, Timeout: time.Second, MaxReplicationLag: 10 * time.Second},
		Failover: Failover{Auto: true, FailureThreshold: 3, Cooperative: true, HoldTimeout: 5 * time.Second},
		Routing: Routing{Reads: ReadsReplicas, Balance: BalanceLeastOutstanding,
			FallbackToPrimary: true, ReadYourWrites: RYWSession, GTIDWait: 50 * time.Millisecond},
		Pool: Pool{Multiplexing: true, MaxIdlePerServer: 64, IdleTimeout: 5 * time.Minute, MaxLifetime: time.Hour},
		Limits: Limits{MaxClientConnections: 10000, ClientIdleTimeout: 8 * time.Hour, MaxPacketSize: 64 << 20,
			ShutdownTimeout: 30 * time.Second, HandshakeTimeout: 10 * time.Second, ConnectTimeout: 5 * time.Second,
			NetReadTimeout: 30 * time.Second, MaxParseSize: 256 << 10, MaxPreparedBytesPerSession: 64 << 20},
		Firewall: Firewall{Mode: FirewallOff},
	}
}

// The decoder fills list items and optional sections from these before
// reading the file, which is how an absent boolean stays true.
func (s *Server) setDefaults()     { s.Weight, s.MaxConnections, s.Promotable = 100, 1000, true }
func (u *User) setDefaults()       { u.AuthPlugin = AuthNative }
func (b *BackendTLS) setDefaults() { b.Verify = true }
func (t *TLS) setDefaults()        { t.MinVersion = TLS12 }

// UserByName returns the user called name; the pointer aliases c.Users.
func (c *Config) UserByName(name string) (*User, bool) {
	for i := range c.Users {
		if c.Users[i].Name == name {
			return &c.Users[i], true
		}
	}
	return nil, false
}

// Load reads and parses the file at path, taking ${ENV} values from the
// process environment. Problems in the file come back as Errors naming path;
// failing to read it is an ordinary error.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, os.LookupEnv)
}
