// Package router decides where a client statement runs: it classifies SQL
// with the TiDB parser (plus a token scan for MariaDB syntax the parser
// rejects), applies query rules and hints, picks a replica, and says what a
// statement that ran changes in its session.
//
// It is pure: no I/O, no goroutines, no package-level mutable state. The
// proxy keeps each session's state and asks the router, once per
// statement:
//
//	cache := router.NewCache(10000)          // one per process, shared
//	rules, err := router.NewRules(cfg.QueryRules)
//	bal, err := router.NewBalancer(cfg.Routing.Balance)
//
//	limit := router.NewParseLimit(maxParse)   // one per process, shared: limits.max_parse_size
//	cl := router.NewClassifier(cache)         // a parser: not safe for concurrent use, so borrowed per statement
//	cl.SetParseLimit(limit)                   // bigger statements are classified by a token scan (scan.go)
//	c := cl.Classify(sql)
//	rule, _ := rules.Match(sql, c.DigestText, user, schema)
//	d := router.Decide(&c, sess, reads, rule) // reads: user's reads, else routing.reads
//	d = router.ReadYourWrites(d, sess, cfg.Routing.ReadYourWrites, primaryUp)
//	// d.Err: answer with it. d.Target: Primary, Replica or Stay (the
//	// session's server). For a replica: fill Candidates, RequireGTID(cands,
//	// d.NeedGTID), then bal.Pick; none left: wait on a replica for
//	// d.NeedGTID (routing.gtid_wait), else FallbackToPrimary(d, ...).
//	// A failed replica read: RetryElsewhere. A cursor: ForCursor.
//
// After the statement ran, EffectsOf(&c, ok, prepared) says what changed in
// the session: a connection to hold until the next statement, a write that
// read-your-writes must see, pins (temporary tables, user variables, locks,
// LOCK TABLES, text PREPARE) and their release, state to replay on other
// connections (SET, USE), autocommit. The server's status flags after the
// statement say whether a transaction is open.
package router
