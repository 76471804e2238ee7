package admin

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The config file as a YAML node tree. The staged tables are read from one
// and written back into a copy of it, key by key, so that what the tables
// do not hold (comments, quoting, ${ENV} references, key order, sections
// nobody edited) survives SAVE CONFIG TO FILE.

// parseDocument parses a config file's text into its document node. An
// empty file is an empty mapping.
func parseDocument(data []byte) (_ *yaml.Node, err error) {
	defer recoverYAML(&err)
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc.Kind == 0 {
		doc = yaml.Node{Kind: yaml.DocumentNode}
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		if len(doc.Content) > 0 && !isNullNode(doc.Content[0]) {
			return nil, errors.New("the config file is not a mapping")
		}
		doc.Content = []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}
	}
	return &doc, nil
}

// encodeDocument writes a document as the file's text.
func encodeDocument(doc *yaml.Node) (_ []byte, err error) {
	defer recoverYAML(&err)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// recoverYAML turns a panic of the YAML library, which it raises only on
// its own bugs, into an error: a reload (SIGHUP runs on the main
// goroutine) must not take the proxy down.
func recoverYAML(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("YAML library failure: %v", r)
	}
}

func isNullNode(n *yaml.Node) bool {
	return n.Kind == 0 || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// root is a document's top-level mapping.
func root(doc *yaml.Node) *yaml.Node { return doc.Content[0] }

// resolved follows aliases.
func resolved(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// get returns the value of key in mapping m, and its index in m.Content
// (of the key node), or nil and -1.
func get(m *yaml.Node, key string) (*yaml.Node, int) {
	m = resolved(m)
	if m == nil || m.Kind != yaml.MappingNode {
		return nil, -1
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := resolved(m.Content[i]); k.Kind == yaml.ScalarNode && k.Value == key {
			return m.Content[i+1], i
		}
	}
	return nil, -1
}

// getPath returns the value at a dotted path such as monitor.interval.
func getPath(m *yaml.Node, path string) *yaml.Node {
	for {
		key, rest, more := strings.Cut(path, ".")
		v, _ := get(m, key)
		if v == nil || !more {
			return resolved(v)
		}
		m, path = v, rest
	}
}

// set makes v the value of key in mapping m, in place of the old value
// (whose comments it takes) or appended.
func set(m *yaml.Node, key string, v *yaml.Node) {
	if old, i := get(m, key); old != nil {
		v.LineComment, v.FootComment = old.LineComment, old.FootComment
		m.Content[i+1] = v
		return
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
}

// setPath sets the value at a dotted path, creating the mappings on the way.
func setPath(m *yaml.Node, path string, v *yaml.Node) {
	for {
		key, rest, more := strings.Cut(path, ".")
		if !more {
			set(m, key, v)
			return
		}
		next, _ := get(m, key)
		if next = resolved(next); next == nil || next.Kind != yaml.MappingNode {
			next = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			set(m, key, next)
		}
		m, path = next, rest
	}
}

// remove deletes key from mapping m; a comment above it moves to the next
// key, or below the mapping.
func remove(m *yaml.Node, key string) {
	_, i := get(m, key)
	if i < 0 {
		return
	}
	if c := m.Content[i].HeadComment; c != "" {
		if i+2 < len(m.Content) {
			next := m.Content[i+2]
			next.HeadComment = strings.TrimSpace(c + "\n" + next.HeadComment)
		} else {
			m.FootComment = strings.TrimSpace(m.FootComment + "\n" + c)
		}
	}
	m.Content = append(m.Content[:i], m.Content[i+2:]...)
}

// removePath deletes the key at a dotted path, and mappings it leaves empty.
func removePath(m *yaml.Node, path string) {
	key, rest, more := strings.Cut(path, ".")
	if !more {
		remove(m, key)
		return
	}
	next, _ := get(m, key)
	if next = resolved(next); next == nil || next.Kind != yaml.MappingNode {
		return
	}
	removePath(next, rest)
	if len(next.Content) == 0 {
		remove(m, key)
	}
}

// scalarText is a node's value as the tables show it: a scalar's text, a
// list's items comma-separated; ok is false for anything else.
func scalarText(n *yaml.Node) (string, bool) {
	n = resolved(n)
	switch {
	case n == nil:
		return "", false
	case n.Kind == yaml.ScalarNode:
		if isNullNode(n) {
			return "", false
		}
		return n.Value, true
	case n.Kind == yaml.SequenceNode:
		parts := make([]string, 0, len(n.Content))
		for _, item := range n.Content {
			s, ok := scalarText(item)
			if !ok {
				return "", false
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ", "), true
	}
	return "", false
}

// scalar builds a scalar node for text; tag says how YAML should read it
// (the encoder quotes a string that would read as something else).
func scalar(text, tag string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: text}
}

// flowList builds a one-line list from comma-separated text.
func flowList(text string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
	for _, item := range strings.Split(text, ",") {
		if item = strings.TrimSpace(item); item != "" {
			n.Content = append(n.Content, scalar(item, "!!str"))
		}
	}
	return n
}

// cloneNode copies a node tree deeply, aliases pointing into the copy.
func cloneNode(n *yaml.Node) *yaml.Node {
	copies := map[*yaml.Node]*yaml.Node{}
	var clone func(*yaml.Node) *yaml.Node
	clone = func(n *yaml.Node) *yaml.Node {
		if n == nil {
			return nil
		}
		if c, ok := copies[n]; ok {
			return c
		}
		c := *n
		copies[n] = &c
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, child := range n.Content {
			c.Content[i] = clone(child)
		}
		c.Alias = clone(n.Alias)
		return &c
	}
	return clone(n)
}

// writeFileAtomically replaces path with data: a temporary file in the same
// directory, synced, then renamed over it, so that a crash leaves the old
// file or the new one, never half of one. The file keeps its permissions.
func writeFileAtomically(path string, data []byte) error {
	mode := os.FileMode(0o600)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing left to remove
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // the rename is durable once the directory is
		d.Close()
	}
	return nil
}

// describeNode names a node's kind for an error message.
func describeNode(n *yaml.Node) string {
	switch resolved(n).Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q", n.Value)
}
