package wire

import (
	"bytes"
	"errors"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

func TestPrepareOK(t *testing.T) {
	for _, ok := range []PrepareOK{
		{StatementID: 1, Columns: 1, Params: 2},
		{StatementID: 1<<32 - 1, Columns: 0xffff, Params: 0xffff, Warnings: 3},
		{},
	} {
		p := AppendPrepareOK(nil, ok)
		got, err := ParsePrepareOK(p)
		if err != nil || got != ok || !IsPrepareOK(p) {
			t.Errorf("ParsePrepareOK(AppendPrepareOK(%+v)) = %+v, %v", ok, got, err)
		}
	}
	// The documentation's COM_STMT_PREPARE_OK for "SELECT CONCAT(?, ?) AS
	// col1": statement 1, one column, two parameters.
	want := unhex(t, "0c 00 00 01 00 01 00 00 00 01 00 02 00 00 00 00")
	got, _ := AppendPacket(nil, AppendPrepareOK(nil, PrepareOK{StatementID: 1, Columns: 1, Params: 2}), 1)
	if !bytes.Equal(got, want) {
		t.Fatalf("% x\nwant % x", got, want)
	}
	// MySQL 8 may add a metadata-follows byte: still a prepare OK.
	if ok, err := ParsePrepareOK(append(want[HeaderSize:], 1)); err != nil || ok.Params != 2 {
		t.Fatalf("13-byte prepare OK: %+v, %v", ok, err)
	}
	for _, bad := range [][]byte{nil, {0}, AppendErr(nil, &mysql.MyError{Code: 1064, Message: "syntax error near here"})} {
		if IsPrepareOK(bad) {
			t.Errorf("IsPrepareOK(% x)", bad)
		}
		if _, err := ParsePrepareOK(bad); err == nil {
			t.Errorf("ParsePrepareOK(% x) accepted", bad)
		}
	}
	checkPrefixes(t, "prepare OK", []field{must(want[HeaderSize:])}, func(p []byte) error {
		_, err := ParsePrepareOK(p)
		return err
	})

	// The proxy renumbers statements in place.
	p := AppendPrepareOK(nil, PrepareOK{StatementID: 7, Columns: 3, Params: 1, Warnings: 1})
	SetPrepareOKStatementID(p, 0x01020304)
	if ok, _ := ParsePrepareOK(p); ok != (PrepareOK{StatementID: 0x01020304, Columns: 3, Params: 1, Warnings: 1}) {
		t.Fatalf("after SetPrepareOKStatementID: %+v", ok)
	}
}

func TestStmtCommands(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    []byte
	}{
		{"fetch 100 rows", cat(mysql.COM_STMT_FETCH, le32(7), le32(100))},
		{"send long data", cat(mysql.COM_STMT_SEND_LONG_DATA, le32(7), le16(1), "a long value")},
		{"reset", cat(mysql.COM_STMT_RESET, le32(7))},
		{"close", cat(mysql.COM_STMT_CLOSE, le32(7))},
		{"execute", cat(mysql.COM_STMT_EXECUTE, le32(7), byte(0), le32(1))},
	} {
		id, err := StmtID(tc.p)
		if err != nil || id != 7 {
			t.Fatalf("%s: StmtID = %d, %v", tc.name, id, err)
		}
		got := AppendStmtCommand([]byte{0xaa}, tc.p, 42)
		want := cat(byte(0xaa), tc.p[0], le32(42), tc.p[5:])
		if !bytes.Equal(got, want) {
			t.Errorf("%s: AppendStmtCommand = % x, want % x", tc.name, got, want)
		}
	}
	if got := AppendStmtClose(nil, 0x01020304); !bytes.Equal(got, []byte{mysql.COM_STMT_CLOSE, 4, 3, 2, 1}) {
		t.Fatalf("AppendStmtClose = % x", got)
	}
	checkPrefixes(t, "StmtID", []field{must(mysql.COM_STMT_FETCH), endOK(le32(7)), cutOK(le32(100))}, func(p []byte) error {
		_, err := StmtID(p)
		return err
	})
}

// The statement of TestRewriteExecute: two parameters, a string and a
// BIGINT, executed as statement 7 and rewritten for statement 42.
var (
	execTypes   = []byte{mysql.MYSQL_TYPE_VAR_STRING, 0, mysql.MYSQL_TYPE_LONGLONG, 0}
	execValues  = []byte{2, 'a', 'b', 5, 0, 0, 0, 0, 0, 0, 0}
	execHead    = []byte{mysql.COM_STMT_EXECUTE, 7, 0, 0, 0, 0, 1, 0, 0, 0} // id 7, flags 0, iterations 1
	execBound   = cat(execHead, []byte{0x00, 1}, execTypes, execValues)     // NULL bitmap, new params bound
	execUnbound = cat(execHead, []byte{0x00, 0}, execValues)
	execWant    = cat([]byte{mysql.COM_STMT_EXECUTE, 42, 0, 0, 0, 0, 1, 0, 0, 0, 0x00, 1}, execTypes, execValues)
)

