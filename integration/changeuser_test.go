package integration

import (
	"testing"
	"time"

	"switchyard/integration/harness"
	"switchyard/internal/mysqltest"
)

// TestChangeUserReleasesLocks: COM_CHANGE_USER ends the previous user's
// session on the server before its OK, as the server's own change of user
// does, so a user lock taken before it is free for the next statement
// (mtr's change_user, Bug#31418). The proxy moves the client to new server
// connections; closing the old ones let the server release the lock some
// time after the OK.
func TestChangeUserReleasesLocks(t *testing.T) {
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", Servers: []*harness.Server{cluster.Primary}})
	c := mysqltest.Dial(t, p.Addr(), fsRawCaps, nil)
	_ = c.TCP.SetDeadline(time.Now().Add(time.Minute))
	if err := c.Login(mysqltest.Login{User: cluster.AppUser, Pass: cluster.AppPassword, Schema: cluster.Database}); err != nil {
		t.Fatal(err)
	}
	// The release raced with the next statement: a few rounds make a
	// lost race likely.
	for i := range 10 {
		if got := c.Value("SELECT GET_LOCK('sy_change_user_lock', 5)"); got != "1" {
			t.Fatalf("round %d: GET_LOCK: %q", i, got)
		}
		if err := c.ChangeUser(cluster.AppUser, cluster.AppPassword, cluster.Database, ""); err != nil {
			t.Fatalf("round %d: COM_CHANGE_USER: %v", i, err)
		}
		if got := c.Value("SELECT IS_FREE_LOCK('sy_change_user_lock')"); got != "1" {
			t.Fatalf("round %d: IS_FREE_LOCK right after COM_CHANGE_USER: %q, want 1", i, got)
		}
	}
}
