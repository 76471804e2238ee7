// Package router decides where a client statement runs: it classifies SQL
// with the TiDB parser (plus a token scan for MariaDB syntax the parser
// rejects), applies query rules and hints, and picks a replica.
//
// It is pure: no I/O, no goroutines, no package-level mutable state. The
// proxy calls it once per statement and keeps the session state itself:
//
//	cache := router.NewCache(10000)          // one per process, shared
//	rules, err := router.NewRules(cfg.QueryRules)
//	bal, err := router.NewBalancer(cfg.Routing.Balance)
//
//	cl := router.NewClassifier(cache)         // one per client session
//	c := cl.Classify(sql)
//	rule, _ := rules.Match(sql, c.DigestText, user, schema)
//	d := router.Decide(&c, sess, reads, rule) // reads: user's reads, else routing.reads
//	// d.Err: answer with it. d.Target: Primary, Replica (bal.Pick over the
//	// eligible replicas) or Stay (the session's server).
//
// After running the statement the proxy updates its session from the class:
// EndsTx then StartsTx (and autocommit=0 opens a transaction with the first
// statement), Autocommit, Schema, and pins: CreatesTempTable, SetsUserVar,
// UsesLock, LockTables, Prepare hold the session on its connection;
// DropsTempTable, UnlockTables, RELEASE_ALL_LOCKS may release it. A
// CalcFoundRows read should keep its connection for the next statement, which
// is likely to be SELECT FOUND_ROWS() (Decide sends UsesFoundRows to Stay).
package router
