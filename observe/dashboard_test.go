package observe

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// exportedNames are the metric names switchyard exports: its own (from
// their descriptions, so metrics without a series yet count too, with the
// _bucket, _sum and _count series of histograms) and the Go runtime's and
// process's.
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	for _, d := range allDescs {
		m := fq.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("no name in %s", d)
		}
		names[m[1]] = true
		if d == descDuration {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				names[m[1]+suffix] = true
			}
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		names[f.GetName()] = true
	}
	return names
}

// TestDashboardNamesExportedMetrics reads the Grafana dashboard in
// deploy/grafana: every expression of every panel names only metrics
// switchyard exports, so a renamed metric cannot leave a panel empty.
func TestDashboardNamesExportedMetrics(t *testing.T) {
	data, err := os.ReadFile("../deploy/grafana/switchyard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatal(err)
	}
	names := exportedNames(t)
	// Metric names as PromQL writes them: identifiers not followed by "("
	// (functions) and not inside label matchers or quotes.
	ident := regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	quoted := regexp.MustCompile(`"[^"]*"|\{[^}]*\}|\[[^\]]*\]|\b(by|without)\s*\([^)]*\)`)
	exprs := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs++
			expr := quoted.ReplaceAllString(tg.Expr, " ")
			found := false
			for _, loc := range ident.FindAllStringIndex(expr, -1) {
				word := expr[loc[0]:loc[1]]
				rest := strings.TrimLeft(expr[loc[1]:], " ")
				if strings.HasPrefix(rest, "(") || promqlWords[word] {
					continue
				}
				found = true
				if !names[word] {
					t.Errorf("panel %q: %s names %s, which switchyard does not export", p.Title, tg.Expr, word)
				}
			}
			if !found {
				t.Errorf("panel %q: %s names no metric", p.Title, tg.Expr)
			}
		}
	}
	if exprs < 20 {
		t.Errorf("only %d expressions in the dashboard", exprs)
	}
}

// promqlWords are PromQL keywords that are not metric names.
var promqlWords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true,
	"group_right": true, "and": true, "or": true, "unless": true, "offset": true, "bool": true}
