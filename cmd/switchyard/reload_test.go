package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"switchyard/backend"
	"switchyard/conf"
	"switchyard/proxy"
)

// newLive builds the running parts for cfg without listening or a
// monitor: what Apply changes.
func newLive(t *testing.T, cfg *conf.Config) (*live, *bytes.Buffer) {
	t.Helper()
	parts, err := buildParts(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	cluster := backend.NewCluster(serverSpecs(cfg), clusterOptions(cfg, parts, log))
	pool := backend.NewPool(poolOptions(cfg), cluster)
	l := &live{path: "switchyard.yaml", log: log, cluster: cluster, pool: pool, bg: context.Background()}
	var clientTLS *tls.Config
	if parts.clientTLS != nil {
		l.certs, clientTLS = newCertSwitch(parts.clientTLS)
	}
	srv, err := proxy.NewServer(proxy.Options{Servers: cluster, Pool: pool, Routing: proxyRouting(cfg), Rules: parts.rules,
		ListenerOptions: proxy.ListenerOptions{Users: proxyUsers(cfg), TLS: clientTLS, Logger: log}})
	if err != nil {
		t.Fatal(err)
	}
	l.srv = srv
	l.cfg.Store(cfg)
	return l, &logs
}

func parse(t *testing.T, text string) *conf.Config {
	t.Helper()
	cfg, err := conf.Parse("switchyard.yaml", []byte(text), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func lastEvent(l *live) backend.Event {
	ev := l.cluster.Events()
	if len(ev) == 0 {
		return backend.Event{}
	}
	return ev[len(ev)-1]
}

const baseConfig = `listen:
  mysql: 127.0.0.1:6033
users:
  - name: app
    password: secret
servers:
  - name: db1
    address: 127.0.0.1:3306
  - name: db2
    address: 127.0.0.1:3307
`

// TestApplyChangesServersAndReportsRestart: a reload adds, removes and
// changes servers in place, keeps the listen addresses (reported as
// needing a restart), and says so in an event and the log.
func TestApplyChangesServersAndReportsRestart(t *testing.T) {
	l, logs := newLive(t, parse(t, baseConfig))
	db2 := l.cluster.Server("db2")
	next := parse(t, strings.Replace(baseConfig, "6033", "7033", 1)+`  - name: db3
    address: 127.0.0.1:3308
routing:
  balance: round_robin
`)
	next.Servers = append(next.Servers[:0], next.Servers[1:]...) // db1 removed
	next.Servers[0].Weight = 5
	db1 := l.cluster.Server("db1")
	if err := l.Apply(next, "test"); err != nil {
		t.Fatal(err)
	}
	if got := l.Current().Listen.MySQL; got != "127.0.0.1:6033" {
		t.Errorf("listen.mysql became %s without a restart", got)
	}
	ev := lastEvent(l)
	for _, want := range []string{"added db3", "removed db1", "changed db2", "needs a restart to apply: listen.mysql"} {
		if ev.Kind != "reload" || !strings.Contains(ev.Detail, want) {
			t.Errorf("event %+v lacks %q", ev, want)
		}
	}
	if l.cluster.Server("db2") != db2 || db2.Weight() != 5 {
		t.Errorf("db2 was not changed in place: weight %d", db2.Weight())
	}
	if !db1.Retired() || db1.Status() != backend.StatusOfflineSoft {
		t.Errorf("the removed server does not drain: %v %v", db1.Retired(), db1.Status())
	}
	if !strings.Contains(logs.String(), "config reloaded") {
		t.Errorf("no log line:\n%s", logs.String())
	}
}

// TestApplyInvalidChangesNothing: what conf cannot check (a certificate)
// fails the whole reload, recorded as an event, and nothing changes.
func TestApplyInvalidChangesNothing(t *testing.T) {
	l, logs := newLive(t, parse(t, baseConfig))
	next := parse(t, baseConfig+"tls:\n  cert_file: /nonexistent/cert.pem\n  key_file: /nonexistent/key.pem\n")
	next.Servers = next.Servers[:1]
	if err := l.Apply(next, "test"); err == nil {
		t.Fatal("a config with a missing certificate was applied")
	}
	if ev := lastEvent(l); ev.Kind != "reload_failed" || !strings.Contains(ev.Detail, "switchyard.yaml:") || !strings.Contains(ev.Detail, "tls.cert_file") {
		t.Errorf("event %+v", ev)
	}
	if len(l.cluster.Servers()) != 2 || len(l.Current().Servers) != 2 {
		t.Errorf("servers changed by a rejected reload")
	}
	if !strings.Contains(logs.String(), "reload rejected") {
		t.Errorf("no log line:\n%s", logs.String())
	}
}

// TestApplyRenewsTheCertificate: a reload with a new certificate at the
// same paths serves it to the next handshakes.
func TestApplyRenewsTheCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeCert(t, certFile, keyFile, "first")
	text := baseConfig + "tls:\n  cert_file: " + certFile + "\n  key_file: " + keyFile + "\n"
	l, _ := newLive(t, parse(t, text))
	served := func() string {
		c, err := l.certs.cur.Load().Certificates[0].Leaf, error(nil)
		if c == nil {
			c, err = x509.ParseCertificate(l.certs.cur.Load().Certificates[0].Certificate[0])
		}
		if err != nil {
			t.Fatal(err)
		}
		return c.Subject.CommonName
	}
	if got := served(); got != "first" {
		t.Fatalf("certificate %q", got)
	}
	writeCert(t, certFile, keyFile, "second")
	if err := l.Apply(parse(t, text), "test"); err != nil {
		t.Fatal(err)
	}
	if got := served(); got != "second" {
		t.Errorf("certificate after the reload: %q", got)
	}
}

func writeCert(t *testing.T, certFile, keyFile, name string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCheckRefusesAnOpenAdminWithoutPassword: an empty admin password is
// refused on an admin address other machines reach, allowed on loopback.
func TestCheckRefusesAnOpenAdminWithoutPassword(t *testing.T) {
	for addr, ok := range map[string]bool{"127.0.0.1:6032": true, "localhost:6032": true, "[::1]:6032": true,
		"0.0.0.0:6032": false, ":6032": false, "10.1.2.3:6032": false} {
		p := writeFile(t, "listen:\n  admin: \""+addr+"\"\nservers:\n  - name: db1\n    address: 127.0.0.1:3306\n")
		var errOut bytes.Buffer
		code := run([]string{"-c", p, "--check"}, io.Discard, &errOut)
		if ok != (code == 0) || !ok && !strings.Contains(errOut.String(), "admin.password: must not be empty") {
			t.Errorf("listen.admin %s without a password: exit %d, %s", addr, code, errOut.String())
		}
	}
}