func TestExecuteBoundTypes(t *testing.T) {
	nine := cat(execHead, []byte{0x00, 0x00, 1}, bytes.Repeat([]byte{mysql.MYSQL_TYPE_TINY, 0}, 9), bytes.Repeat([]byte{1}, 9))
	for _, tc := range []struct {
		name      string
		p         []byte
		numParams int
		want      []byte
	}{
		{"bound", execBound, 2, execTypes},
		{"unbound: relies on earlier types", execUnbound, 2, nil},
		// Servers read any nonzero flag as "types follow".
		{"flag 2", cat(execHead, []byte{0x00, 2}, execTypes, execValues), 2, execTypes},
		{"no parameters", execHead, 0, nil},
		// Nine parameters take a two-byte NULL bitmap.
		{"nine parameters", nine, 9, bytes.Repeat([]byte{mysql.MYSQL_TYPE_TINY, 0}, 9)},
	} {
		got, err := ExecuteBoundTypes(tc.p, tc.numParams)
		if err != nil || !bytes.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
			t.Errorf("%s: % x, %v", tc.name, got, err)
		}
	}
	for _, tc := range []struct {
		name      string
		p         []byte
		numParams int
	}{
		{"cut header", execHead[:9], 0},
		{"no bitmap", execHead, 2},
		{"no flag", cat(execHead, byte(0)), 2},
		{"cut types", execBound[:13], 2},
		{"one bitmap byte for nine", cat(execHead, []byte{0, 1}), 9},
	} {
		if _, err := ExecuteBoundTypes(tc.p, tc.numParams); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

func TestExecuteFlags(t *testing.T) {
	cursor := bytes.Clone(execBound)
	cursor[5] = CursorFlags
	for _, tc := range []struct {
		p    []byte
		want byte
	}{{execBound, 0}, {cursor, CursorFlags}} {
		if f, err := ExecuteFlags(tc.p); err != nil || f != tc.want {
			t.Errorf("ExecuteFlags = %#x, %v", f, err)
		}
	}
	checkPrefixes(t, "ExecuteFlags", []field{
		must(mysql.COM_STMT_EXECUTE), must(le32(7)), must(byte(0)), endOK(le32(1)), cutOK(0, 1, execTypes),
	}, func(p []byte) error {
		_, err := ExecuteFlags(p)
		return err
	})
}

// TestAppendExecute is the old proxy test TestRewriteExecute, with payloads
// that now include their command byte.
func TestAppendExecute(t *testing.T) {
	for _, tc := range []struct {
		name      string
		p         []byte
		numParams int
		types     []byte // what the client bound last
		want      []byte
		err       error
	}{
		{"bound", execBound, 2, execTypes, execWant, nil},
		// The saved types are put in: the server connection that runs it
		// may never have seen the execution that bound them.
		{"unbound, saved types", execUnbound, 2, execTypes, execWant, nil},
		{"unbound, no saved types", execUnbound, 2, nil, nil, ErrNoParamTypes},
		{"flag 2 counts as bound", cat(execHead, []byte{0x00, 2}, execTypes, execValues), 2, execTypes, execWant, nil},
		// No parameters: only the id changes.
		{"no parameters", execHead, 0, nil, cat(mysql.COM_STMT_EXECUTE, le32(42), execHead[5:]), nil},
		{"no parameters, types ignored", execHead, 0, execTypes, cat(mysql.COM_STMT_EXECUTE, le32(42), execHead[5:]), nil},
		// A cursor's flags and the iteration count pass unchanged, and so
		// does a NULL bitmap.
		{"cursor, NULL second parameter", cat(mysql.COM_STMT_EXECUTE, le32(7), byte(CursorFlags), le32(1), []byte{0x02, 0}, execValues[:3]),
			2, execTypes, cat(mysql.COM_STMT_EXECUTE, le32(42), byte(CursorFlags), le32(1), []byte{0x02, 1}, execTypes, execValues[:3]), nil},
		{"cut header", execHead[:9], 0, nil, nil, ErrMalformed},
		{"no flag", cat(execHead, byte(0)), 2, execTypes, nil, ErrMalformed},
		{"cut bound types", execBound[:13], 2, execTypes, nil, ErrMalformed},
		{"saved types of the wrong size", execUnbound, 2, execTypes[:2], nil, ErrNoParamTypes},
	} {
		got, err := AppendExecute([]byte{0xaa}, tc.p, 42, tc.numParams, tc.types)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("%s: err = %v, want %v", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || got[0] != 0xaa || !bytes.Equal(got[1:], tc.want) {
			t.Errorf("%s: got % x, %v\nwant    % x", tc.name, got, err, tc.want)
			continue
		}
		// The rewritten execution binds its types and keeps the values.
		if bt, err := ExecuteBoundTypes(got[1:], tc.numParams); err != nil || (tc.numParams > 0 && !bytes.Equal(bt, tc.types)) {
			t.Errorf("%s: bound types of the result: % x, %v", tc.name, bt, err)
		}
	}
	// The bound execution's types are what a later unbound one needs.
	types, _ := ExecuteBoundTypes(execBound, 2)
	if got, err := AppendExecute(nil, execUnbound, 42, 2, types); err != nil || !bytes.Equal(got, execWant) {
		t.Fatalf("unbound after bound: % x, %v", got, err)
	}

	parse := func(p []byte) error { _, err := AppendExecute(nil, p, 42, 2, execTypes); return err }
	// The values are opaque to the proxy: a cut there is the server's to
	// find.
	checkPrefixes(t, "AppendExecute bound", []field{
		must(execHead[:1]), must(execHead[1:5]), must(execHead[5:6]), must(execHead[6:10]),
		must(byte(0)), must(byte(1)), endOK(execTypes), cutOK(execValues),
	}, parse)
	checkPrefixes(t, "AppendExecute unbound", []field{
		must(execHead[:1]), must(execHead[1:5]), must(execHead[5:6]), must(execHead[6:10]),
		must(byte(0)), endOK(byte(0)), cutOK(execValues),
	}, parse)
	checkPrefixes(t, "ExecuteBoundTypes", []field{
		must(execHead[:1]), must(execHead[1:5]), must(execHead[5:6]), must(execHead[6:10]),
		must(byte(0)), must(byte(1)), endOK(execTypes), cutOK(execValues),
	}, func(p []byte) error { _, err := ExecuteBoundTypes(p, 2); return err })
}
