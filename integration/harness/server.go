package harness

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
)

// pollInterval is short because every test pays for it on each wait; a
// readiness or catch-up check costs well under a millisecond.
const pollInterval = 15 * time.Millisecond

// errAddrInUse marks a start that failed only because another process took
// the port between our probe and the server's bind; callers may retry.
var errAddrInUse = errors.New("address already in use")

// Server is one mariadbd process with its own directory, data dir and port.
type Server struct {
	Name     string // db1, db2, ...
	ServerID int
	Port     int
	Dir      string // everything this server owns lives here
	DataDir  string
	Socket   string
	ErrorLog string

	// ReadOnly is passed as --read-only on every (re)start. It starts true
	// for replicas, like a production my.cnf where a restarted server must
	// never accept writes until something decides it is the primary; a test
	// that promotes a server and wants it writable after a restart sets it.
	ReadOnly bool
	// StartArgs are appended to the command line of the next starts, after
	// the cluster's: e.g. --init-rpl-role=SLAVE for a crashed primary that
	// a failover replaced and that restarts as a replica.
	StartArgs []string

	mariadbd     string
	rootPassword string
	extraArgs    []string

	mu     sync.Mutex
	proc   *process
	closed bool // set by Cluster.Stop; a late Start must not leak a process
}

// Addr is the server's TCP address, as the proxy config and clients need it.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// DSN returns a go-sql-driver/mysql DSN for this server over TCP.
func (s *Server) DSN(user, pass, db string) string {
	return formatDSN(s.Addr(), user, pass, db)
}

// RootPassword is the password of root@127.0.0.1.
func (s *Server) RootPassword() string { return s.rootPassword }

func formatDSN(addr, user, pass, db string) string {
	cfg := mysql.NewConfig()
	cfg.User = user
	cfg.Passwd = pass
	cfg.Net = "tcp"
	cfg.Addr = addr
	cfg.DBName = db
	return cfg.FormatDSN()
}

// DB opens a pool to this server as root@127.0.0.1 and checks that it
// answers. The caller owns the pool and must Close it.
func (s *Server) DB(ctx context.Context) (*sql.DB, error) {
	db, err := sql.Open("mysql", s.DSN("root", s.rootPassword, ""))
	if err != nil {
		return nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", s.Name, err)
	}
	return db, nil
}

// Exec runs statements in order as root on one connection, so session
// settings made by an earlier statement apply to later ones.
func (s *Server) Exec(ctx context.Context, stmts ...string) error {
	db, err := s.DB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", s.Name, err)
	}
	defer conn.Close()
	for _, q := range stmts {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %s: %w", s.Name, q, err)
		}
	}
	return nil
}

// PID is the process id of the running mariadbd, or 0 when it is not running.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil || s.proc.exited() {
		return 0
	}
	return s.proc.cmd.Process.Pid
}

// Running reports whether the mariadbd process is alive (not whether it
// accepts connections).
func (s *Server) Running() bool { return s.PID() != 0 }

// ErrorLogTail returns the last n lines of the server's error log.
func (s *Server) ErrorLogTail(n int) string { return fileTail(s.ErrorLog, n) }

func (s *Server) args() []string {
	readOnly := "OFF"
	if s.ReadOnly {
		readOnly = "ON"
	}
	args := []string{
		"--no-defaults", // must come first; nothing from /etc/mysql may leak in
		"--datadir=" + s.DataDir,
		"--port=" + strconv.Itoa(s.Port),
		"--bind-address=127.0.0.1",
		"--socket=" + s.Socket,
		"--pid-file=" + filepath.Join(s.Dir, "mariadbd.pid"),
		// Each server gets its own tmpdir: servers sharing /tmp remove each
		// other's internal temporary files (#sql-temptable-*) as leftovers,
		// which fails or crashes queries now and then.
		"--tmpdir=" + s.tmpDir(),
		"--log-error=" + s.ErrorLog,
		"--server-id=" + strconv.Itoa(s.ServerID),
		// Every server can become primary after a failover, so all of them
		// keep a binlog including what they replicate.
		"--log-bin=mariadb-bin",
		"--relay-log=relay-bin",
		"--log-slave-updates=ON",
		"--gtid-strict-mode=ON",
		"--binlog-format=ROW",
		"--read-only=" + readOnly,
		// SHOW SLAVE HOSTS on the primary then lists usable addresses.
		"--report-host=127.0.0.1",
		"--report-port=" + strconv.Itoa(s.Port),
		"--skip-name-resolve",
		// last_gtid lets the proxy learn each write's GTID for
		// read-your-writes; the rest is MariaDB's default list.
		"--session-track-system-variables=autocommit,character_set_client,character_set_connection,character_set_results,time_zone,last_gtid",
		// Debian's packaged default; --no-defaults would otherwise give latin1.
		"--character-set-server=utf8mb4",
		"--collation-server=utf8mb4_general_ci",
		"--max-allowed-packet=64M",
		"--max-connections=500",
		// Without this the IO thread notices a hung (not dead) primary only
		// after 60s, far longer than any failover test waits.
		"--slave-net-timeout=5",
		// Small and quick: CI runs many clusters on few cores.
		"--performance-schema=OFF",
		"--innodb-buffer-pool-size=32M",
		"--innodb-log-file-size=8M",
		"--innodb-log-buffer-size=4M",
		"--innodb-buffer-pool-load-at-startup=OFF",
		"--innodb-buffer-pool-dump-at-shutdown=OFF",
		// Many servers in parallel exhaust fs.aio-max-nr on CI hosts.
		"--innodb-use-native-aio=OFF",
		// Both only give up durability against an OS crash; a SIGKILLed
		// server loses nothing, which is the failure the tests inject.
		"--innodb-flush-log-at-trx-commit=2",
		"--innodb-doublewrite=OFF",
		// The default (2000) makes mariadbd ask for more open files than
		// a usual hard limit allows, and it warns on every start.
		"--table-open-cache=400",
		"--key-buffer-size=1M",
		"--aria-pagecache-buffer-size=8M",
	}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root") // mariadbd refuses to run as root otherwise
	}
	args = append(args, s.extraArgs...)
	return append(args, s.StartArgs...)
}

