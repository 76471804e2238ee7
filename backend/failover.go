package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"switchyard/backend/gtid"
)

// Failover, switchover, fencing and rejoin: the changes of topology
// switchyard makes itself, on MariaDB with GTID replication.
//
// Only the monitor's goroutine changes the topology: detection runs after
// each round of checks, and Failover and Switchover, called from other
// goroutines (the admin interface), are requests that goroutine serves
// between rounds. So no two changes ever overlap in one process, and none
// races with the checks that would otherwise see a half-made change.
// Several switchyard processes agree through a lock held on the servers
// themselves (failover.cooperative, lockTopology).
//
// Detection: the primary failed failover.failure_threshold checks in a row
// and its replicas confirm it, their IO threads having lost it too (a
// primary only switchyard cannot reach is not dead). Choice: among
// promotable replicas that answer, the most advanced by GTID, received
// (Gtid_IO_Pos) then applied (gtid_slave_pos), ties by weight then config
// order; it applies what it received (MASTER_GTID_WAIT) before it is
// promoted (STOP SLAVE, RESET SLAVE ALL, read_only=OFF), and writes go to it
// at once; then the other replicas are re-pointed to it
// (MASTER_USE_GTID=slave_pos).
//
// Fencing: the old primary is fenced when the failover starts: switchyard
// sends it nothing again. When it answers again (MariaDB restarts a server
// writable unless told otherwise) it is set read_only=ON and, if its GTID
// history is a prefix of the new primary's, rejoined as a replica of it;
// otherwise it is held OFFLINE_HARD and the event names its errant
// transactions. A server that comes back writable while another server is
// the primary is fenced the same way, by every switchyard that sees it,
// whether or not it made the failover.
//
// Sessions: while a failover or switchover is under way, or the primary is
// unreachable and failover.auto may replace it, statements that need the
// primary wait (WaitPrimary, at most failover.hold_timeout) and then run on
// the new one.

// FailoverOptions configure failover and switchover (failover: in the
// config). The zero value does no automatic failover.
type FailoverOptions struct {
	// Auto promotes a replica when the primary fails; without it a failed
	// primary is only an event.
	Auto bool
	// FailureThreshold is how many checks in a row the primary must fail
	// before it is taken for dead. 0: 3.
	FailureThreshold int
	// ReplicationUser and ReplicationPassword are what the other servers
	// replicate from a promoted one with. Empty: re-pointed replicas keep
	// the account they had.
	ReplicationUser     string
	ReplicationPassword string
	// Cooperative takes a lock on a majority of the servers before any
	// change, so that of several switchyards in front of the same servers
	// only one changes the topology.
	Cooperative bool
	// HoldTimeout bounds how long a statement that needs the primary waits
	// for a failover or switchover to give it one. 0: 5s.
	HoldTimeout time.Duration
}

func (o FailoverOptions) withDefaults() FailoverOptions {
	if o.FailureThreshold <= 0 {
		o.FailureThreshold = 3
	}
	if o.HoldTimeout <= 0 {
		o.HoldTimeout = 5 * time.Second
	}
	return o
}

// Bounds of the steps of a topology change. A failover waits up to
// catchUpTimeout for its candidate to apply what it received: promoting it
// earlier would lose those transactions, which clients may have been told
// were committed. controlTimeout bounds each statement the proxy runs to
// change a server's replication (STOP SLAVE waits for the SQL thread to
// finish its event group).
const (
	catchUpTimeout = 10 * time.Second
	controlTimeout = 10 * time.Second
	// failoverRetry is how long after a first failed attempt the next one
	// may start, and rejoinRetry the same for rejoining a fenced server;
	// rejoinGrace is how long a rejoined server gets to start replicating
	// before it is tried again.
	failoverRetry = 2 * time.Second
	rejoinRetry   = 5 * time.Second
	rejoinGrace   = 10 * time.Second
)

// topologyLockName is the user lock (GET_LOCK) that several switchyards
// take on the servers before they change the topology.
const topologyLockName = "switchyard_topology"

// errantHeldOut is the MariaDB error a replica's IO thread stops with
// when its source lacks its position: it has transactions the source does
// not (ER_MASTER_FATAL_ERROR_READING_BINLOG).
const errantHeldOut = 1236

// topology is what the monitor shares with sessions and the admin
// interface about changes to the topology.
type topology struct {
	// changing says why statements that need the primary are held: a
	// failover or switchover under way.
	changing atomic.Pointer[string]
	// switching is set during a switchover, from when new writes are held
	// until the new primary takes them: the old primary, still up, must
	// not get new ones.
	switching atomic.Pointer[NoPrimaryError]
	// changed is closed, and replaced, whenever the topology may have
	// changed, waking the statements WaitPrimary holds.
	mu      sync.Mutex
	changed chan struct{}
	// requests carries Failover and Switchover to the monitor goroutine;
	// serving says one serves them.
	requests chan topoRequest
	serving  atomic.Bool
}

// topoRequest is an operator's failover or switchover.
type topoRequest struct {
	ctx        context.Context
	switchover bool
	target     string
	reply      chan topoResult
}

type topoResult struct {
	primary *Server
	err     error
}

// topologyChanged returns a channel closed at the next change.
func (c *Cluster) topologyChanged() <-chan struct{} {
	c.topo.mu.Lock()
	defer c.topo.mu.Unlock()
	if c.topo.changed == nil {
		c.topo.changed = make(chan struct{})
	}
	return c.topo.changed
}

// signalTopology wakes whoever waits for a change.
func (c *Cluster) signalTopology() {
	c.topo.mu.Lock()
	ch := c.topo.changed
	c.topo.changed = nil
	c.topo.mu.Unlock()
	if ch != nil {
		close(ch)
	}
}

