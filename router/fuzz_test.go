package router

import (
	"testing"

	"switchyard/conf"
)

func FuzzClassify(f *testing.F) {
	_, recs := readGolden(f)
	for _, r := range recs {
		f.Add(r.sql)
	}
	for _, s := range []string{"/*!", "/*M!1 SELECT", "SET STATEMENT a=1 FOR", "@@", "@'x", "`", "'\\", "-- ", "#",
		"SET STATEMENT a=(1 FOR SELECT 1) FOR SELECT 2", "CREATE PROCEDURE p() BEGIN SELECT 1; END; SELECT 2",
		"ALTER USER 'u'@'%' IDENTIFIED BY 'x', v@", "RENAME USER a TO b,", "GRANT x ON y TO z@`h", "REVOKE ALL FROM"} {
		f.Add(s)
	}
	plain := NewClassifier(nil)
	shared := NewClassifier(NewCache(256))
	f.Fuzz(func(t *testing.T, sql string) {
		c := plain.Classify(sql)
		if c.Unparsed && c.Route != Primary {
			t.Fatalf("unparsed but routed to %s", c.Route)
		}
		if c.Route != Primary && c.Route != Replica || c.Kind >= numKinds || c.Hint == Stay {
			t.Fatalf("bad class %+v", c)
		}
		if c.Route == Replica && !c.ReplicaSafe() && c.Kind != BeginReadOnly {
			t.Fatalf("class route replica but not replica-safe: %s %s", c.Kind, c.Flags())
		}
		// One text through a fresh cache: miss, digest hit, exact hit.
		own := NewClassifier(NewCache(16))
		for range 3 {
			if cc := own.Classify(sql); !sameClass(c, cc) {
				t.Fatalf("cached class differs:\n %+v\n %+v", c, cc)
			}
		}
		// Through a cache shared with other inputs: a digest hit may come
		// from another text, which must not change the class.
		if cc := shared.Classify(sql); !sameClass(c, cc) && c.Unparsed == cc.Unparsed {
			t.Fatalf("digest-shared class differs (%q):\n %s %s %s\n %s %s %s", c.DigestText,
				c.Route, c.Kind, c.Flags(), cc.Route, cc.Kind, cc.Flags())
		}
		// The scan of statements too big to parse: never less conservative
		// than the parser where the parser reads the statement.
		scan := scanClassify(sql)
		scan.Hint = c.Hint
		if scan.Route == Replica && !scan.ReplicaSafe() && scan.Kind != BeginReadOnly {
			t.Fatalf("scan: route replica but not replica-safe: %s %s", scan.Kind, scan.Flags())
		}
		if err := conservative(scan, c); err != nil && !c.Unparsed {
			t.Fatalf("scan: %v", err)
		}
		// Each account a reset names takes at least one byte of the text.
		if r := PasswordErrorResets(sql); len(r.Accounts)+len(r.Renamed) > len(sql) {
			t.Fatalf("%d accounts from %d bytes", len(r.Accounts)+len(r.Renamed), len(sql))
		}
		for _, s := range []Session{{}, {InTx: true}, {Pinned: true, OnReplica: true}, {AutocommitOff: true}} {
			d := Decide(&c, s, conf.ReadsPrimary, nil)
			if d.Target == Replica && !c.ReplicaSafe() && c.Kind != BeginReadOnly {
				t.Fatalf("decided replica for %s %s", c.Kind, c.Flags())
			}
		}
	})
}
