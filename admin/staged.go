package admin

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
	"go.yaml.in/yaml/v3"

	"switchyard/conf"
	"switchyard/wire"
)

// The staged config: the tables servers, users, query_rules and variables,
// and the document they were loaded from. Loading fills the tables from a
// document; building writes them back into a copy of it, which conf
// validates as a whole, exactly as it validates the file.

// fillStaged replaces the staged tables' rows with doc's content.
func (a *Admin) fillStaged(ctx context.Context, doc *yaml.Node) error {
	if _, err := a.db.exec(ctx, "BEGIN"); err != nil {
		return err
	}
	err := a.fillStagedTx(ctx, doc)
	if err != nil {
		_, _ = a.db.exec(ctx, "ROLLBACK")
		return err
	}
	_, err = a.db.exec(ctx, "COMMIT")
	return err
}

func (a *Admin) fillStagedTx(ctx context.Context, doc *yaml.Node) error {
	m := root(doc)
	for _, t := range a.schema.lists() {
		if _, err := a.db.exec(ctx, "DELETE FROM "+t.name); err != nil {
			return err
		}
		seq := resolved(getPath(m, t.section))
		if seq == nil || seq.Kind != yaml.SequenceNode {
			continue
		}
		for i, item := range seq.Content {
			var names []string
			var vals []any
			for _, c := range t.columns {
				if c.name == "rule_id" {
					names, vals = append(names, quoteIdent(c.name)), append(vals, int64(i+1))
					continue
				}
				v, _ := get(resolved(item), c.name)
				text, ok := scalarText(v)
				if !ok {
					continue
				}
				names, vals = append(names, quoteIdent(c.name)), append(vals, columnValue(&c, text))
			}
			q := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", t.name, strings.Join(names, ", "),
				strings.TrimSuffix(strings.Repeat("?, ", len(vals)), ", "))
			if len(vals) == 0 {
				q = "INSERT INTO " + t.name + " DEFAULT VALUES"
			}
			if _, err := a.db.exec(ctx, q, vals...); err != nil {
				return err
			}
		}
	}
	if _, err := a.db.exec(ctx, "DELETE FROM variables"); err != nil {
		return err
	}
	for i := range a.vars {
		v := &a.vars[i]
		text, ok := scalarText(getPath(m, v.key))
		if !ok {
			text = a.defaults[v.key]
		}
		if _, err := a.db.exec(ctx, "INSERT INTO variables (variable_name, variable_value) VALUES (?, ?)", v.key, text); err != nil {
			return err
		}
	}
	return nil
}

// columnValue is a file value as a staged column holds it: booleans as 1
// or 0 and integers as numbers, so that WHERE promotable = 1 works; what
// does not read as either (a ${ENV} reference) stays text.
func columnValue(c *column, text string) any {
	if c.yamlBool {
		switch strings.ToLower(text) {
		case "true":
			return int64(1)
		case "false":
			return int64(0)
		}
		return text
	}
	if strings.HasPrefix(c.typ, "INTEGER") {
		if n, err := strconv.ParseInt(text, 10, 64); err == nil {
			return n
		}
	}
	return text
}

// stagedRows names the staged rows by the position conf's problems refer
// to: the index of each list item, the keys of the variables.
type stagedRows struct {
	items map[string][]string // section -> row label per item
}

// buildDocument writes the staged tables into a copy of the staged
// document. Problems that validation would not name well (an unknown
// variable, a value of the wrong kind) come back as an error.
func (a *Admin) buildDocument(ctx context.Context) (*yaml.Node, *stagedRows, error) {
	doc := cloneNode(a.staged)
	m := root(doc)
	rows := &stagedRows{items: map[string][]string{}}
	for _, t := range a.schema.lists() {
		if err := a.buildList(ctx, m, t, rows); err != nil {
			return nil, nil, err
		}
	}
	if err := a.buildVariables(ctx, m); err != nil {
		return nil, nil, err
	}
	return doc, rows, nil
}

