package integration

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"switchyard/integration/harness"
)

// mtrSubset is a fast part of bench/mtr/tests.txt: tests of MariaDB's own
// regression suite that pass through switchyard, plain and with
// --ps-protocol, chosen for what they exercise (change of user, KILL,
// extended metadata, accounts created by the test and SET GLOBAL before a
// new login, prepared statements, warnings, LOAD DATA, the mysql CLI,
// dropping the current schema, KILL USER and KILL QUERY ID, a statement
// prepared again, procedures that return result sets). The whole list runs
// with make mtr. change_user_notembedded also checks that an access denied
// names a loopback client 'localhost' as mtr's server, which resolves
// names, does; set_password logs in as accounts with old passwords;
// lock_multi and user_var read the process list for their own sessions;
// sp_notembedded has a procedure kill its own query; aborted_clients and
// max_password_errors count what the server never sees through a proxy.
// loaddata is not here: a file its first mode leaves in the shared vardir
// makes its second fail (ER_FILE_EXISTS_ERROR), a harness matter, not the
// proxy's.
var mtrSubset = []string{
	"alias", "mysql-metadata", "type_json", "events_1", "ps_grant",
	"lock_kill", "sp-bugs", "errors", "warnings", "mysql_comments", "drop",
	"kill", "type_datetime", "rownum", "sp-row", "change_user_notembedded", "set_password",
	"lock_multi", "user_var", "sp_notembedded", "aborted_clients", "max_password_errors",
}

// TestMTRSubset runs mtrSubset with bench/mtr/run through switchyard, each
// test as MariaDB's mysql-test-run judges it against the server's own
// expected output.
func TestMTRSubset(t *testing.T) {
	const runner = "/usr/share/mysql/mysql-test/mariadb-test-run.pl"
	if _, err := os.Stat(runner); err != nil {
		t.Fatalf("mariadb-test is not installed (make deps installs it): %v", err)
	}
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	args := append([]string{"-m", "proxy,proxy-ps", "-t", "2", "-o", out}, mtrSubset...)
	cmd := exec.CommandContext(ctx, filepath.Join(root, "bench", "mtr", "run"), args...)
	// SIGTERM lets the script stop the server and switchyard it started.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bench/mtr/run: %v\n%s", err, b)
	}
	for _, mode := range []string{"proxy", "proxy-ps"} {
		got := map[string]string{}
		f, err := os.Open(filepath.Join(out, mode, "results.tsv"))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			name, res, _ := strings.Cut(sc.Text(), "\t")
			res, _, _ = strings.Cut(res, "\t")
			got[name] = res
		}
		f.Close()
		for _, test := range mtrSubset {
			if got[test] == "PASS" {
				continue
			}
			report, _ := os.ReadFile(filepath.Join(out, mode, "fail", test+".txt"))
			t.Errorf("%s (%s): %q, want PASS\n%s", test, mode, got[test], report)
		}
	}
}
