package firewall

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLearnWritesTheFileEnforceReadsIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "allow.yaml")
	learn, err := New(Options{Mode: Learn, File: path, FlushDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { learn.Run(ctx); close(done) }()
	for _, c := range [][2]string{{"app", "select ? from `t`"}, {"app", "select ? from `t`"}, {"report", "select * from `r` where `a` = ?"}, {"app", "it's: odd\n#text"}} {
		if !learn.Check(c[0], c[1]) {
			t.Fatalf("learn mode refused %q", c[1])
		}
	}
	cancel()
	<-done
	if st := learn.Stats(); st.Learned != 3 || st.Entries != 3 {
		t.Errorf("stats %+v, want 3 learned and 3 entries", st)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "# switchyard firewall allow-list") || !strings.Contains(string(data), "select ? from `t`") {
		t.Errorf("file:\n%s", data)
	}

	enforce, err := New(Options{Mode: Enforce, File: path})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		user, key string
		want      bool
	}{
		{"app", "select ? from `t`", true},
		{"app", "it's: odd\n#text", true},
		{"report", "select ? from `t`", false}, // per user
		{"report", "select * from `r` where `a` = ?", true},
		{"app", "delete from `t`", false},
	} {
		if got := enforce.Check(c.user, c.key); got != c.want {
			t.Errorf("enforce: %s %q: %v, want %v", c.user, c.key, got, c.want)
		}
	}
	if st := enforce.Stats(); st.Blocked != 2 {
		t.Errorf("blocked %d, want 2", st.Blocked)
	}
}

func TestHandWrittenEntries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "allow.yaml")
	text := "# reviewed\n\"*\":\n  - SELECT 1\napp:\n  - SELECT * FROM t WHERE id IN (1, 2)\n  - insert into `t` values ( ... )\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := New(Options{Mode: Enforce, File: path})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		user, key string
		want      bool
	}{
		{"anyone", "select ?", true}, // SQL, normalized, for every user
		{"app", "select ?", true},
		{"app", "select * from `t` where `id` in ( ... )", true},
		{"app", "insert into `t` values ( ... )", true}, // a digest text as written
		{"other", "insert into `t` values ( ... )", false},
	} {
		if got := f.Check(c.user, c.key); got != c.want {
			t.Errorf("%s %q: %v, want %v", c.user, c.key, got, c.want)
		}
	}
}

func TestFileErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := New(Options{Mode: Enforce, File: filepath.Join(dir, "missing.yaml")}); err == nil {
		t.Error("enforce mode with a missing file: no error")
	}
	if _, err := New(Options{Mode: Learn, File: filepath.Join(dir, "missing.yaml")}); err != nil {
		t.Errorf("learn mode with a missing file: %v", err)
	}
	if _, err := New(Options{Mode: Enforce}); err == nil {
		t.Error("enforce mode without a file: no error")
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("- just\n- a list\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Mode: Enforce, File: bad}); err == nil || !strings.Contains(err.Error(), "bad.yaml") {
		t.Errorf("a list instead of a mapping: %v", err)
	}
	if _, err := ParseMode("block"); err == nil {
		t.Error("ParseMode accepted block")
	}
}

func TestLearnIsBounded(t *testing.T) {
	f, err := New(Options{Mode: Learn, File: filepath.Join(t.TempDir(), "a.yaml"), MaxEntries: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "c", strings.Repeat("x", MaxEntryBytes+1)} {
		if !f.Check("u", k) {
			t.Fatalf("learn mode refused %q", k)
		}
	}
	if st := f.Stats(); st.Entries != 2 || st.Dropped != 2 {
		t.Errorf("stats %+v, want 2 entries and 2 dropped", st)
	}
	if err := f.Flush(); err != nil {
		t.Fatal(err)
	}
}

func TestOffAllowsEverything(t *testing.T) {
	f, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !f.Check("u", "drop table `t`") || f.Stats().Entries != 0 {
		t.Error("off mode refused or recorded")
	}
}