// WaitPrimary returns the server that takes writes, like Primary; but
// while a failover or switchover is under way, or the primary is
// unreachable and failover.auto may replace it, it waits for a primary up
// to failover.hold_timeout (or until ctx ends) instead of failing at once.
// Statements that need the primary then pause instead of failing.
func (c *Cluster) WaitPrimary(ctx context.Context) (*Server, error) {
	p, err := c.Primary()
	if err == nil || !c.holdFor(err) {
		return p, err
	}
	start := time.Now()
	timer := time.NewTimer(c.fopt.HoldTimeout)
	defer timer.Stop()
	for {
		changed := c.topologyChanged()
		if p, err = c.Primary(); err == nil || !c.holdFor(err) {
			return p, err
		}
		select {
		case <-changed:
		case <-timer.C:
			var npe *NoPrimaryError
			if errors.As(err, &npe) {
				waited := *npe
				waited.Why += fmt.Sprintf(" (waited %v for a failover, failover.hold_timeout)", time.Since(start).Round(time.Millisecond))
				return nil, &waited
			}
			return nil, err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// holdFor reports whether a statement that got err for want of a primary
// should wait for one.
func (c *Cluster) holdFor(err error) bool {
	if c.topo.changing.Load() != nil {
		return true
	}
	var npe *NoPrimaryError
	return c.fopt.Auto && c.topo.serving.Load() && errors.As(err, &npe) && npe.down && c.hasCandidate()
}

// hasCandidate reports whether some replica could be promoted: waiting
// for a failover is pointless without one (a single server, say).
func (c *Cluster) hasCandidate() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, s := range c.servers {
		if s.Promotable() && s.Role() == RoleReplica && s.Status() == StatusOnline && !s.fenced.Load() {
			return true
		}
	}
	return false
}

// Failover promotes the best replica now, whatever the state of the
// primary (the admin FAILOVER): a live primary is set read-only first and
// fenced like a dead one. It returns the new primary.
func (c *Cluster) Failover(ctx context.Context) (*Server, error) {
	return c.request(ctx, topoRequest{})
}

// Switchover makes target (a server's name; "" for the best replica) the
// primary in a planned change: new writes are held, those in flight finish
// (within half of failover.hold_timeout), the primary is set read-only,
// the target applies everything it wrote and is promoted, and the others,
// the old primary included, replicate from it. Clients see a pause. It
// returns the new primary.
func (c *Cluster) Switchover(ctx context.Context, target string) (*Server, error) {
	return c.request(ctx, topoRequest{switchover: true, target: target})
}

func (c *Cluster) request(ctx context.Context, req topoRequest) (*Server, error) {
	if !c.topo.serving.Load() {
		return nil, errors.New("failover and switchover need the monitor: set monitor.user")
	}
	req.ctx = ctx
	req.reply = make(chan topoResult, 1)
	select {
	case c.topo.requests <- req:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-req.reply:
		return r.primary, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// serveRequest runs an operator's failover or switchover on the monitor's
// goroutine. It runs to its end under the monitor's context even if the
// caller stops waiting: a change abandoned halfway is worse than one that
// finishes.
func (c *Cluster) serveRequest(ctx context.Context, opt ProbeOptions, fm *failoverWatch, req topoRequest) {
	var r topoResult
	switch {
	case req.ctx.Err() != nil:
		r.err = req.ctx.Err()
	case req.switchover:
		r.primary, r.err = c.switchover(ctx, opt, req.target)
	default:
		old, err := c.Primary()
		if err != nil {
			old = c.unreachablePrimary()
		}
		if old == nil {
			r.err = fmt.Errorf("failover: no primary known to fail over from (%v)", err)
			break
		}
		r.primary, r.err = c.failover(ctx, opt, old, "forced by an operator (FAILOVER)")
		if r.err == nil {
			fm.reset()
		}
	}
	req.reply <- r
}

// failoverWatch is what the monitor goroutine remembers between rounds
// about the primary's failures and the servers it fences.
type failoverWatch struct {
	down     *Server // the primary failing its checks
	failures int     // its failed checks in a row
	// retryAt is when a failover that failed may be tried again; the
	// delay doubles with each failure, up to a minute, so that a cluster
	// with nothing to promote does not fill the log.
	retryAt    time.Time
	retryDelay time.Duration
	// noted is the last note logged of each kind and server, so that each
	// is logged once for as long as it stays the same.
	noted map[string]string
	// rejoinAt is when a fenced server may next be rejoined.
	rejoinAt map[*Server]time.Time
}

// reset forgets the failures of a primary that answers again (or was
// replaced).
func (fm *failoverWatch) reset() {
	fm.down, fm.failures, fm.retryAt, fm.retryDelay = nil, 0, time.Time{}, 0
	for k := range fm.noted {
		if strings.HasPrefix(k, "failover_") {
			delete(fm.noted, k)
		}
	}
}

// note logs and records an event once for as long as it stays the same.
func (c *Cluster) note(fm *failoverWatch, level slog.Level, kind string, s *Server, detail, msg string) {
	key := kind + "\x00" + s.Name
	if fm.noted[key] == detail {
		return
	}
	if fm.noted == nil {
		fm.noted = make(map[string]string)
	}
	fm.noted[key] = detail
	c.changed(level, kind, s, detail, msg)
}

// afterChecks runs after each round of checks: it tends the fenced servers
// and fails over when the primary is dead.
func (c *Cluster) afterChecks(ctx context.Context, opt ProbeOptions, fm *failoverWatch, checks map[*Server]check) {
	defer c.signalTopology()
	c.tendFenced(ctx, opt, fm, checks)
	c.watchPrimary(ctx, opt, fm, checks)
}

// watchPrimary counts the primary's failed checks and, once they reach the
// threshold and the replicas confirm, fails over (or, with failover.auto
// off, says that it would).
func (c *Cluster) watchPrimary(ctx context.Context, opt ProbeOptions, fm *failoverWatch, checks map[*Server]check) {
	down := c.unreachablePrimary()
	if down == nil {
		fm.reset()
		return
	}
	if down != fm.down {
		fm.reset()
		fm.down = down
	}
	fm.failures++
	if fm.failures < c.fopt.FailureThreshold {
		return
	}
	if why := c.replicasStillSee(down, checks); why != "" {
		c.note(fm, slog.LevelWarn, "failover_blocked", down, why, "primary fails its checks, but its replicas do not confirm it is down: no failover")
		return
	}
	reason := fmt.Sprintf("primary %s failed %d checks in a row and its replicas lost it too", down.Name, fm.failures)
	if !c.fopt.Auto {
		c.note(fm, slog.LevelError, "failover_needed", down, reason+"; failover.auto is false: promote a replica with the admin FAILOVER",
			"primary is down and failover.auto is false: no failover")
		return
	}
	if time.Now().Before(fm.retryAt) {
		return
	}
	if _, err := c.failover(ctx, opt, down, reason); err != nil {
		fm.retryDelay = min(max(2*fm.retryDelay, failoverRetry), time.Minute)
		fm.retryAt = time.Now().Add(fm.retryDelay)
		c.log.Info("failover failed; it is tried again", "err", err, "in", fm.retryDelay)
	}
}

// replicasStillSee returns why the replicas do not confirm that down is
// dead ("" when they do): one still receives from its source, or none
// answers to say. A replica that follows another server switchyard reaches
// (chained replication) says nothing about the primary.
func (c *Cluster) replicasStillSee(down *Server, checks map[*Server]check) string {
	confirmed := 0
	for _, s := range c.Servers() {
		ck, ok := checks[s]
		if !ok || s == down || ck.role != RoleReplica || !ck.repl.configured || s.fenced.Load() {
			continue
		}
		if via := c.serverAt(ck.repl.source); via != nil && via != down && via.Healthy() {
			continue
		}
		if ck.repl.ioRunning {
			return fmt.Sprintf("replica %s still receives from its source %s (IO thread running): %s may be up and unreachable from switchyard only",
				s.Name, ck.repl.source, down.Name)
		}
		confirmed++
	}
	if confirmed == 0 {
		return fmt.Sprintf("no replica of %s answers to confirm it is down", down.Name)
	}
	return ""
}

// serverAt returns the configured server at address addr (host:port as a
// replica reports its source), or nil.
func (c *Cluster) serverAt(addr string) *Server {
	for _, s := range c.Servers() {
		if sameAddress(s.Address, addr) {
			return s
		}
	}
	return nil
}

// sameAddress compares host:port addresses, ignoring how the port is
// written.
func sameAddress(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil {
		return a == b
	}
	na, _ := strconv.Atoi(pa)
	nb, _ := strconv.Atoi(pb)
	return strings.EqualFold(ha, hb) && na == nb
}

// fence takes s out of every write and read decision: a stale primary, or
// a replica that missed a failover, until it replicates from the primary.
func (c *Cluster) fence(s *Server, why string) {
	if !s.fenced.Swap(true) {
		c.changed(slog.LevelWarn, "fenced", s, why, "server fenced: switchyard sends it nothing until it replicates from the primary")
	}
}

// unfence returns s to service; kind names the event.
func (c *Cluster) unfence(s *Server, kind, why string) {
	if s.fenced.Swap(false) {
		c.changed(slog.LevelInfo, kind, s, why, "fenced server back in service")
	}
}

// Fenced reports whether switchyard keeps the server out of service: a
// former primary, or a replica that missed a failover, not yet replicating
// from the primary.
func (s *Server) Fenced() bool { return s.fenced.Load() }

// serverState is what a topology change reads of a server, fresh.
type serverState struct {
	srv      *Server
	err      error
	readOnly bool
	// current is @@gtid_current_pos, slavePos @@gtid_slave_pos (what it
	// applied from a source), binlogPos @@gtid_binlog_pos.
	current, slavePos, binlogPos string
	repl                         replication
}

// received is what the server has from its source: what its IO thread
// fetched, or what it applied if that is further.
func (st *serverState) received() string { return gtid.Max(st.repl.ioPos, st.slavePos) }

// control opens a connection to s with the monitor's account for a
// topology change.
func (c *Cluster) control(ctx context.Context, opt ProbeOptions, s *Server) (*Conn, error) {
	return dial(ctx, s, DialOptions{
		readers: &c.readers,
		Creds:   Credentials{User: opt.User, Plain: opt.Password, HasPassword: opt.Password != ""},
		timeout: opt.Timeout,
		tls:     c.options().TLS,
	})
}

// run executes statements on cn in order, each within controlTimeout.
func run(cn *Conn, stmts ...string) error {
	for _, q := range stmts {
		_ = cn.SetDeadline(time.Now().Add(controlTimeout))
		if err := cn.Exec(q); err != nil {
			return fmt.Errorf("%s on %s: %w", redact(q), cn.srv.Name, err)
		}
	}
	_ = cn.SetDeadline(time.Time{})
	return nil
}

// redact keeps a replication password out of errors and logs.
func redact(q string) string {
	if i := strings.Index(q, "MASTER_PASSWORD="); i >= 0 {
		j := strings.Index(q[i:], ", ")
		if j < 0 {
			return q[:i] + "MASTER_PASSWORD=<redacted>"
		}
		return q[:i] + "MASTER_PASSWORD=<redacted>" + q[i+j:]
	}
	return q
}

// readState reads the replication state of the server cn is connected to.
func readState(cn *Conn) (serverState, error) {
	st := serverState{srv: cn.srv}
	_ = cn.SetDeadline(time.Now().Add(controlTimeout))
	defer cn.SetDeadline(time.Time{})
	res, err := cn.Query("SELECT @@read_only, @@gtid_current_pos, @@gtid_slave_pos, @@gtid_binlog_pos")
	if err != nil {
		return st, fmt.Errorf("reading the GTID positions of %s (failover needs MariaDB GTID replication): %w", cn.srv.Name, err)
	}
	if len(res.Rows) != 1 || len(res.Rows[0]) != 4 {
		return st, fmt.Errorf("unexpected answer from %s to the GTID positions query", cn.srv.Name)
	}
	row := res.Rows[0]
	st.readOnly = row[0].String != "0"
	st.current, st.slavePos, st.binlogPos = row[1].String, row[2].String, row[3].String
	if st.repl, err = replicationStatus(cn); err != nil {
		return st, err
	}
	return st, nil
}

// readStates reads every server but skip, in parallel, in config order.
func (c *Cluster) readStates(ctx context.Context, opt ProbeOptions, skip *Server) []serverState {
	var out []serverState
	for _, s := range c.Servers() {
		if s != skip {
			// Unread until read: a state left zero by a panic would read
			// as a writable server that replicates from nothing.
			out = append(out, serverState{srv: s, err: errors.New("its state could not be read")})
		}
	}
	var wg sync.WaitGroup
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.recovered("reading the state of " + out[i].srv.Name)
			cn, err := c.control(ctx, opt, out[i].srv)
			if err != nil {
				out[i].err = err
				return
			}
			defer cn.Close()
			st, err := readState(cn)
			st.err = err
			out[i] = st
		}()
	}
	wg.Wait()
	return out
}

// eligible says why a server cannot be promoted, or "".
func eligible(st *serverState) string {
	s := st.srv
	switch {
	case st.err != nil:
		return "unreachable: " + st.err.Error()
	case !s.Promotable():
		return "not promotable (servers[].promotable: false)"
	case s.Status() == StatusOfflineSoft || s.Status() == StatusOfflineHard:
		return s.Status().String()
	case s.fenced.Load():
		return "fenced"
	case !st.readOnly:
		return "writable, not a replica"
	case !st.repl.configured:
		return "not replicating from anything"
	case !st.repl.sqlRunning:
		return "its SQL thread is stopped, so it cannot apply what it received"
	}
	return ""
}

// better reports whether a should be promoted rather than b: it received
// more, else applied more, else weighs more, else comes first in the
// config.
func better(a, b *serverState) bool {
	if d := gtid.Compare(a.received(), b.received()); d != 0 {
		return d > 0
	}
	if d := gtid.Compare(a.slavePos, b.slavePos); d != 0 {
		return d > 0
	}
	if a.srv.Weight() != b.srv.Weight() {
		return a.srv.Weight() > b.srv.Weight()
	}
	return a.srv.ID < b.srv.ID
}

// choose picks the replica to promote among states; the string lists
// every server with why it was or was not chosen.
func choose(states []serverState) (*serverState, string) {
	var best *serverState
	var why []string
	for i := range states {
		st := &states[i]
		if no := eligible(st); no != "" {
			why = append(why, st.srv.Name+": "+no)
			continue
		}
		why = append(why, fmt.Sprintf("%s: received %q, applied %q", st.srv.Name, st.received(), st.slavePos))
		if best == nil || better(st, best) {
			best = st
		}
	}
	return best, strings.Join(why, "; ")
}

// errantGTIDs lists the transactions a server whose position is have
// (@@gtid_current_pos) has that are not in the history of a primary with
// slavePos and binlogPos, one entry per replication domain ("" entries
// none): its history is a prefix of the primary's when the list is empty.
//
// Per domain: if the primary replicated that domain from the same server
// the other's last transaction comes from (its gtid_slave_pos names that
// server), the other must not be further than what the primary replicated:
// beyond it lies what the primary never received. Otherwise the primary's
// binlog must have reached the other's sequence number; histories that
// agree on numbers but not on transactions are then caught by the server
// itself when replication starts (its IO thread stops with error 1236),
// which tendFenced treats the same way.
func errantGTIDs(have, slavePos, binlogPos string) []string {
	sp, bp := gtid.ParsePosition(slavePos), gtid.ParsePosition(binlogPos)
	var out []string
	for d, g := range gtid.ParsePosition(have) {
		upTo := uint64(0)
		switch s, ok := sp[d]; {
		case ok && s.Server == g.Server:
			upTo = s.Seq
		default:
			if b, ok := bp[d]; ok {
				upTo = b.Seq
			}
		}
		if g.Seq <= upTo {
			continue
		}
		first := gtid.GTID{Domain: d, Server: g.Server, Seq: upTo + 1}
		if first.Seq == g.Seq {
			out = append(out, g.String())
		} else {
			out = append(out, first.String()+".."+g.String())
		}
	}
	return out
}

// changeMaster is the CHANGE MASTER statement that points a replica at p.
func (c *Cluster) changeMaster(p *Server) (string, error) {
	host, port, err := net.SplitHostPort(p.Address)
	if err != nil {
		return "", err
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return "", fmt.Errorf("port of %s: %w", p.Name, err)
	}
	q := fmt.Sprintf("CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%d", quote(host), n)
	if u := c.fopt.ReplicationUser; u != "" {
		q += fmt.Sprintf(", MASTER_USER=%s, MASTER_PASSWORD=%s", quote(u), quote(c.fopt.ReplicationPassword))
	}
	return q + ", MASTER_USE_GTID=slave_pos", nil
}

// quote writes s as a MariaDB string literal.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\x00", `\0`, "\n", `\n`, "\r", `\r`, "\x1a", `\Z`)
	return "'" + r.Replace(s) + "'"
}

// catchUp waits until the server cn is connected to has applied position
// pos, for at most timeout.
func catchUp(cn *Conn, pos string, timeout time.Duration) error {
	pos = gtid.ParsePosition(pos).String() // digits, dashes and commas only
	if pos == "" {
		return nil
	}
	_ = cn.SetDeadline(time.Now().Add(timeout + controlTimeout))
	defer cn.SetDeadline(time.Time{})
	res, err := cn.Query(fmt.Sprintf("SELECT MASTER_GTID_WAIT('%s', %.3f)", pos, timeout.Seconds()))
	if err != nil {
		return fmt.Errorf("waiting for %s to apply %s: %w", cn.srv.Name, pos, err)
	}
	if len(res.Rows) != 1 || len(res.Rows[0]) != 1 || res.Rows[0][0].String != "0" {
		return fmt.Errorf("%s did not apply %s within %v", cn.srv.Name, pos, timeout)
	}
	return nil
}

// lockTopology takes the topology lock on a majority of the configured
// servers (with failover.cooperative; otherwise there is nothing to take),
// waiting at most wait for another switchyard to finish its change. Locks
// are taken in config order, so two switchyards never wait on each other
// in a circle; with two servers or fewer, one lock is enough (the dead
// primary leaves only the replica, which every switchyard would promote).
func (c *Cluster) lockTopology(ctx context.Context, opt ProbeOptions, wait time.Duration) (release func(), err error) {
	if !c.fopt.Cooperative {
		return func() {}, nil
	}
	servers := c.Servers()
	quorum := len(servers)/2 + 1
	if len(servers) <= 2 {
		quorum = 1
	}
	conns := make([]*Conn, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if cn, err := c.control(ctx, opt, s); err == nil {
				conns[i] = cn
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(wait)
	var held []*Conn
	for _, cn := range conns {
		if cn == nil {
			continue
		}
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		_ = cn.SetDeadline(time.Now().Add(left + controlTimeout))
		res, err := cn.Query(fmt.Sprintf("SELECT GET_LOCK('%s', %.3f)", topologyLockName, left.Seconds()))
		_ = cn.SetDeadline(time.Time{})
		if err == nil && len(res.Rows) == 1 && len(res.Rows[0]) == 1 && res.Rows[0][0].String == "1" {
			held = append(held, cn)
		}
	}
	release = func() {
		for _, cn := range held {
			_ = cn.SetDeadline(time.Now().Add(opt.Timeout))
			_ = cn.Exec("DO RELEASE_LOCK('" + topologyLockName + "')")
		}
		for _, cn := range conns {
			if cn != nil {
				cn.Close()
			}
		}
	}
	if len(held) < quorum {
		release()
		return nil, fmt.Errorf("the topology lock (failover.cooperative) is held on %d of %d servers, %d needed: another switchyard is changing the topology, or too few servers answer",
			len(held), len(servers), quorum)
	}
	return release, nil
}

// failover promotes the best replica in place of old, which is fenced.
func (c *Cluster) failover(ctx context.Context, opt ProbeOptions, old *Server, reason string) (*Server, error) {
	began := time.Now()
	foundDown := began
	if t, ok := old.DownSince(); ok {
		foundDown = t
	}
	holding := fmt.Sprintf("failover from %s under way", old.Name)
	c.topo.changing.Store(&holding)
	defer func() {
		c.topo.changing.Store(nil)
		c.signalTopology()
	}()
	c.fence(old, "failover: switchyard sends it nothing until it replicates from the new primary")
	cut := old.abortConns()
	c.changed(slog.LevelWarn, "failover_started", old, fmt.Sprintf("%s; closed %d connections to it", reason, cut), "failover started")
	failed := func(err error) (*Server, error) {
		c.unfence(old, "unfenced", "the failover failed: it is the primary again when it answers")
		c.changed(slog.LevelError, "failover_failed", old, fmt.Sprintf("%v (after %v)", err, ms(time.Since(began))), "failover failed")
		return nil, err
	}
	if old.Healthy() {
		// An operator's FAILOVER of a live primary: it takes no more
		// writes from anyone, not just from this proxy.
		if cn, err := c.control(ctx, opt, old); err == nil {
			err = run(cn, "SET GLOBAL read_only = ON")
			cn.Close()
			if err != nil {
				c.log.Warn("failover: could not set the old primary read-only", "server", old.Name, "err", err)
			}
		}
	}
	release, err := c.lockTopology(ctx, opt, c.fopt.HoldTimeout)
	if err != nil {
		return failed(err)
	}
	defer release()
	locked := time.Now()
	states := c.readStates(ctx, opt, old)
	for i := range states {
		st := &states[i]
		if st.err == nil && !st.readOnly && !st.repl.configured {
			// Another switchyard promoted it while this one waited for
			// the lock: follow.
			c.promoted(st.srv)
			c.changed(slog.LevelInfo, "failover_followed", st.srv, fmt.Sprintf("%s was promoted by another switchyard; following it (%v after %s was found down)",
				st.srv.Name, ms(time.Since(foundDown)), old.Name), "failover made elsewhere: following the new primary")
			return st.srv, nil
		}
	}
	cand, why := choose(states)
	if cand == nil {
		return failed(fmt.Errorf("no replica can be promoted: %s", why))
	}
	c.changed(slog.LevelInfo, "failover_candidate", cand.srv, why, "failover candidate chosen")
	cn, err := c.control(ctx, opt, cand.srv)
	if err != nil {
		return failed(fmt.Errorf("connecting to the candidate %s: %w", cand.srv.Name, err))
	}
	defer cn.Close()
	applyStart := time.Now()
	if err := catchUp(cn, cand.received(), catchUpTimeout); err != nil {
		return failed(err)
	}
	applied := time.Since(applyStart)
	promoteStart := time.Now()
	if err := run(cn, "STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = OFF"); err != nil {
		// Leave it as it was if it can be: a replica.
		_ = run(cn, "SET GLOBAL read_only = ON")
		return failed(fmt.Errorf("promoting %s: %w", cand.srv.Name, err))
	}
	c.semiSyncSource(cn, true)
	c.promoted(cand.srv)
	c.topo.changing.Store(nil)
	c.signalTopology()
	c.changed(slog.LevelWarn, "promoted", cand.srv, fmt.Sprintf("%s is the primary in place of %s, writable %v after %s was found down (detected in %v, lock %v, catch-up %v, promotion %v)",
		cand.srv.Name, old.Name, ms(time.Since(foundDown)), old.Name, ms(began.Sub(foundDown)), ms(locked.Sub(began)), ms(applied), ms(time.Since(promoteStart))),
		"replica promoted: writes go to it")
	final, err := readState(cn)
	if err != nil {
		final = *cand
	}
	c.repointAll(ctx, opt, states, cand.srv, final)
	c.changed(slog.LevelInfo, "failover_done", cand.srv, fmt.Sprintf("from %s to %s in %v", old.Name, cand.srv.Name, ms(time.Since(began))), "failover done")
	return cand.srv, nil
}

// promoted records that p takes writes now.
func (c *Cluster) promoted(p *Server) {
	c.setRole(p, RolePrimary)
	c.setFrozen(p, false, "promoted")
	c.setReadable(p, false, "")
	c.unfence(p, "unfenced", "promoted")
}

// repointAll points every other replica in states at the new primary p
// (whose state after promotion is pst). One that does not answer is
// fenced, and rejoined when it does; one with transactions p lacks is held
// out.
func (c *Cluster) repointAll(ctx context.Context, opt ProbeOptions, states []serverState, p *Server, pst serverState) {
	var wg sync.WaitGroup
	for i := range states {
		st := &states[i]
		if st.srv == p {
			continue
		}
		if st.err != nil {
			c.fence(st.srv, fmt.Sprintf("unreachable during the failover to %s: rejoined when it answers", p.Name))
			continue
		}
		if !st.readOnly || !st.repl.configured {
			continue // not a replica: nothing of switchyard's to change
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.recovered("re-pointing " + st.srv.Name)
			if errant := errantGTIDs(st.current, pst.slavePos, pst.binlogPos); len(errant) > 0 {
				c.holdOut(st.srv, p, errant)
				return
			}
			if err := c.repoint(ctx, opt, st.srv, p, ""); err != nil {
				c.fence(st.srv, fmt.Sprintf("re-pointing it to %s failed: %v", p.Name, err))
				return
			}
			c.changed(slog.LevelInfo, "repointed", st.srv, "replicates from "+p.Name, "replica re-pointed to the new primary")
		}()
	}
	wg.Wait()
}

// repoint makes s replicate from p. slavePos, when set, is the position s
// starts from (a former primary's own); else it goes on from what it
// applied.
func (c *Cluster) repoint(ctx context.Context, opt ProbeOptions, s, p *Server, slavePos string) error {
	change, err := c.changeMaster(p)
	if err != nil {
		return err
	}
	cn, err := c.control(ctx, opt, s)
	if err != nil {
		return err
	}
	defer cn.Close()
	stmts := []string{"SET GLOBAL read_only = ON", "STOP SLAVE"}
	if slavePos != "" {
		stmts = append(stmts, fmt.Sprintf("SET GLOBAL gtid_slave_pos = '%s'", gtid.ParsePosition(slavePos).String()))
	}
	if err := run(cn, append(stmts, change)...); err != nil {
		return err
	}
	c.semiSyncSource(cn, false)
	return run(cn, "START SLAVE")
}

// semiSyncSource moves the source side of semi-synchronous replication
// with the primary role. A promoted server that was a semi-synchronous
// replica (the cluster uses it) turns it on, so that commits on it still
// wait for a replica to have them; a server made a replica turns it off,
// or each transaction it applies would wait for acknowledgements from
// replicas it does not have (rpl_semi_sync_master_timeout, 10 s by
// default, for its first one). Servers without semi-synchronous
// replication are left alone.
func (c *Cluster) semiSyncSource(cn *Conn, on bool) {
	ask, set := "SELECT @@rpl_semi_sync_master_enabled", "SET GLOBAL rpl_semi_sync_master_enabled = OFF"
	if on {
		ask, set = "SELECT @@rpl_semi_sync_slave_enabled", "SET GLOBAL rpl_semi_sync_master_enabled = ON"
	}
	_ = cn.SetDeadline(time.Now().Add(controlTimeout))
	res, err := cn.Query(ask)
	_ = cn.SetDeadline(time.Time{})
	if err != nil || len(res.Rows) != 1 || len(res.Rows[0]) != 1 || res.Rows[0][0].String != "1" {
		return
	}
	if err := run(cn, set); err != nil {
		c.log.Warn("semi-synchronous replication: could not move the source side with the primary role", "server", cn.srv.Name, "err", err)
	}
}

// holdOut keeps s, whose history has transactions p lacks, read-only and
// OFFLINE_HARD, naming them: rejoining it would replicate on top of a
// history that is not p's, and promoting it would lose p's writes.
func (c *Cluster) holdOut(s, p *Server, errant []string) {
	c.fence(s, "errant transactions")
	c.changed(slog.LevelError, "errant_transactions", s, fmt.Sprintf("%s has transactions the primary %s lacks: %s; it stays read-only and OFFLINE_HARD until an operator removes them or rebuilds it, then sets it ONLINE",
		s.Name, p.Name, strings.Join(errant, ", ")), "server held out: its history is not a prefix of the primary's")
	_ = c.SetServerStatus(s.Name, StatusOfflineHard)
}

// tendFenced looks after fenced servers that answer: a stale primary is set
// read-only at once; each is rejoined as a replica of the primary if its
// history allows, or held out; one found replicating from the primary is
// back in service.
func (c *Cluster) tendFenced(ctx context.Context, opt ProbeOptions, fm *failoverWatch, checks map[*Server]check) {
	for _, s := range c.Servers() {
		ck, ok := checks[s]
		if !ok || !s.fenced.Load() {
			continue
		}
		if !ck.readOnly {
			// Writable: whoever writes to it directly makes errant
			// transactions. Not one more.
			if cn, err := c.control(ctx, opt, s); err == nil {
				if err := run(cn, "SET GLOBAL read_only = ON"); err == nil {
					c.changed(slog.LevelWarn, "stale_primary_read_only", s, "set read_only=ON", "stale primary set read-only")
				}
				cn.Close()
			}
		}
		p, err := c.Primary()
		if err != nil || p == s || s.Status() == StatusOfflineHard {
			continue // no primary to rejoin, or held out: an operator decides
		}
		if ck.role == RoleReplica && ck.repl.running && sameAddress(ck.repl.source, p.Address) {
			c.unfence(s, "rejoined", "replicates from "+p.Name)
			delete(fm.rejoinAt, s)
			continue
		}
		if ck.repl.lastIOErrno == errantHeldOut && sameAddress(ck.repl.source, p.Address) {
			// The primary refused its position: it has transactions the
			// primary lacks, which the positions alone did not show.
			c.stopReplication(ctx, opt, s)
			c.holdOut(s, p, []string{fmt.Sprintf("beyond %q (%s refused its position: %s)", ck.repl.gtid, p.Name, ck.repl.lastIOError)})
			continue
		}
		if time.Now().Before(fm.rejoinAt[s]) {
			continue
		}
		if fm.rejoinAt == nil {
			fm.rejoinAt = make(map[*Server]time.Time)
		}
		if err := c.rejoin(ctx, opt, s, p); err != nil {
			fm.rejoinAt[s] = time.Now().Add(rejoinRetry)
			c.note(fm, slog.LevelWarn, "rejoin_failed", s, err.Error(), "fenced server could not be rejoined yet")
			continue
		}
		fm.rejoinAt[s] = time.Now().Add(rejoinGrace)
	}
}

// stopReplication stops s replicating, best effort.
func (c *Cluster) stopReplication(ctx context.Context, opt ProbeOptions, s *Server) {
	if cn, err := c.control(ctx, opt, s); err == nil {
		_ = run(cn, "STOP SLAVE")
		cn.Close()
	}
}

// rejoin makes fenced server s a replica of p if its GTID history is a
// prefix of p's, else holds it out.
func (c *Cluster) rejoin(ctx context.Context, opt ProbeOptions, s, p *Server) error {
	release, err := c.lockTopology(ctx, opt, opt.Timeout)
	if err != nil {
		return err
	}
	defer release()
	cn, err := c.control(ctx, opt, s)
	if err != nil {
		return err
	}
	defer cn.Close()
	if err := run(cn, "SET GLOBAL read_only = ON"); err != nil {
		return err
	}
	st, err := readState(cn)
	if err != nil {
		return err
	}
	if st.repl.running && sameAddress(st.repl.source, p.Address) {
		return nil // rejoined already, by another switchyard
	}
	pc, err := c.control(ctx, opt, p)
	if err != nil {
		return err
	}
	pst, err := readState(pc)
	pc.Close()
	if err != nil {
		return err
	}
	if errant := errantGTIDs(st.current, pst.slavePos, pst.binlogPos); len(errant) > 0 {
		c.holdOut(s, p, errant)
		return nil
	}
	if err := c.repoint(ctx, opt, s, p, st.current); err != nil {
		return err
	}
	c.changed(slog.LevelInfo, "rejoining", s, fmt.Sprintf("read_only=ON, replicating from %s from %q (its history is a prefix of %s's)", p.Name, st.current, p.Name),
		"fenced server rejoins as a replica")
	return nil
}

// switchover moves the primary role to target ("": the best replica).
func (c *Cluster) switchover(ctx context.Context, opt ProbeOptions, target string) (*Server, error) {
	began := time.Now()
	old, err := c.Primary()
	if err != nil {
		return nil, fmt.Errorf("switchover needs a working primary: %w", err)
	}
	release, err := c.lockTopology(ctx, opt, c.fopt.HoldTimeout)
	if err != nil {
		return nil, err
	}
	defer release()
	states := c.readStates(ctx, opt, old)
	var cand *serverState
	if target == "" {
		var why string
		if cand, why = choose(states); cand == nil {
			return nil, fmt.Errorf("switchover: no replica can be promoted: %s", why)
		}
	} else {
		for i := range states {
			if states[i].srv.Name == target {
				cand = &states[i]
			}
		}
		if cand == nil {
			return nil, fmt.Errorf("switchover: %q is not a replica of this cluster", target)
		}
		if no := eligible(cand); no != "" {
			return nil, fmt.Errorf("switchover: %s cannot be promoted: %s", target, no)
		}
	}
	ocn, err := c.control(ctx, opt, old)
	if err != nil {
		return nil, err
	}
	defer ocn.Close()
	ccn, err := c.control(ctx, opt, cand.srv)
	if err != nil {
		return nil, err
	}
	defer ccn.Close()

	// From here new statements that need the primary wait.
	why := fmt.Sprintf("switchover from %s to %s under way", old.Name, cand.srv.Name)
	c.topo.switching.Store(&NoPrimaryError{Server: old.Name, Why: "is being switched over to " + cand.srv.Name, Until: "the switchover completes"})
	c.topo.changing.Store(&why)
	holdStart := time.Now()
	resume := func() {
		c.topo.switching.Store(nil)
		c.topo.changing.Store(nil)
		c.signalTopology()
	}
	defer resume()
	c.changed(slog.LevelWarn, "switchover_started", old, why, "switchover started: new writes wait")
	budget := c.fopt.HoldTimeout
	left := c.drain(ocn, old, budget/2)
	drained := time.Since(holdStart)
	if err := run(ocn, "SET GLOBAL read_only = ON"); err != nil {
		return nil, c.switchoverFailed(ocn, old, began, err)
	}
	pos, err := ocn.Query("SELECT @@gtid_binlog_pos")
	if err != nil || len(pos.Rows) != 1 || len(pos.Rows[0]) != 1 {
		return nil, c.switchoverFailed(ocn, old, began, fmt.Errorf("reading the position of %s: %v", old.Name, err))
	}
	oldPos := pos.Rows[0][0].String
	remaining := budget - time.Since(holdStart)
	if remaining < time.Second {
		remaining = time.Second
	}
	if err := catchUp(ccn, oldPos, remaining); err != nil {
		return nil, c.switchoverFailed(ocn, old, began, err)
	}
	if err := run(ccn, "STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = OFF"); err != nil {
		_ = run(ccn, "SET GLOBAL read_only = ON", "START SLAVE")
		return nil, c.switchoverFailed(ocn, old, began, fmt.Errorf("promoting %s: %w", cand.srv.Name, err))
	}
	c.semiSyncSource(ccn, true)
	c.fence(old, fmt.Sprintf("switched over to %s: rejoins as its replica", cand.srv.Name))
	c.setRole(old, RoleReplica)
	c.promoted(cand.srv)
	resume()
	held := time.Since(holdStart)
	c.changed(slog.LevelWarn, "promoted", cand.srv, fmt.Sprintf("%s is the primary in place of %s; writes waited %v (in-flight transactions drained in %v, %d left)",
		cand.srv.Name, old.Name, ms(held), ms(drained), left), "switchover: writes go to the new primary")
	final, err := readState(ccn)
	if err != nil {
		final = *cand
	}
	// The old primary has nothing the new one lacks: the new one applied
	// its whole binlog.
	var others []serverState
	for _, st := range states {
		if st.srv != cand.srv {
			others = append(others, st)
		}
	}
	c.repointAll(ctx, opt, others, cand.srv, final)
	if err := c.repoint(ctx, opt, old, cand.srv, oldPos); err != nil {
		c.log.Warn("switchover: the old primary could not be made a replica yet; it stays fenced and is retried", "server", old.Name, "err", err)
	}
	c.changed(slog.LevelInfo, "switchover_done", cand.srv, fmt.Sprintf("from %s to %s in %v; writes waited %v", old.Name, cand.srv.Name, ms(time.Since(began)), ms(held)),
		"switchover done")
	return cand.srv, nil
}

// switchoverFailed puts the old primary back to taking writes.
func (c *Cluster) switchoverFailed(ocn *Conn, old *Server, began time.Time, err error) error {
	if rerr := run(ocn, "SET GLOBAL read_only = OFF"); rerr != nil {
		err = fmt.Errorf("%w; and setting %s writable again failed: %v", err, old.Name, rerr)
	}
	c.changed(slog.LevelError, "switchover_failed", old, fmt.Sprintf("%v (after %v); %s stays the primary", err, ms(time.Since(began)), old.Name), "switchover failed")
	return err
}

// drain waits, at most wait, until the old primary, which takes no new
// writes now, runs nothing that was under way: no statement or transaction
// of this proxy's sessions, then no transaction of anyone else's (other
// switchyards, direct clients) as the server sees them. It returns how
// many transactions were left.
func (c *Cluster) drain(cn *Conn, old *Server, wait time.Duration) int {
	deadline := time.Now().Add(wait)
	// A session that got the primary just before writes were held may
	// still be on its way to it: give it time to get there, and be seen.
	time.Sleep(drainGrace)
	for old.Outstanding.Load() > 0 || old.openTransactions() > 0 {
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	for {
		// INNODB_TRX is a snapshot the server refreshes only once it has
		// not been read for 100 ms: it is polled slower than that.
		_ = cn.SetDeadline(time.Now().Add(controlTimeout))
		res, err := cn.Query("SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id <> CONNECTION_ID()")
		_ = cn.SetDeadline(time.Time{})
		if err != nil || len(res.Rows) != 1 || len(res.Rows[0]) != 1 {
			return -1
		}
		n, _ := strconv.Atoi(res.Rows[0][0].String)
		if n == 0 {
			return 0
		}
		if time.Now().Add(trxSnapshotAge).After(deadline) {
			c.logOpenTransactions(cn)
			return n
		}
		time.Sleep(trxSnapshotAge)
	}
}

// drainGrace is how long a switchover gives a statement that got the old
// primary just before writes were held to reach it; trxSnapshotAge how
// often INNODB_TRX can be read fresh.
const (
	drainGrace     = 20 * time.Millisecond
	trxSnapshotAge = 150 * time.Millisecond
)

// logOpenTransactions logs the transactions a switchover did not wait
// for, so that an operator can tell which clients hold them.
func (c *Cluster) logOpenTransactions(cn *Conn) {
	_ = cn.SetDeadline(time.Now().Add(controlTimeout))
	defer cn.SetDeadline(time.Time{})
	res, err := cn.Query("SELECT trx_mysql_thread_id, trx_started, trx_state, trx_rows_modified, LEFT(trx_query, 100) " +
		"FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id <> CONNECTION_ID()")
	if err != nil {
		return
	}
	for _, row := range res.Rows {
		vals := make([]string, len(row))
		for i, v := range row {
			vals[i] = v.String
		}
		c.log.Warn("switchover: transaction still open on the old primary", "server", cn.srv.Name, "trx", strings.Join(vals, " | "))
	}
}

// ms rounds a duration for an event's detail.
func ms(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
