package integration

// PHP conformance: each script in testdata/php/conformance_*.php runs twice,
// once through switchyard and once directly against the primary, and what
// PHP observed must be the same both times: results and their PHP types,
// column metadata, affected rows, insert ids, info strings, warnings,
// errors (code, SQLSTATE, message), transactions, change_user, persistent
// connections and failed logins. The direct run is the expectation, so
// nothing here is hard-coded; a few facts are also checked by value, so
// that two runs broken alike cannot pass.

import (
	"encoding/json"
	"fmt"
	"net"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// confEnv is the environment of a conformance script reaching addr.
func confEnv(addr, table string, extra ...string) []string {
	host, port, _ := net.SplitHostPort(addr)
	return append([]string{"SY_HOST=" + host, "SY_PORT=" + port, "SY_USER=" + cluster.AppUser,
		"SY_PASS=" + cluster.AppPassword, "SY_DB=" + cluster.Database, "SY_TABLE=" + table,
		"SY_USER2=" + cmdsUser2, "SY_PASS2=" + cmdsPass2}, extra...)
}

// confDiff lists the paths where got differs from want, with both values.
func confDiff(path string, want, got any) []string {
	wm, wok := want.(map[string]any)
	gm, gok := got.(map[string]any)
	if wok && gok {
		keys := map[string]bool{}
		for k := range wm {
			keys[k] = true
		}
		for k := range gm {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		var out []string
		for _, k := range sorted {
			out = append(out, confDiff(path+"."+k, wm[k], gm[k])...)
		}
		return out
	}
	wl, wok := want.([]any)
	gl, gok := got.([]any)
	if wok && gok && len(wl) == len(gl) {
		var out []string
		for i := range wl {
			out = append(out, confDiff(fmt.Sprintf("%s[%d]", path, i), wl[i], gl[i])...)
		}
		return out
	}
	if reflect.DeepEqual(want, got) {
		return nil
	}
	w, _ := json.Marshal(want)
	g, _ := json.Marshal(got)
	return []string{fmt.Sprintf("%s: direct %s, through switchyard %s", path, w, g)}
}

// confRun runs script through the proxy and directly, and fails the test on
// every difference. It returns the direct run's output for value checks.
func confRun(t *testing.T, proxyAddr, script, table string, extra ...string) map[string]any {
	t.Helper()
	direct := cmdsRunPHP(t, script, confEnv(cluster.Primary.Addr(), table+"_direct", extra...)...)
	proxied := cmdsRunPHP(t, script, confEnv(proxyAddr, table+"_proxy", extra...)...)
	if diffs := confDiff("", direct, proxied); len(diffs) > 0 {
		t.Errorf("%s %s: PHP sees %d difference(s) through switchyard:\n%s", script, strings.Join(extra, " "), len(diffs), strings.Join(diffs, "\n"))
	}
	if testing.Verbose() {
		b, _ := json.MarshalIndent(direct, "", "  ")
		t.Logf("%s %s, direct:\n%s", script, strings.Join(extra, " "), b)
	}
	return direct
}

// TestPHPConformanceMysqli: query, multi_query, prepared statements with
// bind_param of every type (blobs by send_long_data), insert_id,
// affected_rows and info, transactions and savepoints, real_escape_string
// with utf8mb4, change_user, persistent connections and wrong passwords.
func TestPHPConformanceMysqli(t *testing.T) {
	cmdsSecondUser(t)
	p := cmdsStartProxy(t)
	out := confRun(t, p.Addr(), "conformance_mysqli.php", "conf_mysqli")
	// The direct run is the expectation; these make sure it saw what the
	// script meant to exercise.
	cmdsExpect(t, out, `3`, "query", "affected")
	cmdsExpect(t, out, `true`, "prepared", "blob_roundtrip")
	cmdsExpect(t, out, `true`, "escape", "roundtrip")
	cmdsExpect(t, out, `true`, "persistent", "same_connection")
	cmdsExpect(t, out, `null`, "persistent", "marker")
	cmdsExpect(t, out, `true`, "change_user", "ok")
	cmdsExpectErr(t, out, "errno", 1045, "HY000", "wrong_password") // mysqlnd: HY000 for connect errors
	cmdsExpectErr(t, out, "errno", 1045, "28000", "change_user", "wrong_password")
	cmdsExpectErr(t, out, "errno", 1062, "23000", "affected", "duplicate")
}

// TestPHPConformancePDO: PDO with emulated and with native prepares:
// lastInsertId, rowCount, column metadata, LOBs, several rowsets,
// transactions, exceptions with their SQLSTATE and driver code, wrong
// password.
func TestPHPConformancePDO(t *testing.T) {
	cmdsSecondUser(t)
	p := cmdsStartProxy(t)
	for _, emulate := range []string{"1", "0"} {
		t.Run("emulate="+emulate, func(t *testing.T) {
			out := confRun(t, p.Addr(), "conformance_pdo.php", "conf_pdo"+emulate, "SY_EMULATE="+emulate)
			cmdsExpect(t, out, `"4"`, "prepared_insert", "last_insert_id")
			cmdsExpect(t, out, `true`, "blob_roundtrip")
			cmdsExpectErr(t, out, "driver_code", 1062, "23000", "errors", "duplicate")
			cmdsExpectErr(t, out, "driver_code", 1064, "42000", "errors", "syntax")
			// PDO reports every connect error with SQLSTATE HY000.
			cmdsExpectErr(t, out, "driver_code", 1045, "HY000", "wrong_password")
		})
	}
}
