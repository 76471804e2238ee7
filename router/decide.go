package router

import "switchyard/conf"

// Session is what the proxy knows about a client session when it routes
// the session's next statement.
type Session struct {
	// InTx: a transaction is open, from BEGIN (or the first statement while
	// autocommit is off) until it ends.
	InTx bool
	// AutocommitOff: the session ran SET autocommit=0.
	AutocommitOff bool
	// Pinned: session state lives on the session's server connection:
	// temporary tables, user variables, GET_LOCK, LOCK TABLES, text
	// prepared statements. Why is the proxy's to track and show.
	Pinned bool
	// OnReplica: the server the session is on (transaction, pin or previous
	// statement) is a replica.
	OnReplica bool
	// HasServer: the session still holds the connection its previous
	// statement ran on, so FOUND_ROWS() or SHOW WARNINGS can go there.
	HasServer bool
	// HasWritten: the session has changed data; LastGTID is the GTID of
	// its last write when the server reported one (see ReadYourWrites).
	HasWritten bool
	LastGTID   string
	// MustSee, under read_your_writes user or global, is the GTID position
	// of the writes acknowledged before this statement arrived: the user's,
	// or everyone's (the highest GTID of each replication domain).
	MustSee string
}

// Reason says which rule of Decide chose the target; a metrics label.
type Reason uint8

const (
	ByClass          Reason = iota // the statement's own route
	ByRuleError                    // an error rule matched
	ByTransaction                  // an open transaction stays on its server
	ByPin                          // session state holds the session on its server
	ByAutocommit                   // autocommit=0: the statement opens a transaction
	ByPrevious                     // it reads the previous statement's outcome
	ByHint                         // a /* switchyard:route=... */ comment
	ByRule                         // a query rule's route
	ByReadsPrimary                 // reads: primary for this user
	ByReadYourWrites               // a read after the session's write, which replicas may lack
	ByCursor                       // an execution that opens a cursor, fetched later from the same connection
)

var reasonNames = [...]string{"class", "rule_error", "transaction", "pin", "autocommit", "previous", "hint", "rule",
	"reads_primary", "read_your_writes", "cursor"}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "reason?"
}

// Decision is where one statement goes.
type Decision struct {
	Target Target // Primary, Replica (any eligible, see Balancer) or Stay; NoTarget with Err
	Err    *RuleError
	Reason Reason
	// Overridden: a hint or rule asked for a replica, but the statement
	// writes or changes session state, so it goes to the primary.
	Overridden bool
	// NeedGTID, for a replica read, is a GTID position: only a replica
	// whose position covers it may serve the read, or one that reaches it
	// within routing.gtid_wait (see ReadYourWrites, RequireGTID).
	NeedGTID string
	// AnyServer, with Target Primary: the statement only changes
	// replayable session state (Class.StateOnly), so while there is no
	// primary another server may run it.
	AnyServer bool
}

// RuleError is the answer to a statement an error rule rejected.
type RuleError struct {
	Rule, Message string
}

func (e *RuleError) Error() string { return e.Message }

// Decide routes one statement. reads is the user's effective routing.reads
// (conf.ReadsReplicas or conf.ReadsPrimary; "" means replicas); rule is the
// matched query rule or nil.
//
// Precedence, highest first:
//  1. an error rule: nothing is sent;
//  2. stickiness: an open transaction, a pin, autocommit=0 (the statement
//     opens a transaction, so the primary), a read of the previous
//     statement's outcome (FOUND_ROWS, SHOW WARNINGS);
//  3. a hint in the statement;
//  4. a query rule's route;
//  5. the statement's class route;
//  6. reads=primary, which turns the class's Replica into Primary.
//
// Hints and rules can send to a replica only what Class.ReplicaSafe allows:
// a write is never sent to a replica; Overridden records that it was asked.
func Decide(c *Class, s Session, reads string, rule *Rule) Decision {
	d := decide(c, s, reads, rule)
	d.AnyServer = d.Target == Primary && c.StateOnly()
	return d
}

func decide(c *Class, s Session, reads string, rule *Rule) Decision {
	if rule != nil && rule.Error != "" {
		return Decision{Err: &RuleError{Rule: rule.Name, Message: rule.Error}, Reason: ByRuleError}
	}
	switch {
	case s.InTx && s.OnReplica && c.StartsTx && !c.ReadOnlyTx:
		// BEGIN inside a read-only transaction on a replica commits that one
		// there; the new read-write transaction belongs on the primary.
		return Decision{Target: Primary, Reason: ByTransaction}
	case s.InTx:
		return Decision{Target: Stay, Reason: ByTransaction}
	case s.Pinned && s.OnReplica && (s.AutocommitOff || !c.ReplicaSafe()):
		// Pins are made on the primary; a replica pin cannot take this.
		return Decision{Target: Primary, Reason: ByPin}
	case s.Pinned:
		return Decision{Target: Stay, Reason: ByPin}
	case s.AutocommitOff && c.Kind != BeginReadOnly:
		return Decision{Target: Primary, Reason: ByAutocommit}
	case c.UsesFoundRows && s.HasServer && (!s.OnReplica || c.ReplicaSafe()):
		return Decision{Target: Stay, Reason: ByPrevious}
	}

	want, by := NoTarget, ByClass
	switch {
	case c.Hint != NoTarget:
		want, by = c.Hint, ByHint
	case rule != nil && rule.Route != NoTarget:
		want, by = rule.Route, ByRule
	}
	switch want {
	case Primary:
		return Decision{Target: Primary, Reason: by}
	case Replica:
		if c.ReplicaSafe() {
			return Decision{Target: Replica, Reason: by}
		}
		return Decision{Target: Primary, Reason: by, Overridden: true}
	}
	if c.Route == Replica && reads == conf.ReadsPrimary {
		return Decision{Target: Primary, Reason: ByReadsPrimary}
	}
	return Decision{Target: c.Route, Reason: ByClass}
}
