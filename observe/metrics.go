package observe

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"switchyard/backend"
	"switchyard/firewall"
)

// The metrics, all prefixed switchyard_. Each is read from the proxy's and
// the backend's counters when scraped (collector.Collect).

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("switchyard_"+name, help, labels, nil)
}

var (
	// Clients.
	descClients         = desc("client_connections", "Client connections open now.")
	descClientsMax      = desc("client_connections_max", "limits.max_client_connections.")
	descClientsTotal    = desc("client_connections_total", "Client connections accepted since start.")
	descClientsAborted  = desc("client_connections_aborted_total", "Client sessions that ended without COM_QUIT (the client went away, timed out or was killed), as a server's Aborted_clients.")
	descClientsRefused  = desc("client_connections_refused_total", "Client connections refused before their session began, by reason: max_client_connections, user_max_connections, access_denied, tls_required, proxy_protocol, handshake, server.", "reason")
	descAccepting       = desc("accepting_clients", "1 while switchyard accepts new clients (listening, not shutting down, below limits.max_client_connections).")
	descHealthy         = desc("healthy", "1 when /health answers 200: switchyard accepts clients and a writable primary is known.")
	descCommands        = desc("commands_total", "Protocol commands run, by command.", "command")
	descStatements      = desc("statements_total", "Statements run (COM_QUERY and COM_STMT_EXECUTE), by route (primary, replica, fallback: meant for a replica but run on the primary, none: answered or refused by switchyard or failed before a server) and class.", "route", "class")
	descErrors          = desc("client_errors_total", "Error packets clients received, by errno (0: above 5000) and origin (server: relayed in a server's response; proxy: written by switchyard).", "errno", "origin")
	descDuration        = desc("statement_duration_seconds", "Time from sending a command to a server to the end of its response reaching the client's buffer, by server.", "server")
	descPinned          = desc("sessions_pinned", "Sessions held on their server connection now by state that cannot be replayed.")
	descPinnedBy        = desc("sessions_pinned_by_reason", "Sessions pinned now, by reason (a session may be pinned for several).", "reason")
	descPins            = desc("session_pins_total", "Times a session was pinned, by reason.", "reason")
	descUnparsed        = desc("unparsed_statements_total", "Statements the parser could not read; they ran on the primary.")
	descHintsIgnored    = desc("hints_ignored_total", "Replica hints and query rules not followed because the statement may write.")
	descReplicaRetries  = desc("replica_write_retries_total", "Reads a replica refused as writes (a view over a writing function) that then ran on the primary.")
	descStallChecks     = desc("stall_checks_total", "Times a server silent in the middle of a response was asked whether it still worked on it.")
	descDesyncs         = desc("desyncs_total", "Server responses switchyard could not follow; each ended its session and closed the server connection.")
	descSlowQueries     = desc("slow_queries_total", "Statements slower than slow_log.threshold.")
	descGTIDWaits       = desc("gtid_waits_total", "Reads that waited on a replica (MASTER_GTID_WAIT, up to routing.gtid_wait) for writes read_your_writes says they must see, by result: ok (the read ran there), timeout and error (it ran on the primary).", "result")
	descFirewallMode    = desc("firewall_mode", "1 for the firewall's mode (off, learn, enforce).", "mode")
	descFirewallEntries = desc("firewall_allowlist_entries", "Entries on the firewall's allow-list, all users.")
	descFirewallBlocked = desc("firewall_blocked_total", "Statements the firewall refused in enforce mode.")
	descFirewallLearned = desc("firewall_learned_total", "Allow-list entries learn mode added.")
	descFirewallDropped = desc("firewall_digests_dropped_total", "Statements learn mode could not record: the allow-list was full, the text too long, or the statement had no digest the firewall trusts.")

	// Servers and pools.
	descPoolOpen      = desc("pool_open_connections", "Client connections open to the server, idle or lent.", "server")
	descPoolIdle      = desc("pool_idle_connections", "Connections idle in the pool.", "server")
	descPoolBorrowed  = desc("pool_borrowed_connections", "Connections lent to sessions.", "server")
	descPoolWaiters   = desc("pool_waiters", "Sessions waiting for a connection because the server is at servers[].max_connections.", "server")
	descServerUp      = desc("server_up", "1 when the server's last check passed.", "server")
	descServerRole    = desc("server_role", "1 for the server's role as last seen (primary, replica, unknown).", "server", "role")
	descServerStatus  = desc("server_status", "1 for the server's status (ONLINE, SHUNNED, OFFLINE_SOFT, OFFLINE_HARD).", "server", "status")
	descServerLag     = desc("server_replication_lag_seconds", "A replica's replication lag as last measured; absent while unknown.", "server")
	descServerFrozen  = desc("server_lag_frozen", "1 while a replica serves reads with the lag it had when the primary became unreachable.", "server")
	descReadPool      = desc("server_read_pool", "1 while the replica serves reads (the read pool).", "server")
	descOutstanding   = desc("server_outstanding_statements", "Statements running on the server through switchyard now.", "server")
	descConnsOpened   = desc("server_connections_opened_total", "Connections opened to the server for clients.", "server")
	descConnectErrors = desc("server_connect_errors_total", "Connections to the server that failed to open.", "server")
	descWritable      = desc("primary_writable", "1 when a writable primary is known.")
	descSplitBrain    = desc("split_brain", "1 while the servers disagree on which is the primary (writes are refused).")
	descEvents        = desc("events_total", "Topology events since start, by kind (server_down, server_up, role, replica_out, replica_in, no_primary, ...).", "kind")
	descFailovers     = desc("failovers_total", "Failovers, by result (done, failed).", "result")
	descReloads       = desc("reloads_total", "Config reloads, by result (ok, rejected).", "result")
	descBuildInfo     = desc("build_info", "1, labelled with switchyard's version.", "version")

	allDescs = []*prometheus.Desc{descClients, descClientsMax, descClientsTotal, descClientsAborted, descClientsRefused, descAccepting,
		descHealthy, descCommands, descStatements, descErrors, descDuration, descPinned, descPinnedBy, descPins,
		descUnparsed, descHintsIgnored, descReplicaRetries, descStallChecks, descDesyncs, descSlowQueries, descGTIDWaits,
		descFirewallMode, descFirewallEntries, descFirewallBlocked, descFirewallLearned, descFirewallDropped,
		descPoolOpen, descPoolIdle, descPoolBorrowed, descPoolWaiters, descServerUp, descServerRole, descServerStatus,
		descServerLag, descServerFrozen, descReadPool, descOutstanding, descConnsOpened, descConnectErrors,
		descWritable, descSplitBrain, descEvents, descFailovers, descReloads, descBuildInfo}
)

