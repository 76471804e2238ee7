package backend

import (
	"context"
	"testing"
	"time"

	"switchyard/internal/mysqltest"
)

// TestPoolStats counts a server's connections as open, idle, borrowed and
// waiters, the last while a session waits at servers[].max_connections.
func TestPoolStats(t *testing.T) {
	_, _, srv, p := poolOver(t, PoolOptions{}, 10*time.Second, 1)
	if st := p.Stats(srv); st != (PoolStats{}) {
		t.Fatalf("empty pool: %+v", st)
	}
	cn := mustAcquire(t, p, srv, appReq())
	if st := p.Stats(srv); st != (PoolStats{Open: 1, Borrowed: 1}) {
		t.Fatalf("one lent: %+v", st)
	}
	got := make(chan *Conn, 1)
	go func() {
		c, err := p.Acquire(context.Background(), srv, appReq())
		if err != nil {
			t.Error(err)
		}
		got <- c
	}()
	mysqltest.Eventually(t, "a waiter counted", func() bool { return p.Stats(srv).Waiters == 1 })
	p.Release(cn)
	cn = <-got
	if st := p.Stats(srv); st != (PoolStats{Open: 1, Borrowed: 1}) {
		t.Fatalf("handed to the waiter: %+v", st)
	}
	p.Release(cn)
	if st := p.Stats(srv); st != (PoolStats{Open: 1, Idle: 1}) {
		t.Fatalf("returned: %+v", st)
	}
}

func TestLatencyHistogram(t *testing.T) {
	var h LatencyHistogram
	for _, d := range []time.Duration{100 * time.Microsecond, 500 * time.Microsecond, 3 * time.Millisecond, time.Minute} {
		h.Observe(d)
	}
	cum, count, sum := h.Snapshot()
	if count != 4 || cum[0] != 2 || cum[3] != 3 || cum[len(cum)-1] != 3 {
		t.Errorf("cumulative %v, count %d", cum, count)
	}
	if want := (time.Minute + 3600*time.Microsecond).Seconds(); sum < want-1e-9 || sum > want+1e-9 {
		t.Errorf("sum %v, want %v", sum, want)
	}
}

func TestEventCounts(t *testing.T) {
	c := NewCluster([]ServerSpec{{Name: "db1", Address: "127.0.0.1:1"}}, Options{Logger: discardLogger()})
	if err := c.SetServerStatus("db1", StatusOfflineSoft); err != nil {
		t.Fatal(err)
	}
	if err := c.SetServerStatus("db1", StatusOnline); err != nil {
		t.Fatal(err)
	}
	if n := c.EventCounts()["status"]; n != 2 {
		t.Errorf("status events %d, want 2", n)
	}
}
