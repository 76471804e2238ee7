package gtid

import (
	"fmt"
	"sync"
	"testing"
)

func TestCovers(t *testing.T) {
	tests := []struct {
		pos, gtid string
		want      bool
	}{
		{"0-1-10", "0-1-10", true},
		{"0-1-11", "0-1-10", true},
		{"0-1-9", "0-1-10", false},
		{"0-2-12", "0-1-10", true}, // another server id in the same domain
		{"1-1-50,0-1-10", "0-1-10", true},
		{"1-1-50, 0-1-9", "0-1-10", false},
		{"1-1-50", "0-1-10", false}, // no entry for the domain
		{"", "0-1-1", false},
		{"0-1-10", "", false},
		{"0-1-x", "0-1-1", false},
		{"0-1-10", "garbage", false},
	}
	for _, tc := range tests {
		if got := Covers(tc.pos, tc.gtid); got != tc.want {
			t.Errorf("Covers(%q, %q) = %v, want %v", tc.pos, tc.gtid, got, tc.want)
		}
	}
}

func TestParseRoundTrip(t *testing.T) {
	g, ok := Parse(" 3-100-4294967296 ")
	if !ok || g != (GTID{3, 100, 1 << 32}) || g.String() != "3-100-4294967296" {
		t.Fatalf("Parse = %+v %v (%s)", g, ok, g)
	}
	for _, bad := range []string{"", "1", "1-2", "1-2-", "-1-2", "1-2-3-4x", "99999999999-1-1"} {
		if _, ok := Parse(bad); ok {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func FuzzCovers(f *testing.F) {
	f.Add("0-1-10,1-2-3", "0-1-9")
	f.Fuzz(func(t *testing.T, pos, g string) {
		_ = Covers(pos, g)
		if p, ok := Parse(g); ok {
			if q, ok := Parse(p.String()); !ok || q != p {
				t.Fatalf("round trip of %q: %+v", g, q)
			}
		}
	})
}

func TestPositions(t *testing.T) {
	if p := ParsePosition("1-2-7, 0-1-42,bad"); p.String() != "0-1-42,1-2-7" {
		t.Errorf("ParsePosition: %q", p.String())
	}
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"0-1-5", "0-1-5", 0},
		{"0-1-6", "0-1-5", 1},
		{"0-1-5", "0-2-6", -1},
		{"0-1-5,1-1-1", "0-1-5", 1},
		{"0-1-5", "0-1-5,1-1-1", -1},
		{"0-1-6,1-1-1", "0-1-5,1-1-2", 0}, // diverged: no order
		{"", "", 0},
		{"", "0-1-1", -1},
	} {
		if got := Compare(tc.a, tc.b); got != tc.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
	if got := Max("0-1-5,1-2-9", "0-1-7,2-3-1"); got != "0-1-7,1-2-9,2-3-1" {
		t.Errorf("Max: %q", got)
	}
	if got := Max("", ""); got != "" {
		t.Errorf("Max of nothing: %q", got)
	}
}

func TestCoversAll(t *testing.T) {
	for _, tc := range []struct {
		pos, need string
		want      bool
	}{
		{"0-1-10,1-2-5", "0-1-10,1-2-5", true},
		{"0-1-10,1-2-5", "1-2-5", true},
		{"0-1-10,1-2-4", "0-1-10,1-2-5", false},
		{"0-1-10", "0-1-9,1-2-1", false}, // no entry for domain 1
		{"0-1-10", "", true},
		{"", "", true},
		{"0-1-10", "0-1-x", false},
	} {
		if got := CoversAll(tc.pos, tc.need); got != tc.want {
			t.Errorf("CoversAll(%q, %q) = %v, want %v", tc.pos, tc.need, got, tc.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { CoversAll("0-1-10,1-2-5,2-3-7", "0-1-9,2-3-7") }); n != 0 {
		t.Errorf("CoversAll allocates %v times", n)
	}
}

func TestLatest(t *testing.T) {
	var l Latest
	if l.Position() != "" {
		t.Fatalf("zero Latest: %q", l.Position())
	}
	for _, tc := range []struct{ note, want string }{
		{"0-1-5", "0-1-5"},
		{"0-1-3", "0-1-5"},
		{"2-1-9", "0-1-5,2-1-9"},
		{"1-3-2", "0-1-5,1-3-2,2-1-9"},
		{"0-2-6", "0-2-6,1-3-2,2-1-9"}, // a new primary's server id in the same domain
		{"garbage", "0-2-6,1-3-2,2-1-9"},
	} {
		l.Note(tc.note)
		if got := l.Position(); got != tc.want {
			t.Errorf("after Note(%q): %q, want %q", tc.note, got, tc.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = l.Position(); l.Note("0-2-6") }); n != 0 {
		t.Errorf("reading, or noting what is covered, allocates %v times", n)
	}
}

func TestLatestConcurrent(t *testing.T) {
	var l Latest
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; i <= 500; i++ {
				l.Note(fmt.Sprintf("%d-1-%d", w%2, i))
			}
		}()
	}
	wg.Wait()
	if got := l.Position(); got != "0-1-500,1-1-500" {
		t.Fatalf("concurrent notes: %q, want the highest of each domain", got)
	}
}

func TestValid(t *testing.T) {
	for _, ok := range []string{"0-1-5", "0-1-5,1-2-3"} {
		if !Valid(ok) {
			t.Errorf("Valid(%q) = false", ok)
		}
	}
	for _, bad := range []string{"", "0-1-5,", "0-1-5'); DROP TABLE t; --", " 0-1-5", "0-1-5, 1-2-3"} {
		if Valid(bad) {
			t.Errorf("Valid(%q) = true", bad)
		}
	}
}
