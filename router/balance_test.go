package router

import (
	"sync"
	"testing"

	"switchyard/conf"
)

func newBalancer(t testing.TB, policy string) *Balancer {
	b, err := NewBalancer(policy)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLeastOutstanding(t *testing.T) {
	b := newBalancer(t, conf.BalanceLeastOutstanding)
	cands := []Candidate{{ID: 1, Weight: 1, Outstanding: 5}, {ID: 2, Weight: 1, Outstanding: 2}, {ID: 3, Weight: 0, Outstanding: 0}, {ID: 4, Weight: 1, Outstanding: 9}}
	for range 10 {
		if i, ok := b.Pick(cands, -1); !ok || cands[i].ID != 2 {
			t.Fatalf("picked %d", i)
		}
	}
	if i, ok := b.Pick(cands, 2); !ok || cands[i].ID != 1 {
		t.Errorf("excluding 2: picked %d", i)
	}
	// Ties go round-robin.
	ties := []Candidate{{ID: 1, Weight: 1}, {ID: 2, Weight: 1}, {ID: 3, Weight: 1, Outstanding: 1}, {ID: 4, Weight: 1}}
	seen := map[int]int{}
	for range 300 {
		i, _ := b.Pick(ties, -1)
		seen[ties[i].ID]++
	}
	if seen[1] != 100 || seen[2] != 100 || seen[4] != 100 || seen[3] != 0 {
		t.Errorf("tie distribution %v", seen)
	}
}

func TestRoundRobin(t *testing.T) {
	b := newBalancer(t, conf.BalanceRoundRobin)
	cands := []Candidate{{ID: 1, Weight: 1}, {ID: 2, Weight: 0}, {ID: 3, Weight: 5}, {ID: 4, Weight: 1}}
	seen := map[int]int{}
	for range 400 {
		i, ok := b.Pick(cands, 4)
		if !ok {
			t.Fatal("no pick")
		}
		seen[cands[i].ID]++
	}
	if seen[2] != 0 || seen[4] != 0 || seen[1] == 0 || seen[3] == 0 {
		t.Errorf("distribution %v", seen)
	}
}

func TestWeightedRandom(t *testing.T) {
	b := newBalancer(t, conf.BalanceWeightedRandom)
	cands := []Candidate{{ID: 1, Weight: 100}, {ID: 2, Weight: 300}, {ID: 3, Weight: 0}, {ID: 4, Weight: 100}}
	seen := map[int]int{}
	const n = 20000
	for range n {
		i, _ := b.Pick(cands, 4)
		seen[cands[i].ID]++
	}
	if seen[3] != 0 || seen[4] != 0 || seen[2] < n*70/100 || seen[2] > n*80/100 {
		t.Errorf("distribution %v, want about 1:3 between 1 and 2", seen)
	}
}

func TestPickNone(t *testing.T) {
	for _, p := range []string{conf.BalanceLeastOutstanding, conf.BalanceRoundRobin, conf.BalanceWeightedRandom} {
		b := newBalancer(t, p)
		for _, cands := range [][]Candidate{nil, {{ID: 1, Weight: 0}}, {{ID: 1, Weight: 1}}} {
			if i, ok := b.Pick(cands, 1); ok {
				t.Errorf("%s: picked %d from %v", p, i, cands)
			}
		}
	}
	if _, err := NewBalancer("random"); err == nil {
		t.Error("unknown policy accepted")
	}
}

func TestPickAllocFreeAndConcurrent(t *testing.T) {
	cands := []Candidate{{ID: 1, Weight: 1, Outstanding: 1}, {ID: 2, Weight: 2}, {ID: 3, Weight: 3}}
	for _, p := range []string{conf.BalanceLeastOutstanding, conf.BalanceRoundRobin, conf.BalanceWeightedRandom} {
		b := newBalancer(t, p)
		if a := testing.AllocsPerRun(1000, func() { b.Pick(cands, -1) }); a != 0 {
			t.Errorf("%s: %v allocs per Pick", p, a)
		}
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for range 1000 {
					if _, ok := b.Pick(cands, 1); !ok {
						t.Error("no pick")
						return
					}
				}
			})
		}
		wg.Wait()
	}
}
