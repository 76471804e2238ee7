package router

import "testing"

// TestBodyKillsRunAloneOrAreRefused: where a stored body ends is the
// server's to tell; BEGIN and END may be aliases and version comments may
// hide words from a server, so the token scan can take a KILL after the
// body for part of it. Whatever the scan makes of such a text, a KILL in
// it is either refused (Kills) or the text runs alone (RunAlone: the
// server then refuses what follows the first statement). Before, these
// texts were passed on with multi-statements on, and the server ran the
// KILL by its own thread id (found in review).
func TestBodyKillsRunAloneOrAreRefused(t *testing.T) {
	cl := NewClassifier(nil)
	for _, q := range []string{
		"KILL 6",
		"CREATE VIEW v AS SELECT 1; KILL 6",
		"CREATE VIEW v AS SELECT 1 AS begin; KILL 6",
		"CREATE VIEW v AS SELECT 1 /*M!999999 BEGIN */; KILL 6",
		"CREATE PROCEDURE p() BEGIN SELECT 1; END; KILL 6",
		"CREATE PROCEDURE p() BEGIN SELECT 1 /*M!999999 BEGIN */; END; KILL 6",
		"CREATE PROCEDURE p() BEGIN SELECT 1 AS begin; END; KILL 6; END",
		"CREATE PROCEDURE p() SELECT 1 AS begin; KILL 6",
		"CREATE DEFINER=CURRENT_USER VIEW v AS SELECT 1 begin; KILL QUERY 6",
		"CREATE VIEW v AS SELECT 1 AS begin; EXECUTE IMMEDIATE 'KILL 6'",
	} {
		if c := cl.Classify(q); !c.Kills && !c.RunAlone {
			t.Errorf("a KILL passes on with other statements: %q (%s)", q, c.Flags())
		}
	}
	// CONNECTION_ID() left to the server only in a text that runs alone.
	for _, q := range []string{
		"CREATE VIEW v AS SELECT 1 AS begin; SELECT CONNECTION_ID()",
		"CREATE FUNCTION f() RETURNS INT RETURN CONNECTION_ID()",
	} {
		c := cl.Classify(q)
		if RewriteConnectionID(q, 42) == q && !c.RunAlone {
			t.Errorf("CONNECTION_ID() left as it is in a text that does not run alone: %q (%s)", q, c.Flags())
		}
	}
}
