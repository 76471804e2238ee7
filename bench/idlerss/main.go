// Command idlerss measures what idle client connections cost a proxy in
// resident memory: it reads the proxy's RSS, opens N logged-in client
// connections that then sit idle, reads the RSS again and prints the
// difference per connection.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"switchyard/bench/internal/idlerss"
)

func main() {
	var opt idlerss.Options
	flag.StringVar(&opt.Addr, "addr", "127.0.0.1:6033", "proxy address")
	flag.StringVar(&opt.User, "user", "app", "user")
	flag.StringVar(&opt.Password, "password", "", "password")
	flag.StringVar(&opt.DB, "db", "", "schema")
	flag.IntVar(&opt.PID, "pid", 0, "proxy process id")
	flag.IntVar(&opt.N, "n", 2000, "idle connections to open")
	flag.DurationVar(&opt.Settle, "settle", 3*time.Second, "wait before the second reading")
	flag.Parse()

	r, err := idlerss.Measure(context.Background(), opt)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("idle_clients=%d rss_before_kb=%d rss_after_kb=%d bytes_per_client=%d\n",
		r.N, r.BeforeKB, r.AfterKB, r.BytesPerClient())
}
