package integration

// `make demo` end to end: the demo binary starts its own MariaDB cluster, two
// switchyards, two nginx + PHP-FPM web servers and HAProxy; the page must
// alternate web servers, write on the primary and read from a replica, and
// Ctrl-C must stop every process the demo started.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"switchyard/integration/harness"
)

func TestDemoServesThePageAndStopsCleanly(t *testing.T) {
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	demo := filepath.Join(t.TempDir(), "switchyard-demo")
	build := exec.Command("go", "build", "-o", demo, "./integration/cmd/demo")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the demo: %v\n%s", err, out)
	}

	// A random offset keeps clear of a demo a developer runs on the
	// default ports, and all ports stay below the kernel's ephemeral range
	// (32768 up), where other tests' connections come and go; a taken port
	// makes the demo refuse at once, and another offset is tried.
	var cmd *exec.Cmd
	var dir string
	var offset int
	var lines chan string
	for attempt := 0; ; attempt++ {
		offset = 10000 + 100*rand.IntN(60)
		dir = filepath.Join(t.TempDir(), "demo")
		cmd = exec.Command(demo, "--switchyard", binary, "--port-offset", strconv.Itoa(offset), "--dir", dir)
		cmd.Stdout = io.Discard
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines = make(chan string, 256)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		up, log := waitDemo(t, lines, 3*time.Minute)
		if up {
			break
		}
		cmd.Process.Kill()
		cmd.Wait()
		if !strings.Contains(log, "is taken") || attempt == 4 {
			t.Fatalf("the demo did not come up (attempt %d); its output:\n%s", attempt+1, log)
		}
		t.Logf("offset %d: %s", offset, strings.TrimSpace(log))
	}
	exited := make(chan error, 1)
	go func() {
		for range lines { // keep draining: a full pipe would block the demo
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
	})

	site := fmt.Sprintf("http://127.0.0.1:%d/", 8080+offset)
	webs := map[string]int{}
	for i := range 4 {
		h := demoGet(t, site)
		web, write, read := h.Get("X-Web-Server"), h.Get("X-Write-Server"), h.Get("X-Read-Server")
		if !strings.HasPrefix(write, "db1 ") {
			t.Errorf("request %d (%s): written on %q, want the primary db1", i, web, write)
		}
		if !strings.HasPrefix(read, "db2 ") && !strings.HasPrefix(read, "db3 ") {
			t.Errorf("request %d (%s): read from %q, want a replica (db2 or db3)", i, web, read)
		}
		if want := "switchyard-" + web; h.Get("X-Switchyard") != want {
			t.Errorf("request %d: %s used %q, want its own %s", i, web, h.Get("X-Switchyard"), want)
		}
		webs[web]++
	}
	if webs["web1"] != 2 || webs["web2"] != 2 {
		t.Errorf("4 requests through HAProxy went to %v, want 2 to each web server", webs)
	}

	// Ctrl-C: the demo exits 0 and leaves no process of its own behind.
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("demo exit after Ctrl-C: %v", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("the demo did not exit within 90s of Ctrl-C")
	}
	if left := processesUsing(dir); len(left) > 0 {
		for _, pid := range left {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		t.Errorf("processes left running after the demo exited: %v", left)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the demo's directory %s is still there (err %v); it is removed at exit without --keep", dir, err)
	}
}

// waitDemo reads the demo's output until it says it is up, exits, or the
// timeout passes; it returns whether it came up and the output so far.
func waitDemo(t *testing.T, lines <-chan string, timeout time.Duration) (bool, string) {
	t.Helper()
	var log strings.Builder
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				return false, log.String()
			}
			log.WriteString(l + "\n")
			if strings.Contains(l, "demo: everything up") {
				return true, log.String()
			}
		case <-deadline:
			return false, log.String() + "(timed out)\n"
		}
	}
}

func demoGet(t *testing.T, url string) http.Header {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Close = true // a new connection each time, so HAProxy balances each request
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Recent visits") {
		t.Fatalf("GET %s: %s\n%.500s", url, resp.Status, body)
	}
	return resp.Header
}

// processesUsing lists the processes whose command line mentions dir.
func processesUsing(dir string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}
