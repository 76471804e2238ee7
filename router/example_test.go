package router_test

import (
	"fmt"

	"switchyard/conf"
	"switchyard/router"
)

func Example() {
	cache := router.NewCache(1000)
	rules, _ := router.NewRules([]conf.QueryRule{
		{Name: "reports", Match: `(?i)^\s*select .* from reports`, Route: conf.RouteReplica},
		{Name: "no-drop", Match: `(?i)^\s*drop\s+table`, Error: "DROP is not allowed through the proxy"},
	})
	bal, _ := router.NewBalancer(conf.BalanceLeastOutstanding)
	replicas := []router.Candidate{{ID: 2, Weight: 100, Outstanding: 3}, {ID: 3, Weight: 100, Outstanding: 1}}

	cl := router.NewClassifier(cache)
	var sess router.Session
	for _, sql := range []string{
		"SELECT * FROM users WHERE id = 7",
		"SELECT * FROM reports WHERE day = CURDATE() FOR UPDATE",
		"/* switchyard:route=replica */ UPDATE users SET seen = NOW() WHERE id = 7",
		"BEGIN",
		"SELECT * FROM users WHERE id = 7",
		"DROP TABLE users",
	} {
		c := cl.Classify(sql)
		rule, _ := rules.Match(sql, c.DigestText, "app", "shop")
		d := router.Decide(&c, sess, conf.ReadsReplicas, rule)
		switch {
		case d.Err != nil:
			fmt.Printf("%-8s %s\n", "error", d.Err)
		case d.Target == router.Replica:
			i, _ := bal.Pick(replicas, -1)
			fmt.Printf("%-8s server %d, by %s\n", d.Target, replicas[i].ID, d.Reason)
		default:
			fmt.Printf("%-8s by %s, overridden=%v\n", d.Target, d.Reason, d.Overridden)
		}
		if c.EndsTx {
			sess.InTx = false
		}
		if c.StartsTx {
			sess.InTx = true
		}
	}
	// Output:
	// replica  server 3, by class
	// replica  server 3, by rule
	// primary  by hint, overridden=true
	// primary  by class, overridden=false
	// stay     by transaction, overridden=false
	// error    DROP is not allowed through the proxy
}
