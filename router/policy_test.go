package router

import (
	"testing"

	"switchyard/conf"
)

func TestReadYourWrites(t *testing.T) {
	replicaRead := Decision{Target: Replica, Reason: ByClass}
	up := func() bool { return true }
	down := func() bool { return false }
	written := Session{HasWritten: true, LastGTID: "0-1-7"}
	// Others wrote after the session: the user's or everyone's position.
	othersWrote := Session{HasWritten: true, LastGTID: "0-1-7", MustSee: "0-1-9,1-2-3"}
	tests := []struct {
		name     string
		d        Decision
		s        Session
		mode     string
		primary  func() bool
		want     Target
		by       Reason
		needGTID string
	}{
		{"no write yet", replicaRead, Session{}, conf.RYWSession, up, Replica, ByClass, ""},
		{"written, GTID known: a replica that has it", replicaRead, written, conf.RYWSession, up, Replica, ByClass, "0-1-7"},
		{"written, no GTID: primary", replicaRead, Session{HasWritten: true}, conf.RYWSession, up, Primary, ByReadYourWrites, ""},
		{"written, no GTID, no primary: replica beats an error", replicaRead, Session{HasWritten: true}, conf.RYWSession, down, Replica, ByClass, ""},
		{"default mode is session", replicaRead, Session{HasWritten: true}, "", up, Primary, ByReadYourWrites, ""},
		{"off", replicaRead, Session{HasWritten: true}, conf.RYWOff, up, Replica, ByClass, ""},
		{"off ignores others' writes", replicaRead, othersWrote, conf.RYWOff, up, Replica, ByClass, ""},
		{"session ignores others' writes", replicaRead, othersWrote, conf.RYWSession, up, Replica, ByClass, "0-1-7"},
		{"session, no write: nothing to wait for", replicaRead, Session{MustSee: "0-1-9"}, conf.RYWSession, up, Replica, ByClass, ""},
		{"user: the user's writes", replicaRead, othersWrote, conf.RYWUser, up, Replica, ByClass, "0-1-9,1-2-3"},
		{"global: everyone's writes", replicaRead, othersWrote, conf.RYWGlobal, up, Replica, ByClass, "0-1-9,1-2-3"},
		{"global, the session never wrote", replicaRead, Session{MustSee: "0-1-9"}, conf.RYWGlobal, up, Replica, ByClass, "0-1-9"},
		{"global, nothing written anywhere", replicaRead, Session{}, conf.RYWGlobal, up, Replica, ByClass, ""},
		{"global, own write not in the position yet", replicaRead, Session{HasWritten: true, LastGTID: "0-1-12", MustSee: "0-1-9,1-2-3"}, conf.RYWGlobal, up, Replica, ByClass, "0-1-12,1-2-3"},
		{"global, own write without GTID: primary", replicaRead, Session{HasWritten: true, MustSee: "0-1-9"}, conf.RYWGlobal, up, Primary, ByReadYourWrites, ""},
		{"user, own write without GTID, no primary", replicaRead, Session{HasWritten: true, MustSee: "0-1-9"}, conf.RYWUser, down, Replica, ByClass, ""},
		{"a hint wins", Decision{Target: Replica, Reason: ByHint}, Session{HasWritten: true}, conf.RYWSession, up, Replica, ByHint, ""},
		{"a hint wins under global", Decision{Target: Replica, Reason: ByHint}, othersWrote, conf.RYWGlobal, up, Replica, ByHint, ""},
		{"a rule wins", Decision{Target: Replica, Reason: ByRule}, Session{HasWritten: true}, conf.RYWSession, up, Replica, ByRule, ""},
		{"primary stays primary", Decision{Target: Primary, Reason: ByClass}, Session{HasWritten: true}, conf.RYWSession, up, Primary, ByClass, ""},
		{"stay stays", Decision{Target: Stay, Reason: ByTransaction}, othersWrote, conf.RYWGlobal, up, Stay, ByTransaction, ""},
	}
	for _, tc := range tests {
		asked := false
		d := ReadYourWrites(tc.d, tc.s, tc.mode, func() bool { asked = true; return tc.primary() })
		if d.Target != tc.want || d.Reason != tc.by || d.NeedGTID != tc.needGTID {
			t.Errorf("%s: got %v by %v need %q, want %v by %v need %q", tc.name, d.Target, d.Reason, d.NeedGTID, tc.want, tc.by, tc.needGTID)
		}
		if asked && (tc.s.LastGTID != "" || !tc.s.HasWritten) {
			t.Errorf("%s: asked for the primary when it could not matter", tc.name)
		}
	}
}

