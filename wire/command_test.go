package wire

import (
	"bytes"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

func TestFieldList(t *testing.T) {
	for _, tc := range []struct{ table, wildcard string }{{"users", ""}, {"t", "a%"}, {"", ""}} {
		p := AppendFieldList(nil, tc.table, tc.wildcard)
		if want := cat(mysql.COM_FIELD_LIST, tc.table, byte(0), tc.wildcard); !bytes.Equal(p, want) {
			t.Errorf("AppendFieldList(%q, %q) = % x", tc.table, tc.wildcard, p)
		}
		table, wildcard, err := ParseFieldList(p)
		if err != nil || table != tc.table || wildcard != tc.wildcard {
			t.Errorf("ParseFieldList(AppendFieldList(%q, %q)) = %q, %q, %v", tc.table, tc.wildcard, table, wildcard, err)
		}
	}
	// Servers take the end of the packet as the end of the table name.
	if table, _, err := ParseFieldList(cat(mysql.COM_FIELD_LIST, "users")); err != nil || table != "users" {
		t.Fatalf("without a NUL: %q, %v", table, err)
	}
	for _, bad := range [][]byte{nil, cat(mysql.COM_QUERY, "users", byte(0))} {
		if _, _, err := ParseFieldList(bad); err == nil {
			t.Errorf("ParseFieldList(% x) accepted", bad)
		}
	}
}

func TestSetOption(t *testing.T) {
	for _, opt := range []uint16{MultiStatementsOn, MultiStatementsOff, 0xffff} {
		p := AppendSetOption(nil, opt)
		if want := cat(mysql.COM_SET_OPTION, le16(opt)); !bytes.Equal(p, want) {
			t.Errorf("AppendSetOption(%d) = % x", opt, p)
		}
		if got, err := ParseSetOption(p); err != nil || got != opt {
			t.Errorf("ParseSetOption(AppendSetOption(%d)) = %d, %v", opt, got, err)
		}
	}
	if _, err := ParseSetOption(cat(mysql.COM_PING, le16(0))); err == nil {
		t.Fatal("COM_PING read as COM_SET_OPTION")
	}
	checkPrefixes(t, "ParseSetOption", []field{must(mysql.COM_SET_OPTION), must(le16(1))}, func(p []byte) error {
		_, err := ParseSetOption(p)
		return err
	})
}

func TestCommandName(t *testing.T) {
	for cmd, want := range map[byte]string{
		mysql.COM_QUERY: "COM_QUERY", mysql.COM_STMT_EXECUTE: "COM_STMT_EXECUTE",
		mysql.COM_RESET_CONNECTION: "COM_RESET_CONNECTION", 0x7f: "COM_0x7f",
	} {
		if got := CommandName(cmd); got != want {
			t.Errorf("CommandName(%#x) = %q, want %q", cmd, got, want)
		}
	}
}