func (a *Admin) buildList(ctx context.Context, m *yaml.Node, t *listTable, rows *stagedRows) error {
	var cols []string
	for _, c := range t.columns {
		cols = append(cols, quoteIdent(c.name))
	}
	rs, err := a.db.query(ctx, fmt.Sprintf("SELECT %s FROM %s ORDER BY %s", strings.Join(cols, ", "), t.name, t.order))
	if err != nil {
		return err
	}
	defer rs.Close()
	// Items of the document by name: an edited row keeps its item's
	// comments and the keys the table does not show.
	old := map[string]*yaml.Node{}
	oldSeq := resolved(getPath(m, t.section))
	if oldSeq != nil && oldSeq.Kind == yaml.SequenceNode {
		for _, item := range oldSeq.Content {
			if name, ok := scalarText(getPath(item, "name")); ok {
				old[name] = resolved(item)
			}
		}
	}
	seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	if oldSeq != nil && oldSeq.Kind == yaml.SequenceNode {
		seq.HeadComment, seq.FootComment = oldSeq.HeadComment, oldSeq.FootComment
	}
	vals := make([]any, len(t.columns))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rs.Next() {
		if err := rs.Scan(ptrs...); err != nil {
			return err
		}
		var item *yaml.Node
		name, label := "", ""
		for i, c := range t.columns {
			if c.name == "name" {
				if s, ok := textOf(vals[i]); ok {
					name = s
				}
			}
			if c.name == "rule_id" {
				label = fmt.Sprintf("rule_id %v", vals[i])
			}
		}
		if label == "" {
			label = fmt.Sprintf("name '%s'", name)
		} else if name != "" {
			label += fmt.Sprintf(" (name '%s')", name)
		}
		rows.items[t.section] = append(rows.items[t.section], label)
		if o := old[name]; o != nil && name != "" {
			item = cloneNode(o)
			delete(old, name) // a second row of the same name is a new item
		} else {
			item = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		}
		for i, c := range t.columns {
			if c.name == "rule_id" {
				continue
			}
			text, ok := textOf(vals[i])
			if !ok {
				remove(item, c.name)
				continue
			}
			if cur, _ := scalarText(getPath(item, c.name)); cur == text && getPath(item, c.name) != nil {
				continue
			}
			n, err := a.valueNode(text, c.yamlBool, strings.HasPrefix(c.typ, "INTEGER"))
			if err != nil {
				return fmt.Errorf("%s row %s, column %s: %w", t.name, label, c.name, err)
			}
			set(item, c.name, n)
		}
		seq.Content = append(seq.Content, item)
	}
	if err := rs.Err(); err != nil {
		return err
	}
	if len(seq.Content) == 0 {
		remove(m, t.section)
		return nil
	}
	set(m, t.section, seq)
	return nil
}

// textOf is a column value as the text a YAML scalar holds; false for NULL.
func textOf(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", false
	case []byte:
		return string(x), true
	case string:
		return x, true
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), true
	}
	return fmt.Sprint(v), true
}

// A ${NAME} reference, which stays text whatever the key's type.
var envRef = regexp.MustCompile(`\$\{[^}]*\}`)

// valueNode builds the scalar for a staged value: booleans as true or
// false (1, 0, on, off, yes, no are accepted), numbers as numbers, the
// rest as strings.
func (a *Admin) valueNode(text string, isBool, isInt bool) (*yaml.Node, error) {
	if envRef.MatchString(text) {
		return scalar(text, "!!str"), nil
	}
	if isBool {
		switch strings.ToLower(text) {
		case "1", "true", "on", "yes":
			return scalar("true", "!!bool"), nil
		case "0", "false", "off", "no":
			return scalar("false", "!!bool"), nil
		}
		return nil, fmt.Errorf("%q is not a boolean (1, 0, true or false)", text)
	}
	if isInt {
		if _, err := strconv.ParseInt(text, 10, 64); err == nil {
			return scalar(text, "!!int"), nil
		}
	}
	return scalar(text, "!!str"), nil
}

