package harness

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SlaveStatus returns SHOW SLAVE STATUS of s as column name -> value, or nil
// if s is not configured as a replica.
func (s *Server) SlaveStatus(ctx context.Context) (map[string]string, error) {
	db, err := s.DB(ctx)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return slaveStatus(ctx, db)
}

func slaveStatus(ctx context.Context, db *sql.DB) (map[string]string, error) {
	rows, err := db.QueryContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	if !rows.Next() {
		return nil, rows.Err()
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	st := make(map[string]string, len(cols))
	for i, c := range cols {
		st[c] = vals[i].String
	}
	return st, rows.Err()
}

// GTIDPos is a MariaDB GTID position (gtid_binlog_pos and friends): the last
// sequence number per replication domain.
type GTIDPos map[uint32]uint64

// ParseGTIDPos parses "0-1-42,1-2-7".
func ParseGTIDPos(s string) (GTIDPos, error) {
	pos := GTIDPos{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		f := strings.Split(part, "-")
		if len(f) != 3 {
			return nil, fmt.Errorf("bad GTID %q", part)
		}
		domain, err1 := strconv.ParseUint(f[0], 10, 32)
		seq, err2 := strconv.ParseUint(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("bad GTID %q", part)
		}
		pos[uint32(domain)] = seq
	}
	return pos, nil
}

// Contains reports whether p has reached other in every domain of other.
func (p GTIDPos) Contains(other GTIDPos) bool {
	for d, seq := range other {
		if p[d] < seq {
			return false
		}
	}
	return true
}

func queryString(ctx context.Context, db *sql.DB, q string) (string, error) {
	var v sql.NullString
	err := db.QueryRowContext(ctx, q).Scan(&v)
	return v.String, err
}

// WaitCaughtUp waits until each replica's IO and SQL threads run and it has
// applied everything in primary's binlog as of the call. A stopped SQL thread
// with an error fails at once, since waiting cannot fix it; IO errors are
// waited out, as the IO thread retries by itself (e.g. while the primary
// restarts).
func WaitCaughtUp(ctx context.Context, primary *Server, replicas ...*Server) error {
	pdb, err := primary.DB(ctx)
	if err != nil {
		return err
	}
	raw, err := queryString(ctx, pdb, "SELECT @@GLOBAL.gtid_binlog_pos")
	pdb.Close()
	if err != nil {
		return fmt.Errorf("%s: reading gtid_binlog_pos: %w", primary.Name, err)
	}
	target, err := ParseGTIDPos(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", primary.Name, err)
	}
	return parallel(replicas, func(r *Server) error { return waitCaughtUp(ctx, r, raw, target) })
}

func waitCaughtUp(ctx context.Context, r *Server, rawTarget string, target GTIDPos) error {
	db, err := r.DB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	var last string
	for {
		st, err := slaveStatus(ctx, db)
		switch {
		case err != nil:
			last = err.Error()
		case st == nil:
			return fmt.Errorf("%s: not configured as a replica", r.Name)
		case st["Slave_SQL_Running"] == "No" && st["Last_SQL_Error"] != "":
			return fmt.Errorf("%s: replication SQL thread stopped: %s", r.Name, st["Last_SQL_Error"])
		case st["Slave_IO_Running"] != "Yes" || st["Slave_SQL_Running"] != "Yes":
			last = fmt.Sprintf("Slave_IO_Running=%s Slave_SQL_Running=%s Last_IO_Error=%q",
				st["Slave_IO_Running"], st["Slave_SQL_Running"], st["Last_IO_Error"])
		default:
			raw, err := queryString(ctx, db, "SELECT @@GLOBAL.gtid_current_pos")
			if err != nil {
				last = err.Error()
				break
			}
			cur, err := ParseGTIDPos(raw)
			if err != nil {
				return fmt.Errorf("%s: %w", r.Name, err)
			}
			if cur.Contains(target) {
				return nil
			}
			last = fmt.Sprintf("gtid_current_pos %q, want %q", raw, rawTarget)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not caught up with the primary (%s): %w", r.Name, last, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}
