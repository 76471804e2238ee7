package router

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"

	"switchyard/conf"
)

// Candidate is an eligible replica as the proxy sees it at pick time.
type Candidate struct {
	ID          int    // the proxy's server id; Pick's exclude refers to it
	Weight      int    // 0: never chosen
	Outstanding int64  // statements in flight on it
	GTID        string // its GTID position as the monitor last read it, for RequireGTID
	// Reached is a position a read waited for there since (empty if none).
	Reached string
}

// Balancer picks a replica for routing.balance. It is safe for concurrent
// use and does not allocate.
type Balancer struct {
	policy uint8
	rr     atomic.Uint64
}

const (
	leastOutstanding uint8 = iota
	roundRobin
	weightedRandom
)

// NewBalancer returns a Balancer for a routing.balance value; "" is
// least_outstanding, the default.
func NewBalancer(policy string) (*Balancer, error) {
	b := &Balancer{}
	switch policy {
	case conf.BalanceLeastOutstanding, "":
		b.policy = leastOutstanding
	case conf.BalanceRoundRobin:
		b.policy = roundRobin
	case conf.BalanceWeightedRandom:
		b.policy = weightedRandom
	default:
		return nil, fmt.Errorf("routing.balance %q: want %s, %s or %s", policy,
			conf.BalanceLeastOutstanding, conf.BalanceRoundRobin, conf.BalanceWeightedRandom)
	}
	return b, nil
}

// Pick returns the index in cands of the replica to use, skipping weight 0
// and the one whose ID is exclude (the replica a failed read ran on; pass
// an ID no candidate has, such as -1, to skip none). ok is false when no
// candidate is left.
func (b *Balancer) Pick(cands []Candidate, exclude int) (idx int, ok bool) {
	switch b.policy {
	case roundRobin:
		n := len(cands)
		if n == 0 {
			return -1, false
		}
		start := int(b.rr.Add(1) % uint64(n))
		for i := range n {
			j := (start + i) % n
			if cands[j].Weight > 0 && cands[j].ID != exclude {
				return j, true
			}
		}
	case weightedRandom:
		var total uint64
		for _, c := range cands {
			if c.Weight > 0 && c.ID != exclude {
				total += uint64(c.Weight)
			}
		}
		if total == 0 {
			return -1, false
		}
		r := rand.Uint64N(total)
		for i, c := range cands {
			if c.Weight > 0 && c.ID != exclude {
				if r < uint64(c.Weight) {
					return i, true
				}
				r -= uint64(c.Weight)
			}
		}
	default:
		best, ties := int64(0), 0
		for _, c := range cands {
			switch {
			case c.Weight <= 0 || c.ID == exclude:
			case ties == 0 || c.Outstanding < best:
				best, ties = c.Outstanding, 1
			case c.Outstanding == best:
				ties++
			}
		}
		if ties == 0 {
			return -1, false
		}
		// Round-robin among the least loaded, or idle replicas would all
		// wait behind the first in the list.
		k := 0
		if ties > 1 {
			k = int(b.rr.Add(1) % uint64(ties))
		}
		for i, c := range cands {
			if c.Weight > 0 && c.ID != exclude && c.Outstanding == best {
				if k == 0 {
					return i, true
				}
				k--
			}
		}
	}
	return -1, false
}
