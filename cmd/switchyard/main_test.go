package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "switchyard.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckReportsEveryProblemWithFileAndLine(t *testing.T) {
	p := writeFile(t, `listen:
  mysql: 127.0.0.1:6033
servers:
  - name: db1
    address: 127.0.0.1
  - name: db1
    address: 127.0.0.1:3307
limits:
  shutdown_timeout: soon
colour: blue
`)
	var out, errOut bytes.Buffer
	if code := run([]string{"-c", p, "--check"}, &out, &errOut); code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
	if len(lines) < 4 {
		t.Fatalf("want at least 4 problems, got:\n%s", errOut.String())
	}
	for _, want := range []string{p + ":5: servers[0].address", p + ":6: servers[1].name", p + ":9: limits.shutdown_timeout", p + ":10: colour"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("no problem line starting %q in:\n%s", want, errOut.String())
		}
	}
}

func TestCheckValidFileAndMissingCertificate(t *testing.T) {
	good := writeFile(t, "servers:\n  - name: db1\n    address: 127.0.0.1:3306\n")
	var out, errOut bytes.Buffer
	if code := run([]string{"-c", good, "--check"}, &out, &errOut); code != 0 {
		t.Fatalf("valid file: exit %d; stderr:\n%s", code, errOut.String())
	}
	// A certificate that cannot be loaded is a config problem too, found by --check.
	bad := writeFile(t, "tls:\n  cert_file: /nonexistent/cert.pem\n  key_file: /nonexistent/key.pem\nservers:\n  - name: db1\n    address: 127.0.0.1:3306\n")
	errOut.Reset()
	if code := run([]string{"-c", bad, "--check"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "tls") {
		t.Fatalf("missing certificate: exit %d, stderr %q", code, errOut.String())
	}
}

func TestVersionAndBadFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"--version"}, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "switchyard ") {
		t.Fatalf("--version: exit %d, %q", code, out.String())
	}
	if code := run([]string{"--log-level", "loud", "-c", "x"}, &out, &errOut); code != 2 {
		t.Fatalf("bad --log-level: exit %d", code)
	}
	if code := run([]string{"--no-such-flag"}, &out, &errOut); code != 2 {
		t.Fatalf("unknown flag: exit %d", code)
	}
}

// TestBackgroundRestartsAfterPanic: a background task that panics is logged
// and started again, not lost and not fatal.
func TestBackgroundRestartsAfterPanic(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	runs := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		background(context.Background(), log, "flaky", func() {
			runs++
			if runs == 1 {
				panic("boom")
			}
		})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("background did not return after the task's second run")
	}
	if runs != 2 || !strings.Contains(logs.String(), "background task panicked; restarting it") {
		t.Fatalf("runs %d, log %q", runs, logs.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	background(ctx, log, "always panics", func() { panic("again") }) // returns: ctx is over
}