// Start starts mariadbd on the server's data dir and port and waits until it
// accepts root connections over TCP. A replica resumes replicating on its
// own: its master settings and GTID position are kept in the data dir.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("%s: cluster has been stopped", s.Name)
	}
	if s.proc != nil && !s.proc.exited() {
		s.mu.Unlock()
		return fmt.Errorf("%s: already running (pid %d)", s.Name, s.proc.cmd.Process.Pid)
	}
	logOffset := fileSize(s.ErrorLog)
	cmd := exec.Command(s.mariadbd, s.args()...)
	cmd.Dir = s.Dir
	// mariadbd writes to the error log; anything on stdout/stderr comes
	// before that is open (bad options), so keep it next to it.
	out, err := os.OpenFile(filepath.Join(s.Dir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	cmd.Stdout, cmd.Stderr = out, out
	proc, err := startProcess(cmd)
	out.Close()
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("%s: starting %s: %w", s.Name, s.mariadbd, err)
	}
	s.proc = proc
	s.mu.Unlock()

	if err := s.waitReady(ctx, proc, logOffset); err != nil {
		proc.kill()
		return err
	}
	return nil
}

func (s *Server) waitReady(ctx context.Context, proc *process, logOffset int64) error {
	db, err := sql.Open("mysql", s.DSN("root", s.rootPassword, ""))
	if err != nil {
		return err
	}
	defer db.Close()
	var lastErr error
	for {
		if proc.exited() {
			tail := fileTailFrom(s.ErrorLog, logOffset, 30)
			if stdout := fileTail(filepath.Join(s.Dir, "stdout.log"), 10); strings.TrimSpace(stdout) != "" {
				tail += "\n--- stdout/stderr ---\n" + stdout
			}
			err := fmt.Errorf("%s: mariadbd exited during startup (%v); error log %s:\n%s", s.Name, proc.waitErr, s.ErrorLog, tail)
			if strings.Contains(tail, "Address already in use") || strings.Contains(tail, "Bind on TCP/IP port") {
				return fmt.Errorf("%w: %w", errAddrInUse, err)
			}
			return err
		}
		pingCtx, cancel := context.WithTimeout(ctx, time.Second)
		lastErr = db.PingContext(pingCtx)
		cancel()
		if lastErr == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not ready on %s (last error: %v): %w; error log tail:\n%s",
				s.Name, s.Addr(), lastErr, ctx.Err(), fileTailFrom(s.ErrorLog, logOffset, 20))
		case <-proc.done:
		case <-time.After(pollInterval):
		}
	}
}

// Kill sends SIGKILL, as a crash would, and waits for the process to exit.
// It does nothing if the server is not running.
func (s *Server) Kill() {
	s.mu.Lock()
	proc := s.proc
	s.mu.Unlock()
	if proc != nil {
		proc.kill()
	}
}

// close kills the server for good: later Starts fail.
func (s *Server) close() {
	s.mu.Lock()
	s.closed = true
	proc := s.proc
	s.mu.Unlock()
	if proc != nil {
		proc.kill()
	}
}

// Stop shuts the server down cleanly with SIGTERM and waits for it; if ctx
// ends first the server is killed and ctx's error is returned.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	proc := s.proc
	s.mu.Unlock()
	if proc == nil || proc.exited() {
		return nil
	}
	_ = proc.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-proc.done:
		return nil
	case <-ctx.Done():
		proc.kill()
		return fmt.Errorf("%s: graceful shutdown did not finish: %w", s.Name, ctx.Err())
	}
}

// tmpDir is the server's own temporary directory, created on demand.
func (s *Server) tmpDir() string {
	d := filepath.Join(s.Dir, "tmp")
	_ = os.MkdirAll(d, 0o700)
	return d
}
