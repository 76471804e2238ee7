package admin

import (
	"context"
	"crypto/sha1"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"switchyard/backend"
)

// The read-only tables, filled from the live objects just before a
// statement that reads them runs.

// timeText is how the tables show a time: local, to the millisecond, as
// MySQL's DATETIME(3) reads.
func timeText(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.Format("2006-01-02 15:04:05.000")
}

// refresh refills the snapshot tables among names.
func (a *Admin) refresh(ctx context.Context, names []string) error {
	for _, name := range names {
		t := a.schema.lookup(name)
		if t == nil || t.kind != snapshot {
			continue
		}
		rows := a.snapshotRows(name)
		if err := a.replaceRows(ctx, t, rows); err != nil {
			return fmt.Errorf("refreshing %s: %w", name, err)
		}
	}
	return nil
}

// replaceRows makes rows the content of t, in one transaction.
func (a *Admin) replaceRows(ctx context.Context, t *table, rows [][]any) (err error) {
	d := a.db
	d.internal.Store(true)
	defer d.internal.Store(false)
	tx, err := d.conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if _, err = tx.ExecContext(ctx, "DELETE FROM "+t.name); err != nil {
		return err
	}
	if len(rows) == 0 {
		return tx.Commit()
	}
	var stmt *sql.Stmt
	stmt, err = tx.PrepareContext(ctx, fmt.Sprintf("INSERT INTO %s VALUES (%s)", t.name,
		strings.TrimSuffix(strings.Repeat("?, ", len(t.columns)), ", ")))
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, r := range rows {
		if _, err = stmt.ExecContext(ctx, r...); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func (a *Admin) snapshotRows(name string) [][]any {
	var rows [][]any
	switch name {
	case "runtime_servers":
		for _, s := range a.opt.Cluster.Stats() {
			var lag any
			if s.LagKnown && s.Role == backend.RoleReplica {
				lag = s.Lag.Milliseconds()
			}
			readPool := "yes"
			switch {
			case s.Role != backend.RoleReplica:
				readPool = ""
			case !s.Readable && s.Why != "":
				readPool = "no: " + s.Why
			case !s.Readable:
				readPool = "no: " + s.Status.String()
			}
			rows = append(rows, []any{s.Name, s.Address, s.Role.String(), s.Status.String(), s.Weight, s.MaxConnections, lag,
				s.GTID, timeText(s.LastCheck), s.LastError, s.MaxReplicationLag.Milliseconds(), boolInt(s.Promotable),
				readPool, s.Outstanding, s.OpenConns})
		}
	case "runtime_users":
		for _, u := range a.current().Users {
			hash := u.PasswordHash
			if hash == "" && u.Password != "" {
				hash = nativeHash(u.Password)
			}
			rows = append(rows, []any{u.Name, strings.ToUpper(hash), u.DefaultSchema, u.MaxConnections, u.Reads,
				boolInt(u.RequireTLS), u.AuthPlugin})
		}
	case "runtime_query_rules":
		for i, r := range a.current().QueryRules {
			rows = append(rows, []any{i + 1, r.Name, nullIfEmpty(r.Match), nullIfEmpty(r.Digest), nullIfEmpty(r.User),
				nullIfEmpty(r.Schema), nullIfEmpty(r.Route), nullIfEmpty(r.Error)})
		}
	case "runtime_variables":
		cfg := a.current()
		for i := range a.vars {
			v := &a.vars[i]
			text, _ := v.value(cfg)
			if v.secret() && text != "" {
				text = "********"
			}
			rows = append(rows, []any{v.key, text})
		}
	case "stats_connection_pool":
		free := map[string]int{}
		for _, k := range a.opt.Pool.KeyStats(a.opt.Cluster.Servers()) {
			free[k.Server] += k.Free
		}
		for _, s := range a.opt.Cluster.Stats() {
			rows = append(rows, []any{s.Name, s.Role.String(), s.Status.String(), max(s.OpenConns-free[s.Name], 0), free[s.Name],
				s.ConnsOpened, s.ConnErrors, s.Queries, s.BytesSent, s.BytesRecv, s.CheckLatency.Microseconds()})
		}
	case "stats_connection_pool_keys":
		for _, k := range a.opt.Pool.KeyStats(a.opt.Cluster.Servers()) {
			rows = append(rows, []any{k.Server, k.User, k.Schema, k.Used, k.Free})
		}
	case "stats_query_digest":
		for _, d := range a.opt.Data.Digests() {
			rows = append(rows, []any{d.Digest, d.Text, d.Schema, d.User, d.Route, d.Count, d.Sum.Microseconds(),
				d.Min.Microseconds(), d.Max.Microseconds(), d.Rows, timeText(d.FirstSeen), timeText(d.LastSeen)})
		}
	case "stats_commands":
		for _, c := range a.opt.Data.Commands() {
			rows = append(rows, []any{c.Command, c.Total, c.Time.Microseconds()})
		}
	case "stats_processlist":
		for _, p := range a.opt.Data.Processlist() {
			rows = append(rows, []any{p.ID, p.User, p.Schema, p.Client, p.Server, p.State, p.Time.Milliseconds(),
				nullIfEmpty(truncate(p.Info, maxInfo)), p.Pinned})
		}
	case "stats_proxy":
		c := a.opt.Data.Counters()
		for _, kv := range []struct {
			name  string
			value int64
		}{{"client_connections", c.Clients}, {"pinned_sessions", c.PinnedSessions},
			{"unparsed_statements", c.Unparsed}, {"replica_hints_ignored", c.HintsIgnored},
			{"replica_write_retries", c.ReplicaWriteRetries}} {
			rows = append(rows, []any{kv.name, kv.value})
		}
	case "events":
		for _, e := range a.opt.Cluster.Events() {
			rows = append(rows, []any{timeText(e.Time), e.Kind, e.Server, e.Detail})
		}
	}
	return rows
}

// maxInfo bounds the statement text stats_processlist shows of each
// session: statements may be as long as limits.max_packet_size.
const maxInfo = 64 << 10

// truncate cuts s to at most n bytes of valid UTF-8, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "..."
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nativeHash is a password's mysql_native_password hash, which is what the
// runtime views show instead of the password.
func nativeHash(password string) string {
	h1 := sha1.Sum([]byte(password))
	h2 := sha1.Sum(h1[:])
	return "*" + hex.EncodeToString(h2[:])
}
