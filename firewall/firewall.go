// Package firewall is switchyard's query firewall: an allow-list of
// statement digests per user. In learn mode every statement's digest is
// added to the list, which is written to a file an operator can review and
// edit; in enforce mode a statement whose digest is not on the list for its
// user (or for every user, "*") is refused.
//
// The list is keyed by digest text (literals replaced by ?, as
// stats_query_digest shows it), not by the digest's hash, so that the file
// reads as SQL. The caller decides what a statement's key is (see
// proxy/firewall.go): the digest text, or the exact text where a literal
// holds SQL that would run (text PREPARE, EXECUTE IMMEDIATE).
package firewall

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pingcap/tidb/pkg/parser"
	"go.yaml.in/yaml/v3"
)

// Mode is what the firewall does with statements.
type Mode uint8

const (
	Off     Mode = iota // nothing
	Learn               // every statement runs and its digest is recorded
	Enforce             // only statements on the allow-list run
)

func (m Mode) String() string {
	switch m {
	case Learn:
		return "learn"
	case Enforce:
		return "enforce"
	}
	return "off"
}

// ParseMode reads the config's firewall.mode.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "", "off":
		return Off, nil
	case "learn":
		return Learn, nil
	case "enforce":
		return Enforce, nil
	}
	return Off, fmt.Errorf("firewall mode %q: want off, learn or enforce", s)
}

// AllUsers is the user whose entries allow a statement to every user.
const AllUsers = "*"

// Limits of what learn mode records, so that a client sending endless new
// statements cannot grow the proxy's memory or the file without bound.
// Statements past them run but are not recorded (counted as dropped).
const (
	DefaultMaxEntries = 50000
	MaxEntryBytes     = 64 << 10
)

// Options configure a Firewall.
type Options struct {
	Mode Mode
	// File is the allow-list file: read when the firewall is built (in
	// enforce mode it must exist), written in learn mode.
	File string
	// MaxEntries bounds the entries learn mode keeps; 0: DefaultMaxEntries.
	MaxEntries int
	// FlushDelay is how long learn mode waits after a new entry before
	// writing the file, gathering the entries that follow; 0: a second.
	FlushDelay time.Duration
	Logger     *slog.Logger
}

// Firewall checks statements against the allow-list. Its methods are safe
// for concurrent use.
type Firewall struct {
	opt  Options
	log  *slog.Logger
	list list

	blocked, learned, dropped atomic.Int64
	// changed wakes the writer after learn mode added an entry.
	changed chan struct{}
	// writeMu serialises writes of the file (the writer and Flush); it is
	// never held while the list is locked.
	writeMu sync.Mutex
}

// New builds a firewall and reads its allow-list file. In learn mode a
// missing file is an empty list (it is created on the first entry); in
// enforce mode it is an error, since it would refuse every statement.
func New(opt Options) (*Firewall, error) {
	if opt.MaxEntries <= 0 {
		opt.MaxEntries = DefaultMaxEntries
	}
	if opt.FlushDelay <= 0 {
		opt.FlushDelay = time.Second
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	f := &Firewall{opt: opt, log: opt.Logger, changed: make(chan struct{}, 1)}
	f.list.users = map[string]map[string]bool{}
	if opt.Mode == Off {
		return f, nil
	}
	if opt.File == "" {
		return nil, errors.New("firewall.allowlist_file is required in learn and enforce mode")
	}
	data, err := os.ReadFile(opt.File)
	switch {
	case errors.Is(err, fs.ErrNotExist) && opt.Mode == Learn:
	case err != nil:
		return nil, fmt.Errorf("firewall allow-list %s: %w", opt.File, err)
	default:
		if err := f.list.parse(data); err != nil {
			return nil, fmt.Errorf("firewall allow-list %s: %w", opt.File, err)
		}
	}
	return f, nil
}

// Mode is the firewall's mode.
func (f *Firewall) Mode() Mode { return f.opt.Mode }

// Check reports whether user may run a statement of key (see the package
// doc). In learn mode it always may, and key is recorded for user; in
// enforce mode a refusal is counted. An empty key stands for a statement
// the caller cannot key safely: enforce mode refuses it, learn mode lets it
// run unrecorded (counted as dropped).
func (f *Firewall) Check(user, key string) bool {
	if key == "" {
		if f.opt.Mode == Enforce {
			f.blocked.Add(1)
			return false
		}
		if f.opt.Mode == Learn {
			f.dropped.Add(1)
		}
		return true
	}
	switch f.opt.Mode {
	case Learn:
		if !f.list.allowed(user, key) {
			f.learn(user, key)
		}
		return true
	case Enforce:
		if f.list.allowed(user, key) {
			return true
		}
		f.blocked.Add(1)
		return false
	}
	return true
}

func (f *Firewall) learn(user, key string) {
	if len(key) > MaxEntryBytes {
		f.dropped.Add(1)
		return
	}
	switch added, full := f.list.add(user, key, f.opt.MaxEntries); {
	case full:
		if f.dropped.Add(1) == 1 {
			f.log.Warn("firewall: the allow-list is full; new statements run but are not recorded", "entries", f.opt.MaxEntries)
		}
	case added:
		f.learned.Add(1)
		select {
		case f.changed <- struct{}{}:
		default:
		}
	}
}

// Run writes the allow-list file in learn mode when entries were added,
// at most once per FlushDelay, until ctx ends; then it writes it a last
// time. In the other modes it only waits for ctx.
func (f *Firewall) Run(ctx context.Context) {
	if f.opt.Mode != Learn {
		<-ctx.Done()
		return
	}
	for {
		select {
		case <-ctx.Done():
			f.flushLogged()
			return
		case <-f.changed:
		}
		select {
		case <-ctx.Done():
		case <-time.After(f.opt.FlushDelay):
		}
		f.flushLogged()
	}
}

func (f *Firewall) flushLogged() {
	if err := f.Flush(); err != nil {
		f.log.Error("firewall: cannot write the allow-list; learned statements are kept in memory and written at the next change",
			"file", f.opt.File, "err", err)
	}
}

// Flush writes the allow-list file now if learn mode changed it since it
// was last written. The file is replaced atomically: a reader sees the old
// list or the new one.
func (f *Firewall) Flush() error {
	if f.opt.Mode != Learn {
		return nil
	}
	f.writeMu.Lock()
	defer f.writeMu.Unlock()
	data, dirty := f.list.marshal()
	if !dirty {
		return nil
	}
	if err := writeAtomic(f.opt.File, data); err != nil {
		f.list.markDirty()
		return err
	}
	return nil
}

func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, nothing is there
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o640); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Stats are the firewall's counters.
type Stats struct {
	Mode    Mode
	Entries int   // entries on the allow-list, all users
	Blocked int64 // statements refused in enforce mode
	Learned int64 // entries added in learn mode
	Dropped int64 // statements learn mode could not record (list full, text too long)
}

