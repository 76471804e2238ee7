package router

import (
	"switchyard/backend/gtid"
	"switchyard/conf"
)

// Routing policy beyond Decide: read-your-writes, cursors, fallback to the
// primary, replica eligibility by GTID, retries, and what a statement that
// ran changes in its session. All pure; the proxy applies the results.

// ReadYourWrites adjusts a read that Decide sent to a replica by its class
// alone, so that it sees the writes routing.read_your_writes (mode; "" is
// the default, session) says it must: the session's own (session), those
// of every session of its user (user), or every write acknowledged
// through the proxy (global). Decision.NeedGTID becomes the GTID position
// that covers them: a replica that has applied it may serve the read (or
// one that applies it within routing.gtid_wait). A session whose own write
// has no known GTID reads from the primary. A hint or a rule that asks for
// a replica is the user's explicit choice and wins, and with no usable
// primary a replica's answer beats an error; primaryUp is asked only when
// it matters.
func ReadYourWrites(d Decision, s Session, mode string, primaryUp func() bool) Decision {
	if d.Target != Replica || d.Reason != ByClass || mode == conf.RYWOff {
		return d
	}
	if s.HasWritten && s.LastGTID == "" {
		if primaryUp() {
			d.Target, d.Reason = Primary, ByReadYourWrites
		}
		return d
	}
	switch mode {
	case conf.RYWUser, conf.RYWGlobal:
		d.NeedGTID = s.MustSee
		if s.LastGTID != "" && !gtid.Covers(d.NeedGTID, s.LastGTID) {
			// The session's own write is not in the shared position (it
			// was noted there under another setting): it is needed too.
			d.NeedGTID = gtid.Max(d.NeedGTID, s.LastGTID)
		}
	default:
		if s.HasWritten {
			d.NeedGTID = s.LastGTID
		}
	}
	return d
}

// ForCursor routes an execution that opens a cursor: its rows are fetched
// later, with COM_STMT_FETCH, from the connection the session is then held
// on. A read that Decide sent to any replica goes to the primary instead;
// a decision for the primary or for the session's own server stands:
// the fetches follow it there. (Turning a Primary decision into Stay would
// send a write to a replica the session is pinned on.)
func ForCursor(d Decision) Decision {
	if d.Err != nil || d.Target != Replica {
		return d
	}
	d.Target, d.Reason, d.NeedGTID = Primary, ByCursor, ""
	return d
}

// FallbackToPrimary says whether a read that no replica can serve goes to
// the primary: when routing.fallback_to_primary allows it, and always for a
// read that must see writes the replicas lack (that is read-your-writes).
func FallbackToPrimary(d Decision, fallback bool) bool {
	return fallback || d.NeedGTID != ""
}

// RequireGTID takes out of the candidates, by setting their weight to 0,
// the replicas not known to have applied position need: neither the
// position the monitor read nor one a read waited for there covers it.
// need "" leaves them all.
func RequireGTID(cands []Candidate, need string) {
	if need == "" {
		return
	}
	for i := range cands {
		if !gtid.CoversAll(cands[i].GTID, need) && !gtid.CoversAll(cands[i].Reached, need) {
			cands[i].Weight = 0
		}
	}
}

// RetryElsewhere says whether a statement whose server connection failed
// runs once more on another server, unseen by the client: a read routed to
// a replica that changes nothing there, of which no byte reached the
// client. The retry excludes the failed server and verifies its connection
// before use.
func RetryElsewhere(d Decision, c *Class, wroteToClient bool) bool {
	return d.Target == Replica && !wroteToClient && c.ReplicaSafe()
}

// NextReplica is the policy for a replica that cannot be reached when a
// read needs it: try one other replica, excluding the failed one, and no
// more. exclude is the server already excluded (-1: none); it returns the
// exclusion for the next pick, or false to stop trying replicas.
func NextReplica(exclude, failed int) (int, bool) {
	if exclude >= 0 {
		return exclude, false
	}
	return failed, true
}

// Pin is a reason a session is held on its server connection: state that
// lives there and cannot be replayed elsewhere.
type Pin uint8

