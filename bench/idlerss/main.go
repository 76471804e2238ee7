// Command idlerss measures what idle client connections cost a proxy in
// resident memory: it reads the proxy's RSS, opens N logged-in client
// connections that then sit idle, reads the RSS again and prints the
// difference per connection.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

func rssKB(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			return strconv.Atoi(f[1])
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:6033", "proxy address")
	user := flag.String("user", "app", "user")
	pass := flag.String("password", "", "password")
	db := flag.String("db", "", "schema")
	pid := flag.Int("pid", 0, "proxy process id")
	n := flag.Int("n", 2000, "idle connections to open")
	settle := flag.Duration("settle", 3*time.Second, "wait before the second reading")
	flag.Parse()

	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = *user, *pass, "tcp", *addr, *db
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pool := sql.OpenDB(connector)
	pool.SetMaxIdleConns(*n + 1)
	pool.SetMaxOpenConns(*n + 1)
	ctx := context.Background()

	// Warm up: one connection and a query, so the proxy's one-time costs
	// (first server connection, buffer pools) are not counted per client.
	warm, err := pool.Conn(ctx)
	if err == nil {
		err = warm.PingContext(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "warm-up:", err)
		os.Exit(1)
	}
	time.Sleep(*settle)
	before, err := rssKB(*pid)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	conns := make([]*sql.Conn, 0, *n)
	for i := 0; i < *n; i++ {
		c, err := pool.Conn(ctx)
		if err == nil {
			err = c.PingContext(ctx)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "connection %d: %v\n", i, err)
			os.Exit(1)
		}
		conns = append(conns, c)
	}
	time.Sleep(*settle)
	after, err := rssKB(*pid)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("idle_clients=%d rss_before_kb=%d rss_after_kb=%d bytes_per_client=%d\n",
		*n, before, after, (after-before)*1024 / *n)
	for _, c := range conns {
		c.Close()
	}
	warm.Close()
	pool.Close()
}