// Stats returns the firewall's counters.
func (f *Firewall) Stats() Stats {
	return Stats{Mode: f.opt.Mode, Entries: f.list.len(), Blocked: f.blocked.Load(), Learned: f.learned.Load(), Dropped: f.dropped.Load()}
}

// list is the allow-list: per user, the keys allowed. A key maps to true
// when it is an entry of the file, false when it is the normalized form
// of an entry written as SQL (matched, never written back).
type list struct {
	mu      sync.RWMutex
	users   map[string]map[string]bool
	entries int
	dirty   bool
}

func (l *list) allowed(user, key string) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if _, ok := l.users[user][key]; ok {
		return true
	}
	_, ok := l.users[AllUsers][key]
	return ok
}

// add records key for user; full: the list has max entries already.
func (l *list) add(user, key string, max int) (added, full bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if entry, ok := l.users[user][key]; ok && entry {
		return false, false
	}
	if l.entries >= max {
		return false, true
	}
	l.put(user, key, true)
	l.dirty = true
	return true, false
}

func (l *list) put(user, key string, entry bool) {
	m := l.users[user]
	if m == nil {
		m = map[string]bool{}
		l.users[user] = m
	}
	if entry && !m[key] {
		l.entries++
	}
	m[key] = m[key] || entry
}

func (l *list) len() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.entries
}

func (l *list) markDirty() {
	l.mu.Lock()
	l.dirty = true
	l.mu.Unlock()
}

// fileHeader starts every allow-list file switchyard writes.
const fileHeader = `# switchyard firewall allow-list (firewall.allowlist_file).
# Per user, the statements that user may run, as digest texts: literals
# are ?, names are quoted. "*" lists statements every user may run.
# Learn mode adds what it sees and rewrites this file; enforce mode refuses
# anything not listed. Review it, delete what should not run, add entries
# as digest texts or as plain SQL (normalized when read), then reload.
`

// parse reads an allow-list file: a YAML mapping from user names to lists
// of entries. An entry is a digest text or SQL; both it and its normalized
// form are allowed, since normalizing is not idempotent ("( ... )"
// becomes "( . . . )").
func (l *list) parse(data []byte) error {
	var doc map[string][]string
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("want a mapping of user names to lists of statements: %w", err)
	}
	for user, entries := range doc {
		if user == "" {
			return errors.New("an empty user name; use \"*\" for every user")
		}
		for _, e := range entries {
			e = strings.TrimSpace(e)
			if e == "" {
				continue
			}
			l.put(user, e, true)
			if norm, _ := parser.NormalizeDigest(e); norm != e {
				l.put(user, norm, false)
			}
		}
	}
	return nil
}

// marshal renders the list as the file: users sorted, "*" first, each
// user's entries sorted. dirty says whether it changed since the last
// marshal, which clears it.
func (l *list) marshal() (data []byte, dirty bool) {
	l.mu.Lock()
	dirty, l.dirty = l.dirty, false
	doc := make(map[string][]string, len(l.users))
	for user, m := range l.users {
		var entries []string
		for k, entry := range m {
			if entry {
				entries = append(entries, k)
			}
		}
		if len(entries) > 0 {
			doc[user] = entries
		}
	}
	l.mu.Unlock()
	if !dirty {
		return nil, false
	}
	users := make([]string, 0, len(doc))
	for u := range doc {
		users = append(users, u)
	}
	slices.SortFunc(users, func(a, b string) int {
		switch {
		case a == b:
			return 0
		case a == AllUsers:
			return -1
		case b == AllUsers:
			return 1
		}
		return strings.Compare(a, b)
	})
	root := &yaml.Node{Kind: yaml.MappingNode}
	for _, u := range users {
		entries := doc[u]
		slices.Sort(entries)
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for _, e := range entries {
			seq.Content = append(seq.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: e})
		}
		root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: u}, seq)
	}
	var buf bytes.Buffer
	buf.WriteString(fileHeader)
	if len(users) == 0 {
		buf.WriteString("{}\n")
		return buf.Bytes(), true
	}
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		// Strings always encode; this would be a bug in the encoder.
		panic(fmt.Sprintf("firewall: encoding the allow-list: %v", err))
	}
	_ = enc.Close()
	return buf.Bytes(), true
}
