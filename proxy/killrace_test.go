package proxy

import (
	"sync"
	"testing"

	"switchyard/internal/mysqltest"
)

// TestKillReadsOtherSessionsUsersSafely: KILL USER, KILL by id and KILL
// QUERY ID read other sessions' users from the killer's goroutine while
// those sessions may change user (COM_CHANGE_USER) on theirs. Under -race
// this failed before: the killer read ClientConn.login, which the other
// session's goroutine replaces (found in review).
func TestKillReadsOtherSessionsUsersSafely(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	changer := h.login(t, mysqltest.Login{User: "app", Pass: "secret", Schema: "shop"})
	killer := h.login(t, mysqltest.Login{User: "bob", Pass: "bobpw", Schema: "shop"})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 20 {
			user, pass := "app", "secret"
			if i%2 == 0 {
				user, pass = "bob", "bobpw"
			}
			if err := changer.ChangeUser(user, pass, "shop", ""); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for range 20 {
		// Another user's sessions: refused, but only after reading them.
		killer.Query("KILL QUERY USER nobody_here")
		killer.Query("KILL QUERY ID 424242")
	}
	wg.Wait()
}
