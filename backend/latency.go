package backend

import (
	"sync/atomic"
	"time"
)

// LatencyBuckets are the upper bounds, in seconds, of the buckets of a
// LatencyHistogram, as Prometheus histograms count them: from half a
// millisecond (a point select on a nearby server) to ten seconds.
var LatencyBuckets = [...]float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// latencyBounds are LatencyBuckets in nanoseconds, compared without
// floating point on every statement.
var latencyBounds = func() (b [len(LatencyBuckets)]int64) {
	for i, s := range LatencyBuckets {
		b[i] = int64(s * float64(time.Second))
	}
	return b
}()

// LatencyHistogram counts durations in LatencyBuckets with atomics only, so
// that every statement can be measured without a lock, a label lookup or
// an allocation; the metrics endpoint reads it when scraped.
type LatencyHistogram struct {
	// counts[i] counts durations in bucket i alone (not cumulative); the
	// last counts those above every bound.
	counts   [len(LatencyBuckets) + 1]atomic.Uint64
	sumNanos atomic.Int64
}

// Observe counts one duration.
func (h *LatencyHistogram) Observe(d time.Duration) {
	ns := int64(d)
	i := 0
	for i < len(latencyBounds) && ns > latencyBounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNanos.Add(ns)
}

// Snapshot returns the cumulative count of each bucket of LatencyBuckets,
// the total count and the sum of the durations in seconds. Read while
// statements are counted, the figures may be a statement apart.
func (h *LatencyHistogram) Snapshot() (cumulative [len(LatencyBuckets)]uint64, count uint64, sum float64) {
	for i := range cumulative {
		count += h.counts[i].Load()
		cumulative[i] = count
	}
	count += h.counts[len(LatencyBuckets)].Load()
	return cumulative, count, time.Duration(h.sumNanos.Load()).Seconds()
}