func (a *Admin) buildVariables(ctx context.Context, m *yaml.Node) error {
	rs, err := a.db.query(ctx, "SELECT variable_name, variable_value FROM variables")
	if err != nil {
		return err
	}
	staged := map[string]*string{}
	var unknown []string
	for rs.Next() {
		var name string
		var value sql.NullString
		if err := rs.Scan(&name, &value); err != nil {
			rs.Close()
			return err
		}
		if _, ok := a.defaults[name]; !ok {
			unknown = append(unknown, name)
			continue
		}
		if value.Valid {
			staged[name] = &value.String
		} else {
			staged[name] = nil
		}
	}
	rs.Close()
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("variables: no such variable %s; the config's keys are listed in switchyard.example.yaml", strings.Join(unknown, ", "))
	}
	for i := range a.vars {
		v := &a.vars[i]
		value, present := staged[v.key]
		cur := getPath(m, v.key)
		if !present || value == nil {
			// A deleted variable, or NULL: the key is not written, so
			// its default applies.
			if cur != nil {
				removePath(m, v.key)
			}
			continue
		}
		text := *value
		if curText, ok := scalarText(cur); ok && curText == text {
			continue
		}
		if cur == nil && text == a.defaults[v.key] {
			continue
		}
		var n *yaml.Node
		if v.isList() && !envRef.MatchString(text) {
			n = flowList(text)
		} else {
			isInt := !v.size && v.typ.Kind() == reflect.Int
			var err error
			if n, err = a.valueNode(text, v.isBool(), isInt); err != nil {
				return fmt.Errorf("variables row '%s': %w", v.key, err)
			}
		}
		setPath(m, v.key, n)
	}
	return nil
}

// validate checks a built document the way a file is checked, and names
// problems by their staged rows and columns.
func (a *Admin) validate(doc *yaml.Node, rows *stagedRows) (*conf.Config, []byte, error) {
	text, err := encodeDocument(doc)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := conf.Parse(a.opt.ConfigPath, text, a.opt.Env)
	if err != nil {
		return nil, nil, a.stagedError(err, rows)
	}
	return cfg, text, nil
}

// stagedError rewrites conf's problems, which name keys of the built
// document, as rows and columns of the staged tables.
func (a *Admin) stagedError(err error, rows *stagedRows) error {
	var probs conf.Errors
	if !errors.As(err, &probs) {
		return err
	}
	lines := make([]string, 0, len(probs))
	for _, p := range probs {
		lines = append(lines, a.stagedProblem(p, rows))
	}
	return wire.Errorf(mysql.ER_UNKNOWN_ERROR, "the staged config is invalid; nothing changed: %s", strings.Join(lines, "; "))
}

var itemKey = regexp.MustCompile(`^([a-z_]+)\[(\d+)\](?:\.(.*))?$`)

func (a *Admin) stagedProblem(p conf.Problem, rows *stagedRows) string {
	if m := itemKey.FindStringSubmatch(p.Key); m != nil {
		i, _ := strconv.Atoi(m[2])
		if labels := rows.items[m[1]]; i < len(labels) {
			if col, _, _ := strings.Cut(m[3], "["); col != "" {
				return fmt.Sprintf("%s row %s, column %s: %s", m[1], labels[i], col, p.Msg)
			}
			return fmt.Sprintf("%s row %s: %s", m[1], labels[i], p.Msg)
		}
	}
	for i := range a.vars {
		if k := a.vars[i].key; p.Key == k || strings.HasPrefix(p.Key, k+"[") {
			return fmt.Sprintf("variables row '%s': %s", k, p.Msg)
		}
	}
	if p.Key == "" {
		return p.Msg
	}
	return fmt.Sprintf("%s: %s", p.Key, p.Msg)
}
