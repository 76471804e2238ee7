package backend

import (
	"io"
	"log/slog"
	"testing"
)

func testCluster() *Cluster {
	c := NewCluster([]ServerSpec{{Name: "db1", Address: "127.0.0.1:1"}, {Name: "db2", Address: "127.0.0.1:2"}, {Name: "db3", Address: "127.0.0.1:3"}}, Options{Logger: discardLogger()})
	c.SetProbing(true)
	for i, s := range c.Servers() {
		s.healthy.Store(true)
		if i == 0 {
			s.role.Store(int32(RolePrimary))
		} else {
			s.role.Store(int32(RoleReplica))
			s.readable.Store(true)
		}
	}
	return c
}

func names(servers []*Server) []string {
	var out []string
	for _, s := range servers {
		out = append(out, s.Name)
	}
	return out
}

func TestOperatorStatusesAndShunning(t *testing.T) {
	c := testCluster()
	if got := names(c.Replicas(nil)); len(got) != 2 {
		t.Fatalf("replicas %v, want db2 and db3", got)
	}
	if err := c.SetServerStatus("db2", StatusOfflineSoft); err != nil {
		t.Fatal(err)
	}
	if got := names(c.Replicas(nil)); len(got) != 1 || got[0] != "db3" {
		t.Fatalf("with db2 OFFLINE_SOFT: replicas %v, want [db3]", got)
	}
	if err := c.SetServerStatus("db1", StatusOfflineHard); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Primary(); err == nil {
		t.Fatal("an OFFLINE_HARD primary still takes writes")
	}
	if err := c.SetServerStatus("db1", StatusOnline); err != nil {
		t.Fatal(err)
	}
	if p, err := c.Primary(); err != nil || p.Name != "db1" {
		t.Fatalf("back ONLINE: primary %v, %v", p, err)
	}
	if err := c.SetServerStatus("db1", StatusShunned); err == nil {
		t.Fatal("SHUNNED set by hand")
	}
	if err := c.SetServerStatus("nope", StatusOnline); err == nil {
		t.Fatal("unknown server accepted")
	}
	c.Servers()[2].healthy.Store(false)
	if st := c.Servers()[2].Status(); st != StatusShunned {
		t.Fatalf("failing server status %v, want SHUNNED", st)
	}
	if got := names(c.Replicas(nil)); len(got) != 0 {
		t.Fatalf("replicas %v, want none (db2 offline, db3 shunned)", got)
	}
	snap := c.Snapshot()
	if len(snap) != 3 || snap[1].Status != StatusOfflineSoft || snap[2].Status != StatusShunned || snap[0].Role != RolePrimary {
		t.Fatalf("snapshot %+v", snap)
	}
	var kinds []string
	for _, e := range c.Events() {
		kinds = append(kinds, e.Kind+":"+e.Server)
	}
	if len(kinds) != 3 {
		t.Fatalf("events %v, want three status changes", kinds)
	}
}

func TestSplitBrainDetection(t *testing.T) {
	c := testCluster()
	c.checkSplitBrain(c.Servers())
	if c.SplitBrain() != "" {
		t.Fatalf("split brain reported for a sane cluster: %s", c.SplitBrain())
	}
	c.Servers()[1].role.Store(int32(RolePrimary))
	c.checkSplitBrain(c.Servers())
	if c.SplitBrain() == "" {
		t.Fatal("two writable servers not reported")
	}
	if _, err := c.Primary(); err == nil {
		t.Fatal("writes accepted during split brain")
	}
	c.Servers()[1].role.Store(int32(RoleReplica))
	a, b := "127.0.0.1:1", "127.0.0.1:9"
	c.Servers()[1].source.Store(&a)
	c.Servers()[2].source.Store(&b)
	c.Servers()[1].replicating.Store(true)
	c.Servers()[2].replicating.Store(true)
	c.checkSplitBrain(c.Servers())
	if c.SplitBrain() == "" {
		t.Fatal("replicas following different sources not reported")
	}
	c.Servers()[2].source.Store(&a)
	c.checkSplitBrain(c.Servers())
	if c.SplitBrain() != "" {
		t.Fatalf("still reported after it was resolved: %s", c.SplitBrain())
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