func TestForCursor(t *testing.T) {
	d := Decision{Target: Replica, Reason: ByClass, NeedGTID: "0-1-1"}
	if got := ForCursor(d); got.Target != Primary || got.Reason != ByCursor || got.NeedGTID != "" {
		t.Errorf("a replica read: %+v, want the primary", got)
	}
	// A write on a session pinned to a replica: Decide said Primary, and a
	// cursor must not turn that into Stay (the replica).
	write := Decision{Target: Primary, Reason: ByPin}
	if got := ForCursor(write); got != write {
		t.Errorf("a primary decision changed: %+v", got)
	}
	stay := Decision{Target: Stay, Reason: ByTransaction}
	if got := ForCursor(stay); got != stay {
		t.Errorf("a transaction's statement moved: %+v", got)
	}
	rejected := Decision{Err: &RuleError{Rule: "r", Message: "no"}, Reason: ByRuleError}
	if got := ForCursor(rejected); got.Err == nil || got.Target != NoTarget {
		t.Errorf("a rejected statement was routed: %+v", got)
	}
}

func TestFallbackToPrimary(t *testing.T) {
	tests := []struct {
		fallback bool
		need     string
		want     bool
	}{
		{true, "", true},
		{false, "", false},
		{false, "0-1-5", true}, // it must see writes the replicas lack: read-your-writes
		{true, "0-1-5", true},
	}
	for _, tc := range tests {
		if got := FallbackToPrimary(Decision{Target: Replica, NeedGTID: tc.need}, tc.fallback); got != tc.want {
			t.Errorf("fallback %v need %q: %v, want %v", tc.fallback, tc.need, got, tc.want)
		}
	}
}

func TestRequireGTID(t *testing.T) {
	cands := []Candidate{
		{ID: 1, Weight: 100, GTID: "0-1-10"},
		{ID: 2, Weight: 100, GTID: "0-1-9"},
		{ID: 3, Weight: 0, GTID: "0-1-12"},
		{ID: 4, Weight: 50, GTID: ""},
		{ID: 5, Weight: 50, GTID: "1-1-99,0-2-11"},
		{ID: 6, Weight: 50, GTID: "0-1-2", Reached: "0-1-10"}, // a read waited there for 0-1-10
	}
	RequireGTID(cands, "")
	if cands[1].Weight != 100 || cands[3].Weight != 50 {
		t.Fatalf("no GTID needed, yet weights changed: %+v", cands)
	}
	RequireGTID(cands, "0-1-10")
	want := []int{100, 0, 0, 0, 50, 50}
	for i, c := range cands {
		if c.Weight != want[i] {
			t.Errorf("replica %d (position %q, reached %q): weight %d, want %d", c.ID, c.GTID, c.Reached, c.Weight, want[i])
		}
	}
	b, _ := NewBalancer(conf.BalanceRoundRobin)
	for range 10 {
		if i, ok := b.Pick(cands, -1); !ok || (cands[i].ID != 1 && cands[i].ID != 5 && cands[i].ID != 6) {
			t.Fatalf("picked %+v, which lacks the write", cands[i])
		}
	}
	// A position of several domains: every one must be covered.
	RequireGTID(cands, "0-1-10,1-1-50")
	want = []int{0, 0, 0, 0, 50, 0}
	for i, c := range cands {
		if c.Weight != want[i] {
			t.Errorf("needing two domains, replica %d (position %q, reached %q): weight %d, want %d", c.ID, c.GTID, c.Reached, c.Weight, want[i])
		}
	}
}

