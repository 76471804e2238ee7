package router

import (
	"testing"

	"switchyard/conf"
)

func TestDecide(t *testing.T) {
	cl := NewClassifier(nil)
	errRule := &Rule{Name: "no-drop", Error: "DROP is not allowed"}
	toReplica := &Rule{Name: "r", Route: Replica}
	toPrimary := &Rule{Name: "p", Route: Primary}
	const read, write = "SELECT * FROM t", "UPDATE t SET a = 1"
	tests := []struct {
		name       string
		sql        string
		s          Session
		reads      string
		rule       *Rule
		want       Target
		by         Reason
		overridden bool
	}{
		{"read", read, Session{}, "", nil, Replica, ByClass, false},
		{"write", write, Session{}, "", nil, Primary, ByClass, false},
		{"unparsed", "SELECT 1 FROM t FOR SYSTEM_TIME ALL", Session{}, "", nil, Primary, ByClass, false},
		{"reads=primary", read, Session{}, conf.ReadsPrimary, nil, Primary, ByReadsPrimary, false},
		{"reads=replicas", read, Session{}, conf.ReadsReplicas, nil, Replica, ByClass, false},
		{"error rule beats all", read, Session{InTx: true, Pinned: true}, "", errRule, NoTarget, ByRuleError, false},
		{"tx beats hint", "/* switchyard:route=replica */ " + read, Session{InTx: true}, "", nil, Stay, ByTransaction, false},
		{"tx beats rule", read, Session{InTx: true}, "", toReplica, Stay, ByTransaction, false},
		{"read-only tx on replica", read, Session{InTx: true, OnReplica: true}, "", nil, Stay, ByTransaction, false},
		{"BEGIN after read-only tx", "BEGIN", Session{InTx: true, OnReplica: true}, "", nil, Primary, ByTransaction, false},
		{"read-only BEGIN after read-only tx", "START TRANSACTION READ ONLY", Session{InTx: true, OnReplica: true}, "", nil, Stay, ByTransaction, false},
		{"pin", read, Session{Pinned: true}, "", nil, Stay, ByPin, false},
		{"pin beats hint", "/* switchyard:route=replica */ " + read, Session{Pinned: true}, "", nil, Stay, ByPin, false},
		{"write on replica pin", write, Session{Pinned: true, OnReplica: true}, "", nil, Primary, ByPin, false},
		{"autocommit=0 read", read, Session{AutocommitOff: true}, "", nil, Primary, ByAutocommit, false},
		{"autocommit=0 hint", "/* switchyard:route=replica */ " + read, Session{AutocommitOff: true}, "", nil, Primary, ByAutocommit, false},
		{"autocommit=0 read-only tx", "START TRANSACTION READ ONLY", Session{AutocommitOff: true}, "", nil, Replica, ByClass, false},
		{"found_rows stays", "SELECT FOUND_ROWS()", Session{HasServer: true}, "", nil, Stay, ByPrevious, false},
		{"found_rows fresh", "SELECT FOUND_ROWS()", Session{}, "", nil, Primary, ByClass, false},
		{"write reading ROW_COUNT() leaves a replica", "UPDATE t SET n = ROW_COUNT()", Session{HasServer: true, OnReplica: true}, "", nil, Primary, ByClass, false},
		{"show warnings stays", "SHOW WARNINGS", Session{HasServer: true, OnReplica: true}, "", nil, Stay, ByPrevious, false},
		{"hint primary", "/* switchyard:route=primary */ " + read, Session{}, "", nil, Primary, ByHint, false},
		{"hint replica", "/* switchyard:route=replica */ SELECT @@server_id", Session{}, "", nil, Replica, ByHint, false},
		{"hint cannot move a stored function", "/* switchyard:route=replica */ SELECT f(1)", Session{}, "", nil, Primary, ByHint, true},
		{"hint cannot move a qualified stored function", "/* switchyard:route=replica */ SELECT s.f(1)", Session{}, "", nil, Primary, ByHint, true},
		{"hint cannot move EXECUTE IMMEDIATE", "/* switchyard:route=replica */ EXECUTE IMMEDIATE 'SELECT 1'", Session{}, "", nil, Primary, ByHint, true},
		{"hint cannot move a write after a read", "/* switchyard:route=replica */ SELECT 1; DELETE FROM t", Session{}, "", nil, Primary, ByHint, true},
		{"hint cannot move a KILL after a read", "/* switchyard:route=replica */ SELECT 1; KILL 5", Session{}, "", nil, Primary, ByHint, true},
		{"hint cannot move a version comment", "/* switchyard:route=replica */ SELECT 1 /*M!100000 , f(1) */", Session{}, "", nil, Primary, ByHint, true},
		{"hint may move reads", "/* switchyard:route=replica */ SELECT 1; SHOW TABLES", Session{}, "", nil, Replica, ByHint, false},
		{"rule cannot move a stored function", "SELECT f(1)", Session{}, "", toReplica, Primary, ByRule, true},
		{"hint replica beats reads=primary", "/* switchyard:route=replica */ " + read, Session{}, conf.ReadsPrimary, nil, Replica, ByHint, false},
		{"hint beats rule", "/* switchyard:route=primary */ " + read, Session{}, "", toReplica, Primary, ByHint, false},
		{"hint cannot move a write", "/* switchyard:route=replica */ " + write, Session{}, "", nil, Primary, ByHint, true},
		{"hint cannot move GET_LOCK", "/* switchyard:route=replica */ SELECT GET_LOCK('a', 1)", Session{}, "", nil, Primary, ByHint, true},
		{"hint cannot move @a:=", "/* switchyard:route=replica */ SELECT @a := 1", Session{}, "", nil, Primary, ByHint, true},
		{"hint may move FOR UPDATE", "/* switchyard:route=replica */ SELECT * FROM t FOR UPDATE", Session{}, "", nil, Replica, ByHint, false},
		{"hint cannot move unparsed read", "/* switchyard:route=replica */ SELECT * FROM t LIMIT 1 ROWS EXAMINED 10", Session{}, "", nil, Primary, ByHint, true},
		{"hint cannot move unparsed write", "/* switchyard:route=replica */ DELETE FROM t RETURNING id", Session{}, "", nil, Primary, ByHint, true},
		{"rule replica", "SELECT @a", Session{}, "", toReplica, Replica, ByRule, false},
		{"rule primary", read, Session{}, "", toPrimary, Primary, ByRule, false},
		{"rule cannot move a write", write, Session{}, "", toReplica, Primary, ByRule, true},
		{"rule replica beats reads=primary", read, Session{}, conf.ReadsPrimary, toReplica, Replica, ByRule, false},
	}
	for _, tc := range tests {
		c := cl.Classify(tc.sql)
		d := Decide(&c, tc.s, tc.reads, tc.rule)
		if d.Target != tc.want || d.Reason != tc.by || d.Overridden != tc.overridden || (d.Err != nil) != (tc.by == ByRuleError) {
			t.Errorf("%s: got %s by %s overridden=%v err=%v; want %s by %s overridden=%v",
				tc.name, d.Target, d.Reason, d.Overridden, d.Err, tc.want, tc.by, tc.overridden)
		}
	}
	c := cl.Classify("DROP TABLE t")
	if d := Decide(&c, Session{}, "", errRule); d.Err == nil || d.Err.Error() != "DROP is not allowed" || d.Err.Rule != "no-drop" {
		t.Errorf("error rule: %+v", d)
	}
}

// TestAnyServer: statements that only change replayed session state may run
// on any server while there is no primary; nothing else may.
func TestAnyServer(t *testing.T) {
	cl := NewClassifier(nil)
	for sql, want := range map[string]bool{
		"SET NAMES utf8mb4":             true,
		"SET SESSION sql_mode = ''":     true,
		"USE shop":                      true,
		"SET @a = 1":                    false,
		"SET autocommit = 0":            false,
		"SET GLOBAL read_only = 1":      false,
		"SET NAMES utf8mb4; SET @a = 1": false,
		"INSERT INTO t VALUES (1)":      false,
		"BEGIN":                         false,
	} {
		c := cl.Classify(sql)
		if d := Decide(&c, Session{}, "", nil); d.AnyServer != want {
			t.Errorf("%s: AnyServer %v, want %v (%+v)", sql, d.AnyServer, want, d)
		}
	}
	c := cl.Classify("SET NAMES utf8mb4")
	if d := Decide(&c, Session{InTx: true}, "", nil); d.AnyServer {
		t.Errorf("inside a transaction: %+v", d)
	}
}
