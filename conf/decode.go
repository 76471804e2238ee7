package conf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong with a config file.
type Problem struct {
	File string
	Line int
	Key  string // dotted path such as servers[1].address; "" for the file as a whole
	Msg  string
}

// String is "FILE:LINE: KEY: message", the line `switchyard --check` prints.
func (p Problem) String() string {
	if p.Key == "" {
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", p.File, p.Line, p.Key, p.Msg)
}

// Errors is every problem found in a file, sorted by line.
type Errors []Problem

func (e Errors) Error() string {
	lines := make([]string, len(e))
	for i, p := range e {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// maxProblems bounds the report; past it, more lines help nobody and a
// hostile file of aliases could otherwise make the report huge.
const maxProblems = 200

// Parse parses and validates data, naming filename in problems. ${NAME} in
// any scalar value is replaced through env (nil means os.LookupEnv) before the
// value is converted, so numbers, booleans and durations can come from the
// environment too. The error, when not nil, is always Errors.
func Parse(filename string, data []byte, env func(string) (string, bool)) (*Config, error) {
	if env == nil {
		env = os.LookupEnv
	}
	d := &decoder{file: filename, env: env, lines: map[string]int{}, failed: map[string]bool{}}
	cfg := Default()
	if root := d.parseYAML(data); root != nil {
		d.lines[""] = max(root.Line, 1)
		if !isNull(root) {
			d.decode(root, reflect.ValueOf(cfg).Elem(), "", false)
		}
		if len(d.probs) < maxProblems {
			d.check(cfg)
		}
	}
	if len(d.probs) == 0 {
		cfg.file, cfg.lines = filename, d.lines
		return cfg, nil
	}
	sort.SliceStable(d.probs, func(i, j int) bool { return d.probs[i].Line < d.probs[j].Line })
	if len(d.probs) >= maxProblems {
		d.probs = d.probs[:maxProblems]
		last := d.probs[maxProblems-1].Line
		d.probs = append(d.probs, Problem{File: filename, Line: last, Msg: "too many problems; stopped here"})
	}
	return nil, d.probs
}

type decoder struct {
	file   string
	env    func(string) (string, bool)
	probs  Errors
	lines  map[string]int  // key path -> line, for the checks that run after decoding
	failed map[string]bool // paths that already have a decoding problem
}

var (
	yamlLine      = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	unknownAnchor = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)
)

// parseYAML returns the root node, nil after a syntax error, or a zero node
// for an empty file.
func (d *decoder) parseYAML(data []byte) (root *yaml.Node) {
	defer func() {
		// The yaml library panics only on its own bugs; a config file must
		// still not be able to crash the proxy on reload.
		if r := recover(); r != nil {
			d.add(1, "", "invalid YAML: %v", r)
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc, extra yaml.Node
	if err := dec.Decode(&doc); err == io.EOF {
		return &yaml.Node{}
	} else if err != nil {
		d.syntax(err, data)
		return nil
	}
	if err := dec.Decode(&extra); err == nil {
		d.add(extra.Line, "", "only one YAML document is allowed")
		return nil
	} else if err != io.EOF {
		d.syntax(err, data)
		return nil
	}
	if len(doc.Content) == 0 {
		return &yaml.Node{}
	}
	return doc.Content[0]
}

func (d *decoder) syntax(err error, data []byte) {
	msg, line := err.Error(), 1
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else if m := unknownAnchor.FindStringSubmatch(msg); m != nil {
		// The library gives no line for this one; the first use of the alias
		// is almost always the culprit.
		if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
			line = 1 + bytes.Count(data[:i], []byte("\n"))
		}
		msg = fmt.Sprintf("unknown anchor %q referenced", m[1])
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	d.add(line, "", "invalid YAML: %s", msg)
}

func (d *decoder) add(line int, key, format string, args ...any) {
	// A problem is one short line for a person to read, whatever the file
	// holds: long values are cut and newlines escaped.
	for i, a := range args {
		if s, ok := a.(string); ok {
			args[i] = shorten(s)
		}
	}
	msg := strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", `\n`)
	d.probs = append(d.probs, Problem{File: d.file, Line: max(line, 1), Key: shorten(key), Msg: msg})
}

func shorten(s string) string {
	const most = 80
	if len(s) <= most {
		return s
	}
	i := most - 3
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "..."
}

// fail reports a decoding problem and marks path, so that the checks after
// decoding do not pile a second, derived complaint on the same key.
func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.failed[path] = true
	d.add(n.Line, path, format, args...)
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	prefixType   = reflect.TypeFor[netip.Prefix]()
)

type defaulter interface{ setDefaults() }

func setDefaults(p reflect.Value) {
	if d, ok := p.Interface().(defaulter); ok {
		d.setDefaults()
	}
}

// decode stores node n into v, which already holds its default.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string, size bool) {
	if len(d.probs) >= maxProblems {
		return
	}
	n = resolve(n)
	t := v.Type()
	if isNull(n) {
		switch {
		case t == durationType || t == prefixType || size:
			d.fail(n, path, "missing value")
		case t.Kind() == reflect.Struct:
			// An empty section keeps its defaults.
		case t.Kind() == reflect.String, t.Kind() == reflect.Pointer, t.Kind() == reflect.Slice:
			// "http:" with nothing after it reads as "no http", as in yaml.v3.
			v.SetZero()
		default:
			d.fail(n, path, "missing value")
		}
		return
	}
	switch {
	case t == durationType:
		if s, ok := d.scalar(n, path, "a duration"); ok {
			if x, err := time.ParseDuration(s); err != nil {
				d.fail(n, path, "%q is not a duration (e.g. 500ms, 2s, 5m)", s)
			} else {
				v.SetInt(int64(x))
			}
		}
	case t == prefixType:
		if s, ok := d.scalar(n, path, "an IP network"); ok {
			if p, err := parsePrefix(s); err != nil {
				d.fail(n, path, "%q is not an IP network (e.g. 10.0.0.0/8) or address", s)
			} else {
				v.Set(reflect.ValueOf(p))
			}
		}
	case size:
		if s, ok := d.scalar(n, path, "a size"); ok {
			if x, err := parseSize(s); err != nil {
				d.fail(n, path, "%q is not a size (e.g. 65536, 512KiB, 64MiB)", s)
			} else {
				v.SetInt(x)
			}
		}
	case t.Kind() == reflect.Struct:
		d.mapping(n, v, path)
	case t.Kind() == reflect.Pointer:
		p := reflect.New(t.Elem())
		setDefaults(p)
		d.decode(n, p.Elem(), path, false)
		v.Set(p)
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "expected a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			d.lines[p] = item.Line
			setDefaults(s.Index(i).Addr())
			d.decode(item, s.Index(i), p, false)
		}
		v.Set(s)
	case t.Kind() == reflect.String:
		if s, ok := d.scalar(n, path, "a string"); ok {
			v.SetString(s)
		}
	case t.Kind() == reflect.Bool:
		if s, ok := d.scalar(n, path, "a boolean"); ok {
			switch strings.ToLower(s) {
			case "true":
				v.SetBool(true)
			case "false":
				v.SetBool(false)
			default:
				d.fail(n, path, "%q is not a boolean (true or false)", s)
			}
		}
	case t.Kind() == reflect.Int:
		if s, ok := d.scalar(n, path, "an integer"); ok {
			x, err := strconv.ParseInt(s, 10, t.Bits())
			switch {
			case errors.Is(err, strconv.ErrRange):
				d.fail(n, path, "%q is out of range", s)
			case err != nil:
				d.fail(n, path, "%q is not an integer", s)
			default:
				v.SetInt(x)
			}
		}
	default:
		panic("conf: no decoding for " + t.String()) // a schema bug, caught by any test
	}
}

type field struct {
	index int
	size  bool
}

func fieldsOf(t reflect.Type) (map[string]field, []string) {
	fields, names := map[string]field{}, []string(nil)
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			fields[name] = field{i, f.Tag.Get("conf") == "size"}
			names = append(names, name)
		}
	}
	return fields, names
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	fields, names := fieldsOf(v.Type())
	seen := map[string]int{}
	for _, e := range d.entries(n, path, map[*yaml.Node]bool{}) {
		if len(d.probs) >= maxProblems {
			return
		}
		if e.key.Kind != yaml.ScalarNode {
			d.add(e.key.Line, path, "a key must be a string, not %s", describe(e.key))
			continue
		}
		name := e.key.Value
		p := join(path, name)
		if first, dup := seen[name]; dup {
			if !e.merged { // merged keys give way to written ones, as YAML says
				d.fail(e.key, p, "duplicate key (first at line %d)", first)
			}
			continue
		}
		seen[name] = e.key.Line
		f, ok := fields[name]
		if !ok {
			d.fail(e.key, p, "unknown key%s", suggest(name, names))
			continue
		}
		line := e.key.Line
		if val := resolve(e.value); val.Kind == yaml.ScalarNode {
			line = val.Line
		}
		d.lines[p] = line
		d.decode(e.value, v.Field(f.index), p, f.size)
	}
}