func TestRetryElsewhere(t *testing.T) {
	cl := NewClassifier(nil)
	read := cl.Classify("SELECT * FROM t")
	lockRead := cl.Classify("SELECT GET_LOCK('a', 1)")
	write := cl.Classify("UPDATE t SET a = 1")
	tests := []struct {
		name  string
		d     Decision
		c     Class
		wrote bool
		want  bool
	}{
		{"replica read, nothing sent", Decision{Target: Replica}, read, false, true},
		{"replica read, half sent", Decision{Target: Replica}, read, true, false},
		{"primary read", Decision{Target: Primary}, read, false, false},
		{"stay", Decision{Target: Stay}, read, false, false},
		{"hinted read with side effects", Decision{Target: Replica}, lockRead, false, false},
		{"a write never", Decision{Target: Replica}, write, false, false},
	}
	for _, tc := range tests {
		if got := RetryElsewhere(tc.d, &tc.c, tc.wrote); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestNextReplica(t *testing.T) {
	if ex, ok := NextReplica(-1, 3); !ok || ex != 3 {
		t.Errorf("first failure: %d %v, want to exclude 3 and try again", ex, ok)
	}
	if _, ok := NextReplica(3, 4); ok {
		t.Error("second failure: tried again")
	}
}

func TestPins(t *testing.T) {
	var ps Pins
	if ps.Any() || ps.Reason() != NoPin {
		t.Fatal("zero value pinned")
	}
	ps.Add(NoPin)
	if ps.Any() {
		t.Fatal("NoPin pinned")
	}
	ps.Add(PinTempTable)
	ps.Add(PinTempTable)
	ps.Add(PinCursor)
	saved := ps
	if !ps.Remove(PinTempTable) || !ps.Remove(PinTempTable) || ps.Remove(PinTempTable) {
		t.Fatal("temporary table pins not counted")
	}
	if ps.Reason() != PinCursor {
		t.Fatalf("reason %v, want cursor", ps.Reason())
	}
	ps.Remove(PinCursor)
	if ps.Any() {
		t.Fatal("still pinned")
	}
	if saved.Reason() != PinTempTable || saved[PinTempTable] != 2 {
		t.Fatal("a saved copy changed with the original")
	}
	for p := Pin(1); p < NumPins; p++ {
		if p.String() == "" || p.String() == "pin?" {
			t.Errorf("pin %d has no name", p)
		}
	}
}

func TestEffectsOf(t *testing.T) {
	on, off := true, false
	tests := []struct {
		sql      string
		ok       bool
		prepared bool
		want     Effects
	}{
		{"SELECT * FROM t", true, false, Effects{}},
		{"SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 1", true, false, Effects{HoldLast: true}},
		{"UPDATE t SET a = 1", true, false, Effects{HoldLast: true, Wrote: true}},
		{"UPDATE t SET a = 1", false, false, Effects{HoldLast: true}}, // failed: nothing else
		{"SELECT f(1)", true, false, Effects{Wrote: true}},            // a stored function may write
		{"CREATE TABLE x (a INT)", true, false, Effects{Wrote: true}},
		{"CREATE TEMPORARY TABLE x (a INT)", true, false, Effects{Pin: PinTempTable}},
		{"DROP TEMPORARY TABLE x", true, false, Effects{Unpin: PinTempTable}},
		{"SET @a = 1", true, false, Effects{Pin: PinUserVar}},
		{"SELECT GET_LOCK('l', 1)", true, false, Effects{Wrote: true, Pin: PinLock}},
		{"LOCK TABLES t READ", true, false, Effects{Pin: PinLockTables}},
		{"UNLOCK TABLES", true, false, Effects{Unpin: PinLockTables}},
		{"PREPARE s FROM 'SELECT 1'", true, false, Effects{Pin: PinPrepare}},
		{"DEALLOCATE PREPARE s", true, false, Effects{Unpin: PinPrepare}},
		{"SET NAMES utf8mb4", true, false, Effects{Replay: true}},
		{"SET sql_mode = ''", true, true, Effects{Pin: PinPreparedSet}},
		{"USE shop", true, false, Effects{Replay: true, Schema: "shop"}},
		{"SET autocommit = 0", true, false, Effects{Replay: true, Autocommit: &off}},
		{"SET autocommit = 1", true, false, Effects{Replay: true, Autocommit: &on}},
		{"SET autocommit = 0; SELECT 1", true, false, Effects{Pin: PinMultiStatementState, Autocommit: &off}},
		{"USE shop; SELECT 1", true, false, Effects{Pin: PinMultiStatementState, Schema: ""}},
		{"CALL p()", true, false, Effects{Wrote: true}},
	}
	cl := NewClassifier(nil)
	for _, tc := range tests {
		c := cl.Classify(tc.sql)
		got := EffectsOf(&c, tc.ok, tc.prepared)
		if (got.Autocommit == nil) != (tc.want.Autocommit == nil) ||
			got.Autocommit != nil && *got.Autocommit != *tc.want.Autocommit {
			t.Errorf("%q: autocommit %v, want %v", tc.sql, got.Autocommit, tc.want.Autocommit)
		}
		got.Autocommit, tc.want.Autocommit = nil, nil
		if got != tc.want {
			t.Errorf("%q (ok %v, prepared %v):\n got %+v\nwant %+v", tc.sql, tc.ok, tc.prepared, got, tc.want)
		}
	}
}
