package mysqltest

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"switchyard/wire"

	"github.com/go-mysql-org/go-mysql/mysql"
	driver "github.com/go-sql-driver/mysql"
)

// Eventually polls cond until it holds, failing the test after a generous
// deadline: the tests never assert how long something takes, only that it
// happens.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// CheckGoroutines fails the test if goroutines started during it are still
// running once its cleanups are done. It must be called before the test
// starts any, so that its cleanup runs after theirs.
func CheckGoroutines(t testing.TB) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("goroutines: %d before the test, %d after\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

// ServerError returns the server error in err, as go-sql-driver or
// go-mysql report it: its number, SQLSTATE and message; code 0 if there is
// none.
func ServerError(err error) (code uint16, state, message string) {
	var de *driver.MySQLError
	if errors.As(err, &de) {
		return de.Number, string(de.SQLState[:]), de.Message
	}
	var me *mysql.MyError
	if errors.As(err, &me) {
		return me.Code, me.State, me.Message
	}
	return 0, "", ""
}

// CommandName names a command byte as the tests show the fake server's
// command log: the command's name without COM_ ("QUERY", "STMT_PREPARE").
func CommandName(cmd byte) string {
	name := wire.CommandName(cmd)
	if strings.HasPrefix(name, "COM_0x") {
		return "CMD_" + name[len("COM_"):]
	}
	return strings.TrimPrefix(name, "COM_")
}
