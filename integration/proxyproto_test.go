package integration

import (
	"database/sql"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"switchyard/integration/harness"
)

// TestProxyProtocolFromHAProxy puts HAProxy between clients and switchyard,
// once with send-proxy (v1) and once with send-proxy-v2, HAProxy
// connecting from 127.0.0.4, the one address listed in
// listen.proxy_protocol_networks. Clients connect from 127.0.0.2 and
// 127.0.0.3: switchyard's log lines and its access-denied message name
// them, not HAProxy. A header from an address not listed, and a listed
// peer that sends no header, are refused.
func TestProxyProtocolFromHAProxy(t *testing.T) {
	p := startProxy(t, harness.ProxyOptions{LogLevel: "debug",
		ExtraYAML: "listen:\n  proxy_protocol_networks: [127.0.0.4/32]\nlimits:\n  handshake_timeout: 2s\n"})
	v1, v2 := freeAddr(t), freeAddr(t)
	startHAProxy(t, fmt.Sprintf("frontend v1\n\tbind %s\n\tdefault_backend sy_v1\n"+
		"frontend v2\n\tbind %s\n\tdefault_backend sy_v2\n"+
		"backend sy_v1\n\tserver sy %s send-proxy source 127.0.0.4\n"+
		"backend sy_v2\n\tserver sy %s send-proxy-v2 source 127.0.0.4\n", v1, v2, p.Addr(), p.Addr()))

	for _, tc := range []struct {
		name, front string
		from        net.IP
	}{
		{"send-proxy", v1, net.IPv4(127, 0, 0, 2)},
		{"send-proxy-v2", v2, net.IPv4(127, 0, 0, 3)},
	} {
		db := sql.OpenDB(connector(t, tc.front, tc.from))
		t.Cleanup(func() { db.Close() })
		var one int
		eventually(t, 10*time.Second, tc.name+": a query through HAProxy", func() bool { return db.QueryRow("SELECT 1").Scan(&one) == nil })
		logged := regexp.MustCompile(`client logged in.*client=` + regexp.QuoteMeta(tc.from.String()) + `:\d+`)
		if !logged.MatchString(p.Logs()) {
			t.Errorf("%s: no log line names the client's address %s", tc.name, tc.from)
		}
		bad := mysqlConfig(tc.front)
		bad.Passwd = "wrong"
		_, err := sql.OpenDB(mustConnector(t, bad, tc.from)).Exec("SELECT 1")
		if err == nil || !strings.Contains(err.Error(), "'"+tc.from.String()+"'") {
			t.Errorf("%s: a wrong password gets %v, want access denied for the client's address %s", tc.name, err, tc.from)
		}
	}

	// A peer listed in proxy_protocol_networks that sends no header.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 4)}, Timeout: 5 * time.Second}
	nc, err := d.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(15 * time.Second))
	first, _ := io.ReadAll(nc)
	nc.Close()
	if len(first) > 4 && first[4] == 10 {
		t.Errorf("a listed peer without a PROXY header was greeted")
	}
	if !strings.Contains(p.Logs(), "no PROXY protocol header") {
		t.Errorf("the refusal of a listed peer without a header was not logged")
	}

	// A header from a peer that is not listed.
	d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 5)}
	nc, err = d.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(15 * time.Second))
	greeting := make([]byte, 5)
	if _, err := io.ReadFull(nc, greeting); err != nil || greeting[4] != 10 {
		t.Fatalf("an unlisted peer gets no greeting: %v %x", err, greeting)
	}
	if _, err := nc.Write([]byte("PROXY TCP4 192.0.2.1 127.0.0.1 4000 3306\r\n")); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(nc)
	nc.Close()
	if !strings.Contains(string(rest), "\xff") {
		t.Errorf("an unlisted peer's PROXY header got %q, want an error packet", rest)
	}
	if !strings.Contains(p.Logs(), "PROXY protocol header from a peer not in listen.proxy_protocol_networks") {
		t.Errorf("the refusal of an unlisted peer's header was not logged")
	}
	if strings.Contains(p.Logs(), "192.0.2.1") {
		t.Errorf("the address in an unlisted peer's header was believed")
	}
	fams := scrape(t, p)
	if v, _ := metricValue(fams, "switchyard_client_connections_refused_total", map[string]string{"reason": "proxy_protocol"}); v < 2 {
		t.Errorf("switchyard_client_connections_refused_total{reason=proxy_protocol} = %v, want 2", v)
	}
}
