// Package observe is switchyard's HTTP endpoint on listen.http: /metrics
// in the Prometheus text format, /health for load balancers (HAProxy's
// option httpchk) and /status, a JSON view of the topology.
//
// Nothing here is on a statement's path: the proxy and the backend count
// with atomics (proxy/metrics.go, backend.LatencyHistogram), and this
// package reads the counters when it is scraped, as constant metrics.
package observe

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"switchyard/backend"
	"switchyard/proxy"
)

// Sources are what the endpoint reports on.
type Sources struct {
	Proxy   *proxy.Server
	Cluster *backend.Cluster
	Pool    *backend.Pool
	// Version is switchyard's version, ConfigFile the config file's path.
	Version    string
	ConfigFile string
	Logger     *slog.Logger
}

// Observer serves the endpoint and keeps the counters that belong to no
// other package (reloads).
type Observer struct {
	src     Sources
	started time.Time
	reg     *prometheus.Registry
	mux     *http.ServeMux
	srv     *http.Server

	reloadsOK, reloadsRejected atomic.Int64
}

// New builds the endpoint's handlers and metrics registry; Serve serves them.
func New(src Sources) *Observer {
	if src.Logger == nil {
		src.Logger = slog.Default()
	}
	o := &Observer{src: src, started: time.Now(), reg: prometheus.NewRegistry(), mux: http.NewServeMux()}
	o.reg.MustRegister(&collector{o: o}, collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	o.mux.Handle("GET /metrics", promhttp.HandlerFor(o.reg, promhttp.HandlerOpts{ErrorLog: slogErrors{src.Logger}}))
	o.mux.HandleFunc("GET /health", o.serveHealth)
	o.mux.HandleFunc("GET /status", o.serveStatus)
	return o
}

// Reloaded counts a config reload: applied (ok) or rejected. The reload
// code calls it for every attempt, whatever started it (SIGHUP, the admin
// interface).
func (o *Observer) Reloaded(ok bool) {
	if ok {
		o.reloadsOK.Add(1)
	} else {
		o.reloadsRejected.Add(1)
	}
}

// Handler serves /metrics, /health and /status.
func (o *Observer) Handler() http.Handler { return o.mux }

// Serve serves the endpoint on l until Shutdown.
func (o *Observer) Serve(l net.Listener) error {
	o.srv = &http.Server{Handler: o.mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10,
		ErrorLog: slog.NewLogLogger(o.src.Logger.Handler(), slog.LevelWarn)}
	if err := o.srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops serving, letting requests in progress finish until ctx ends.
func (o *Observer) Shutdown(ctx context.Context) error {
	if o.srv == nil {
		return nil
	}
	return o.srv.Shutdown(ctx)
}

// Health says whether switchyard can serve clients that write: it accepts
// clients (listening, not shutting down, below
// limits.max_client_connections) and knows a writable primary. why says
// what is wrong, or which server is the primary.
func (o *Observer) Health() (ok bool, why string) {
	if !o.src.Proxy.Accepting() {
		return false, "switchyard does not accept clients: not listening yet, shutting down, or at limits.max_client_connections"
	}
	p, err := o.src.Cluster.Primary()
	if err != nil {
		return false, err.Error()
	}
	if p.ReadOnly() {
		// Writes go to it, and it refuses most of them itself.
		return false, "primary " + p.Name + " is read-only (read_only=ON)"
	}
	return true, "primary " + p.Name + " is writable"
}

// serveHealth answers 200 when Health is ok, else 503, with why as text:
// what HAProxy's option httpchk and Kubernetes probes look for.
func (o *Observer) serveHealth(w http.ResponseWriter, _ *http.Request) {
	ok, why := o.Health()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_, _ = w.Write([]byte(why + "\n"))
}

func (o *Observer) serveStatus(w http.ResponseWriter, _ *http.Request) {
	b, err := json.MarshalIndent(o.Status(), "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(append(b, '\n'))
}

// slogErrors sends the HTTP server's and promhttp's error lines to slog.
type slogErrors struct{ log *slog.Logger }

func (s slogErrors) Println(v ...any) { s.log.Warn("http endpoint", "err", v) }