type entry struct {
	key, value *yaml.Node
	merged     bool
}

// entries lists a mapping's pairs, the written ones first and then those
// pulled in by "<<: *anchor" merge keys, so written keys win wherever the
// merge key sits. seen stops merge cycles and repeated merges of one anchor.
func (d *decoder) entries(n *yaml.Node, path string, seen map[*yaml.Node]bool) []entry {
	var own, merged []entry
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Value != "<<" || k.ShortTag() != "!!merge" {
			own = append(own, entry{key: k, value: v})
			continue
		}
		v = resolve(v)
		sources := []*yaml.Node{v}
		if v.Kind == yaml.SequenceNode {
			sources = v.Content
		}
		for _, s := range sources {
			s = resolve(s)
			if s.Kind != yaml.MappingNode {
				d.fail(s, join(path, "<<"), "a merge needs a mapping or a list of mappings, got %s", describe(s))
				continue
			}
			if seen[s] {
				continue
			}
			seen[s] = true
			for _, e := range d.entries(s, path, seen) {
				e.merged = true
				merged = append(merged, e)
			}
		}
	}
	return append(own, merged...)
}

// scalar returns n's text with ${NAME} references replaced; ok is false after
// a problem has been reported.
func (d *decoder) scalar(n *yaml.Node, path, want string) (s string, ok bool) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "expected %s, got %s", want, describe(n))
		return "", false
	}
	s, ok = n.Value, true
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			d.fail(n, path, "unterminated ${ in %q", n.Value)
			return "", false
		}
		b.WriteString(s[:i])
		name := s[i+2 : i+j]
		s = s[i+j+1:]
		if !envName.MatchString(name) {
			d.fail(n, path, "${%s}: not a valid environment variable name", name)
			ok = false
		} else if val, set := d.env(name); !set {
			d.fail(n, path, "environment variable %s is not set", name)
			ok = false
		} else {
			b.WriteString(val)
		}
	}
	b.WriteString(s)
	return b.String(), ok
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// resolve follows aliases; the parser never leaves one dangling, but a
// fuzzer-built node might as well be safe.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == 0 || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(shorten(n.Value))
	}
	return "nothing"
}

func join(path, key string) string {
	if !plainKey.MatchString(key) {
		key = strconv.Quote(key) // keeps odd keys on one line and unambiguous
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_<>-]+$`)

func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30,
	"kb": 1e3, "mb": 1e6, "gb": 1e9,
}

var sizeRE = regexp.MustCompile(`^([0-9]+) ?([A-Za-z]*)$`)

// parseSize reads a byte count with an optional unit, case-insensitively.
func parseSize(s string) (int64, error) {
	m := sizeRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, errors.New("bad size")
	}
	unit, ok := sizeUnits[strings.ToLower(m[2])]
	n, err := strconv.ParseInt(m[1], 10, 64)
	if !ok || err != nil || n > (1<<63-1)/unit {
		return 0, errors.New("bad size")
	}
	return n * unit, nil
}

// suggest names the known key closest to an unknown one, if any is close.
func suggest(key string, known []string) string {
	best, bestDist := "", 3
	if len(key) > 64 {
		return ""
	}
	for _, k := range known {
		if dist := levenshtein(strings.ToLower(key), k); dist < bestDist && dist*2 < len(key) {
			best, bestDist = k, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
