package observe

import (
	"time"

	"switchyard/backend"
)

// Status is what /status shows: switchyard itself, its clients, and every
// server with its role, state, lag and pool.
type Status struct {
	Version    string    `json:"version"`
	ConfigFile string    `json:"config_file"`
	StartedAt  time.Time `json:"started_at"`
	UptimeSecs float64   `json:"uptime_seconds"`
	Healthy    bool      `json:"healthy"`
	Health     string    `json:"health"`
	// Primary is the writable primary's name, "" when there is none.
	Primary    string `json:"primary"`
	SplitBrain string `json:"split_brain,omitempty"`
	// Monitored: roles come from the monitor (monitor.user is set), not
	// from the order of the servers.
	Monitored bool           `json:"monitored"`
	Clients   ClientStatus   `json:"clients"`
	Firewall  string         `json:"firewall"`
	Servers   []ServerStatus `json:"servers"`
	// Events are the latest topology events, oldest first.
	Events []EventStatus `json:"events"`
}

// ClientStatus counts client connections.
type ClientStatus struct {
	Current int64 `json:"current"`
	Max     int   `json:"max"`
	Total   int64 `json:"total"`
	Pinned  int64 `json:"pinned_sessions"`
}

// ServerStatus is one server in Status.
type ServerStatus struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Role    string `json:"role"`
	// ReadOnly: the primary has read_only ON, which only the only server
	// of a cluster can have; writes go to it and it refuses them itself.
	ReadOnly bool   `json:"read_only,omitempty"`
	Status   string `json:"status"`
	Healthy  bool   `json:"healthy"`
	ReadPool bool   `json:"read_pool"`
	// Why says what keeps a replica out of the read pool.
	Why         string `json:"why,omitempty"`
	Replicating bool   `json:"replicating"`
	// LagMs is a replica's replication lag, null while unknown.
	LagMs       *int64     `json:"lag_ms"`
	LagFrozen   bool       `json:"lag_frozen"`
	GTID        string     `json:"gtid"`
	LastError   string     `json:"last_error,omitempty"`
	Outstanding int64      `json:"outstanding"`
	Pool        PoolStatus `json:"pool"`
}

// PoolStatus counts a server's connections.
type PoolStatus struct {
	Open     int `json:"open"`
	Idle     int `json:"idle"`
	Borrowed int `json:"borrowed"`
	Waiters  int `json:"waiters"`
}

// EventStatus is one topology event.
type EventStatus struct {
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"`
	Server string    `json:"server,omitempty"`
	Detail string    `json:"detail,omitempty"`
}

// statusEvents is how many of the latest events /status shows.
const statusEvents = 20

// Status describes switchyard now.
func (o *Observer) Status() Status {
	cl := o.src.Cluster
	m := o.src.Proxy.Metrics()
	st := Status{Version: o.src.Version, ConfigFile: o.src.ConfigFile, StartedAt: o.started,
		UptimeSecs: time.Since(o.started).Seconds(), SplitBrain: cl.SplitBrain(), Monitored: cl.IsProbing(),
		Clients:  ClientStatus{Current: m.Clients, Max: m.MaxClients, Total: m.ClientsTotal, Pinned: m.PinnedSessions},
		Firewall: m.Firewall.Mode.String(), Servers: []ServerStatus{}, Events: []EventStatus{}}
	st.Healthy, st.Health = o.Health()
	if p, err := cl.Primary(); err == nil {
		st.Primary = p.Name
	}
	pool := readPool(cl)
	for _, s := range cl.Servers() {
		v := s.View()
		ps := o.src.Pool.Stats(s)
		ss := ServerStatus{Name: v.Name, Address: v.Address, Role: v.Role.String(), ReadOnly: v.ReadOnly, Status: v.Status.String(),
			Healthy: s.Healthy() || !cl.IsProbing(), ReadPool: pool[s], Why: v.Why,
			Replicating: v.Replicating, LagFrozen: v.LagFrozen, GTID: v.GTID, LastError: v.LastError,
			Outstanding: v.Outstanding, Pool: PoolStatus{Open: ps.Open, Idle: ps.Idle, Borrowed: ps.Borrowed, Waiters: ps.Waiters}}
		if v.Role == backend.RoleReplica && v.LagKnown {
			ms := v.Lag.Milliseconds()
			ss.LagMs = &ms
		}
		st.Servers = append(st.Servers, ss)
	}
	events := cl.Events()
	for _, e := range events[max(0, len(events)-statusEvents):] {
		st.Events = append(st.Events, EventStatus{Time: e.Time, Kind: e.Kind, Server: e.Server, Detail: e.Detail})
	}
	return st
}
