package integration

import (
	"fmt"
	"testing"

	"switchyard/integration/harness"
	"switchyard/internal/mysqltest"
	"switchyard/wire"
)

// TestPreparedLoadDataLocal: MariaDB prepares LOAD DATA LOCAL INFILE and
// asks for the client's file in answer to the execution (mtr's loaddata
// with --ps-protocol). Through the proxy the client uploads it and gets
// the server's answer as directly. Before, the proxy took the request for
// a broken response and closed the session.
func TestPreparedLoadDataLocal(t *testing.T) {
	p := startProxy(t, harness.ProxyOptions{LogLevel: "info", Servers: []*harness.Server{cluster.Primary}})
	load := func(addr string) []string {
		c := fsLoggedIn(t, addr)
		c.MustOK(c.Query("CREATE OR REPLACE TABLE ps_infile (a INT, b VARCHAR(10))"))
		var seen []string
		// The second file has a value the column refuses in strict mode:
		// the server's error ends the upload.
		for _, data := range []string{"1,one\n2,two\n", "x,three\n"} {
			c.MustOK(c.Query("SET sql_mode = 'STRICT_ALL_TABLES'"))
			ok := c.Prepare("LOAD DATA LOCAL INFILE 'ps_infile.csv' INTO TABLE ps_infile FIELDS TERMINATED BY ','")
			c.Command(mysqltest.ExecutePacket(ok.StatementID, 0, false))
			if req := c.Read(); len(req) == 0 || req[0] != wire.InfileHeader {
				t.Fatalf("through %s: the execution answered %x, want a LOCAL INFILE request", addr, req)
			}
			c.Write([]byte(data))
			c.Write(nil) // the end of the file
			switch res := c.Read(); res[0] {
			case wire.OKHeader:
				o, err := wire.ParseOK(res)
				if err != nil {
					t.Fatal(err)
				}
				seen = append(seen, "OK "+fmt.Sprint(o.AffectedRows))
			case wire.ErrHeader:
				e := wire.ParseErr(res)
				seen = append(seen, fmt.Sprintf("ERR %d (%s)", e.Code, e.State))
			default:
				t.Fatalf("through %s: the upload was answered %x", addr, res)
			}
		}
		seen = append(seen, c.Value("SELECT COUNT(*) FROM ps_infile"))
		c.MustOK(c.Query("DROP TABLE ps_infile"))
		return seen
	}
	want := load(cluster.Primary.Addr())
	got := load(p.Addr())
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("prepared LOAD DATA LOCAL through switchyard: %q; directly: %q", got, want)
	}
}
