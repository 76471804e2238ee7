package admin

import (
	"fmt"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"time"

	"switchyard/conf"
)

// The variables table: every key of the config file that is not part of a
// list of items (servers, users, query_rules), by its dotted path, such as
// monitor.interval or limits.max_packet_size. Lists of values
// (routing.read_only_functions) are written comma-separated.

// variable is one config key of the variables table.
type variable struct {
	key   string
	index []int // the field's index path in conf.Config
	typ   reflect.Type
	size  bool // a byte size, written with a unit
	// section is the key of the optional section (tls, backend_tls) the
	// variable belongs to, or "".
	section string
}

func (v *variable) isList() bool { return v.typ.Kind() == reflect.Slice }
func (v *variable) isBool() bool { return v.typ.Kind() == reflect.Bool }

// secret reports whether the variable holds a password, which the runtime
// views do not show.
func (v *variable) secret() bool { return strings.HasSuffix(v.key, "password") }

// configVariables lists the variables of conf.Config in file order.
func configVariables() []variable {
	var out []variable
	var walk func(t reflect.Type, prefix string, index []int, section string)
	walk = func(t reflect.Type, prefix string, index []int, section string) {
		for i := range t.NumField() {
			f := t.Field(i)
			key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if key == "" || key == "-" {
				continue
			}
			path := key
			if prefix != "" {
				path = prefix + "." + key
			}
			idx := append(append([]int(nil), index...), i)
			ft := f.Type
			switch {
			case ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct:
				walk(ft.Elem(), path, idx, path)
			case ft.Kind() == reflect.Struct && ft != reflect.TypeFor[netip.Prefix]():
				walk(ft, path, idx, section)
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct && ft.Elem() != reflect.TypeFor[netip.Prefix]():
				// A list of items: a table of its own.
			default:
				out = append(out, variable{key: path, index: idx, typ: ft, size: f.Tag.Get("conf") == "size", section: section})
			}
		}
	}
	walk(reflect.TypeFor[conf.Config](), "", nil, "")
	return out
}

// value returns the variable's value in cfg as text; ok is false when its
// optional section is absent (the value is then its type's zero).
func (v *variable) value(cfg *conf.Config) (string, bool) {
	rv := reflect.ValueOf(cfg).Elem()
	for _, i := range v.index {
		if rv.Kind() == reflect.Pointer {
			if rv.IsNil() {
				return formatValue(reflect.Zero(v.typ), v.size), false
			}
			rv = rv.Elem()
		}
		rv = rv.Field(i)
	}
	return formatValue(rv, v.size), true
}

// formatValue writes a config value the way the file would: durations and
// sizes with units, lists comma-separated.
func formatValue(rv reflect.Value, size bool) string {
	switch {
	case rv.Type() == reflect.TypeFor[time.Duration]():
		return formatDuration(time.Duration(rv.Int()))
	case size:
		return formatSize(rv.Int())
	case rv.Kind() == reflect.Slice:
		parts := make([]string, rv.Len())
		for i := range parts {
			parts[i] = formatValue(rv.Index(i), false)
		}
		return strings.Join(parts, ", ")
	case rv.Kind() == reflect.Bool:
		return strconv.FormatBool(rv.Bool())
	case rv.Kind() == reflect.Int || rv.Kind() == reflect.Int64:
		return strconv.FormatInt(rv.Int(), 10)
	case rv.Kind() == reflect.String:
		return rv.String()
	}
	return fmt.Sprint(rv.Interface())
}

// formatDuration drops the zero units Go's String adds: 5m, not 5m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func formatSize(n int64) string {
	for _, u := range []struct {
		unit string
		size int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.unit
		}
	}
	return strconv.FormatInt(n, 10)
}

// defaultValues are the variables' values when the file does not write
// them. Optional sections take the defaults they get when written empty.
func defaultValues(vars []variable) map[string]string {
	cfg, err := conf.Parse("defaults", []byte("servers: [{name: x, address: 'x:1'}]\nbackend_tls: {}\n"), func(string) (string, bool) { return "", false })
	if err != nil {
		panic("admin: the defaults do not parse: " + err.Error()) // a bug the tests catch
	}
	out := make(map[string]string, len(vars))
	for i := range vars {
		v, _ := vars[i].value(cfg)
		out[vars[i].key] = v
	}
	return out
}