const (
	NoPin Pin = iota
	PinMultiStatementState
	PinUserVar
	PinTempTable
	PinLock
	PinLockTables
	PinPrepare
	PinPreparedSet
	PinCursor
	PinLongData
	PinStateOverflow
	NumPins
)

var pinNames = [NumPins]string{"", "multi-statement that changes session state", "user variable",
	"temporary table", "lock", "LOCK TABLES", "prepared statement (text protocol)",
	"session state set by a prepared statement", "cursor", "prepared statement long data",
	"session state changed too often to replay"}

func (p Pin) String() string {
	if p < NumPins {
		return pinNames[p]
	}
	return "pin?"
}

// Pins counts a session's pins by reason. It is a value, so a session's
// state can be saved and restored by assignment.
type Pins [NumPins]uint16

// Add counts one more pin for p.
func (ps *Pins) Add(p Pin) {
	if p != NoPin {
		ps[p]++
	}
}

// Remove drops one count of p; false when p held nothing.
func (ps *Pins) Remove(p Pin) bool {
	if p == NoPin || ps[p] == 0 {
		return false
	}
	ps[p]--
	return true
}

// Any reports whether the session is pinned.
func (ps *Pins) Any() bool { return ps.Reason() != NoPin }

// Reason is one reason the session is pinned, for logs and views.
func (ps *Pins) Reason() Pin {
	for p := Pin(1); p < NumPins; p++ {
		if ps[p] > 0 {
			return p
		}
	}
	return NoPin
}

// Effects is what a statement that ran changes in its session.
type Effects struct {
	// HoldLast: keep the connection it ran on until the next statement,
	// which may read its outcome (LAST_INSERT_ID, FOUND_ROWS).
	HoldLast bool
	// Wrote: it changed data, so read-your-writes applies to later reads.
	Wrote bool
	// Pin: state now lives on the connection it ran on.
	Pin Pin
	// Unpin: state the session was pinned for is gone.
	Unpin Pin
	// Replay: it changed session state that every other connection must
	// replay before it serves the session (SET, SET NAMES, USE).
	Replay bool
	// Schema is the session's schema after a USE; "" when unchanged.
	Schema string
	// Autocommit is what it set autocommit to, or nil.
	Autocommit *bool
}

// EffectsOf says what statement c changes in its session once it ran. ok:
// it succeeded (a failed statement changes nothing beyond HoldLast).
// prepared: it ran as a prepared statement, whose values are not in its
// text, so state it sets cannot be replayed from the text.
func EffectsOf(c *Class, ok, prepared bool) Effects {
	e := Effects{HoldLast: c.Kind == Write || c.CalcFoundRows}
	if !ok {
		return e
	}
	switch c.Kind {
	case DDL:
		// Temporary tables are not replicated: nothing to wait for.
		e.Wrote = !(c.CreatesTempTable || c.DropsTempTable)
	case Write, Call, XA, Execute, Admin, Other:
		e.Wrote = true
	case Read:
		e.Wrote = c.SideEffects || c.StoredFunc
	}
	stateKind := c.Kind == Set || c.Kind == Use
	switch {
	case c.Statements > 1 && (stateKind || c.SetsUserVar || c.Autocommit != nil):
		e.Pin = PinMultiStatementState
	case c.SetsUserVar:
		e.Pin = PinUserVar
	case c.CreatesTempTable:
		e.Pin = PinTempTable
	case c.UsesLock:
		e.Pin = PinLock
	case c.Kind == LockTables:
		e.Pin = PinLockTables
	case c.Kind == Prepare:
		e.Pin = PinPrepare
	case c.Kind == Set && prepared:
		// Its parameters' values are not known to replay it as text. (A
		// prepared USE has none: it is replayed like the text one.)
		e.Pin = PinPreparedSet
	case stateKind:
		e.Replay = true
		if c.Kind == Use {
			e.Schema = c.Schema
		}
	}
	// State whose end the proxy can see releases its pin.
	switch {
	case c.DropsTempTable:
		e.Unpin = PinTempTable
	case c.Kind == UnlockTables:
		e.Unpin = PinLockTables
	case c.Kind == Deallocate:
		e.Unpin = PinPrepare
	}
	e.Autocommit = c.Autocommit
	return e
}