// latencyBuckets are backend.LatencyBuckets as a histogram's bounds.
var latencyBounds = backend.LatencyBuckets

// failoverKinds are the event kinds that end a failover, by result.
var failoverKinds = map[string]string{"failover_done": "done", "failover_failed": "failed"}

// readPool are the servers that serve reads now, as routing picks them.
func readPool(cl *backend.Cluster) map[*backend.Server]bool {
	m := map[*backend.Server]bool{}
	for _, s := range cl.Replicas(nil) {
		m[s] = true
	}
	return m
}

// collector turns the counters into metrics at each scrape.
type collector struct{ o *Observer }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
}

func flag(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	o := c.o
	m := o.src.Proxy.Metrics()
	healthy, _ := o.Health()
	gauge(ch, descClients, float64(m.Clients))
	gauge(ch, descClientsMax, float64(m.MaxClients))
	counter(ch, descClientsTotal, float64(m.ClientsTotal))
	counter(ch, descClientsAborted, float64(m.ClientsAborted))
	for reason, n := range m.Refused {
		counter(ch, descClientsRefused, float64(n), reason)
	}
	gauge(ch, descAccepting, flag(m.Accepting))
	gauge(ch, descHealthy, flag(healthy))
	for cmd, n := range m.Commands {
		counter(ch, descCommands, float64(n), cmd)
	}
	for _, s := range m.Statements {
		counter(ch, descStatements, float64(s.N), s.Route, s.Class)
	}
	for _, e := range m.Errors {
		counter(ch, descErrors, float64(e.N), strconv.Itoa(e.Errno), e.Origin)
	}
	gauge(ch, descPinned, float64(m.PinnedSessions))
	for reason, n := range m.PinnedBy {
		gauge(ch, descPinnedBy, float64(n), reason)
	}
	for reason, n := range m.Pins {
		counter(ch, descPins, float64(n), reason)
	}
	counter(ch, descUnparsed, float64(m.Unparsed))
	counter(ch, descHintsIgnored, float64(m.HintsIgnored))
	counter(ch, descReplicaRetries, float64(m.ReplicaWriteRetries))
	counter(ch, descStallChecks, float64(m.StallChecks))
	counter(ch, descDesyncs, float64(m.Desyncs))
	counter(ch, descSlowQueries, float64(m.SlowQueries))
	for result, n := range m.GTIDWaits {
		counter(ch, descGTIDWaits, float64(n), result)
	}
	fw := m.Firewall
	for _, mode := range []firewall.Mode{firewall.Off, firewall.Learn, firewall.Enforce} {
		gauge(ch, descFirewallMode, flag(fw.Mode == mode), mode.String())
	}
	gauge(ch, descFirewallEntries, float64(fw.Entries))
	counter(ch, descFirewallBlocked, float64(fw.Blocked))
	counter(ch, descFirewallLearned, float64(fw.Learned))
	counter(ch, descFirewallDropped, float64(fw.Dropped))

	c.collectServers(ch)
	counter(ch, descReloads, float64(o.reloadsOK.Load()), "ok")
	counter(ch, descReloads, float64(o.reloadsRejected.Load()), "rejected")
	gauge(ch, descBuildInfo, 1, o.src.Version)
}

