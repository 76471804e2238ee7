package sysbenchrun

import "testing"

// sample is the summary part of sysbench 1.0's oltp_read_write output.
const sample = `SQL statistics:
    queries performed:
        read:                            14000
        write:                           4000
        other:                           2000
        total:                           20000
    transactions:                        1000   (99.52 per sec.)
    queries:                             20000  (1990.40 per sec.)
    ignored errors:                      3      (0.30 per sec.)
    reconnects:                          1      (0.10 per sec.)

Latency (ms):
         min:                                    4.12
         avg:                                   10.04
         max:                                   51.30
         95th percentile:                       15.83
         sum:                                10040.00
`

func TestParse(t *testing.T) {
	s, err := Parse(sample)
	if err != nil {
		t.Fatal(err)
	}
	if s != (Summary{Queries: 20000, QPS: 1990.40, Errors: 4, LatAvg: 10.04, LatP95: 15.83}) {
		t.Fatalf("%+v", s)
	}
	if _, err := Parse("FATAL: unable to connect to MySQL server"); err == nil {
		t.Fatal("an output without a summary parsed")
	}
}
