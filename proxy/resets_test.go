package proxy

import (
	"strings"
	"testing"

	"switchyard/router"
)

// TestUnprivilegedTextsResetNothing: a text that succeeds without running
// the FLUSH PRIVILEGES (or FLUSH STATUS) it shows (a handler swallowed its
// refusal; a version comment the server skips; several statements) must
// not reset the counts of wrong passwords or of aborted clients. Before,
// any client could unblock every account so (found in review): the proxy
// reset after any text that succeeded.
func TestUnprivilegedTextsResetNothing(t *testing.T) {
	cl := router.NewClassifier(nil)
	for _, q := range []string{
		"IF 0 THEN FLUSH PRIVILEGES; END IF",
		"BEGIN NOT ATOMIC DECLARE CONTINUE HANDLER FOR SQLEXCEPTION BEGIN END; FLUSH PRIVILEGES; END",
		"/*M!999999 FLUSH PRIVILEGES */",
		"SELECT 1 /*M!999999 ; FLUSH PRIVILEGES */",
		"SELECT 1 /*!999999 ; FLUSH PRIVILEGES */",
		"SELECT 1; FLUSH PRIVILEGES",
	} {
		c := cl.Classify(q)
		if resetsAlone(&c) && router.PasswordErrorResets(q).All {
			t.Errorf("resets every count of wrong passwords: %q (%s)", q, c.Flags())
		}
		q = strings.Replace(q, "PRIVILEGES", "STATUS", 1)
		c = cl.Classify(q)
		if resetsAlone(&c) && router.FlushesStatus(q) {
			t.Errorf("resets the count of aborted clients: %q (%s)", q, c.Flags())
		}
	}
	for _, q := range []string{"FLUSH PRIVILEGES", "FLUSH STATUS"} {
		if c := cl.Classify(q); !resetsAlone(&c) {
			t.Errorf("%s alone resets nothing", q)
		}
	}
}