func (c *collector) collectServers(ch chan<- prometheus.Metric) {
	o := c.o
	cl := o.src.Cluster
	readPool := readPool(cl)
	for _, s := range cl.Servers() {
		v := s.View()
		name := s.Name
		ps := o.src.Pool.Stats(s)
		gauge(ch, descPoolOpen, float64(ps.Open), name)
		gauge(ch, descPoolIdle, float64(ps.Idle), name)
		gauge(ch, descPoolBorrowed, float64(ps.Borrowed), name)
		gauge(ch, descPoolWaiters, float64(ps.Waiters), name)
		gauge(ch, descServerUp, flag(s.Healthy() || !cl.IsProbing()), name)
		for _, r := range []backend.Role{backend.RolePrimary, backend.RoleReplica, backend.RoleUnknown} {
			gauge(ch, descServerRole, flag(v.Role == r), name, r.String())
		}
		for _, st := range []backend.Status{backend.StatusOnline, backend.StatusShunned, backend.StatusOfflineSoft, backend.StatusOfflineHard} {
			gauge(ch, descServerStatus, flag(v.Status == st), name, st.String())
		}
		if v.Role == backend.RoleReplica && v.LagKnown {
			gauge(ch, descServerLag, v.Lag.Seconds(), name)
		}
		gauge(ch, descServerFrozen, flag(v.LagFrozen), name)
		gauge(ch, descReadPool, flag(readPool[s]), name)
		gauge(ch, descOutstanding, float64(v.Outstanding), name)
		counter(ch, descConnsOpened, float64(s.ConnsOpened.Load()), name)
		counter(ch, descConnectErrors, float64(s.ConnErrors.Load()), name)
		cumulative, count, sum := s.Latency.Snapshot()
		buckets := make(map[float64]uint64, len(latencyBounds))
		for i, le := range latencyBounds {
			buckets[le] = cumulative[i]
		}
		ch <- prometheus.MustNewConstHistogram(descDuration, count, sum, buckets, name)
	}
	_, err := cl.Primary()
	gauge(ch, descWritable, flag(err == nil))
	gauge(ch, descSplitBrain, flag(cl.SplitBrain() != ""))
	failovers := map[string]int64{"done": 0, "failed": 0}
	for kind, n := range cl.EventCounts() {
		counter(ch, descEvents, float64(n), kind)
		if result, ok := failoverKinds[kind]; ok {
			failovers[result] += n
		}
	}
	for result, n := range failovers {
		counter(ch, descFailovers, float64(n), result)
	}
}
