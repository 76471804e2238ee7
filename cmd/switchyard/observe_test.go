package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"switchyard/internal/mysqltest"
)

func TestTLSMinVersion(t *testing.T) {
	dir := t.TempDir()
	cert := mysqltest.Certificate()
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Server.Certificates[0].Certificate[0]})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(cert.Key)})
	for name, b := range map[string][]byte{"cert.pem": certPEM, "key.pem": keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for version, want := range map[string]uint16{"": tls.VersionTLS12, "min_version: \"1.3\"": tls.VersionTLS13} {
		p := writeFile(t, "tls:\n  cert_file: "+filepath.Join(dir, "cert.pem")+"\n  key_file: "+filepath.Join(dir, "key.pem")+
			"\n  "+version+"\nservers:\n  - name: db1\n    address: 127.0.0.1:3306\n")
		_, rt, _, err := loadConfig(p, log)
		if err != nil {
			t.Fatal(err)
		}
		if rt.clientTLS.MinVersion != want {
			t.Errorf("%q: MinVersion %#x, want %#x", version, rt.clientTLS.MinVersion, want)
		}
	}
}

func TestCheckFirewallFile(t *testing.T) {
	p := writeFile(t, "firewall:\n  mode: enforce\n  allowlist_file: /nonexistent/allow.yaml\nservers:\n  - name: db1\n    address: 127.0.0.1:3306\n")
	var out, errOut bytes.Buffer
	if code := run([]string{"-c", p, "--check"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "firewall.allowlist_file") {
		t.Errorf("exit %d, stderr %q", code, errOut.String())
	}
	learn := writeFile(t, "firewall:\n  mode: learn\n  allowlist_file: "+filepath.Join(t.TempDir(), "new.yaml")+"\nservers:\n  - name: db1\n    address: 127.0.0.1:3306\n")
	if code := run([]string{"-c", learn, "--check"}, &out, &errOut); code != 0 {
		t.Errorf("learn mode with a new file: exit %d, stderr %q", code, errOut.String())
	}
}

func TestConfigSummaryHasNoSecrets(t *testing.T) {
	p := writeFile(t, "users:\n  - name: app\n    password: hunter2-secret\nmonitor:\n  user: mon\n  password: mon-secret\nservers:\n  - name: db1\n    address: 127.0.0.1:3306\n")
	cfg, _, _, err := loadConfig(p, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	logConfigSummary(slog.New(slog.NewTextHandler(&buf, nil)), p, cfg)
	if s := buf.String(); strings.Contains(s, "secret") || !strings.Contains(s, "users=app") || !strings.Contains(s, "db1=127.0.0.1:3306") {
		t.Errorf("summary: %s", s)
	}
}
