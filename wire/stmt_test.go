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

// The protocol documentation's COM_STMT_EXECUTE: statement 1, no cursor,
// one VARCHAR parameter "foo" with its type bound.
const docExecute = `17 01 00 00 00 00 01 00 00 00 00 01 0f 00 03 66 6f 6f`

func TestStmtExecuteDocumented(t *testing.T) {
	e := &StmtExecute{StatementID: 1, BindTypes: true,
		Params: []Value{{Type: mysql.MYSQL_TYPE_VARCHAR, Bytes: []byte("foo")}}}
	want := unhex(t, docExecute)
	if got := AppendStmtExecute(nil, e); !bytes.Equal(got, want) {
		t.Fatalf("AppendStmtExecute = % x\nwant               % x", got, want)
	}
	got, err := ParseStmtExecute(want, 1, nil, nil)
	if err != nil || got.StatementID != 1 || got.Flags != 0 || !got.BindTypes || !sameValues(got.Params, e.Params) {
		t.Fatalf("ParseStmtExecute = %+v, %v", got, err)
	}
}

func TestStmtExecute(t *testing.T) {
	ab := Value{Type: mysql.MYSQL_TYPE_VAR_STRING, Bytes: []byte("ab")}
	five := Value{Type: mysql.MYSQL_TYPE_LONGLONG, Int: 5}
	nullStr := Value{Type: mysql.MYSQL_TYPE_VAR_STRING, Null: true}
	for _, tc := range []struct {
		name      string
		p         []byte
		numParams int
		types     []byte // bound before
		longData  []bool
		want      StmtExecute
		err       error
	}{
		// The executions of TestAppendExecute.
		{"bound", execBound, 2, nil, nil, StmtExecute{StatementID: 7, BindTypes: true, Params: []Value{ab, five}}, nil},
		{"unbound, types bound before", execUnbound, 2, execTypes, nil, StmtExecute{StatementID: 7, Params: []Value{ab, five}}, nil},
		{"unbound, none bound before", execUnbound, 2, nil, nil, StmtExecute{}, ErrNoParamTypes},
		{"unbound, types of the wrong size", execUnbound, 2, execTypes[:2], nil, StmtExecute{}, ErrNoParamTypes},
		{"bound types win", execBound, 2, bytes.Repeat([]byte{mysql.MYSQL_TYPE_TINY, 0}, 2), nil,
			StmtExecute{StatementID: 7, BindTypes: true, Params: []Value{ab, five}}, nil},
		{"no parameters", execHead, 0, nil, nil, StmtExecute{StatementID: 7}, nil},
		{"cursor, NULL second parameter", cat(mysql.COM_STMT_EXECUTE, le32(7), byte(CursorFlags), le32(1), []byte{0x02, 1}, execTypes, execValues[:3]),
			2, nil, nil, StmtExecute{StatementID: 7, Flags: CursorFlags, BindTypes: true,
				Params: []Value{ab, {Type: mysql.MYSQL_TYPE_LONGLONG, Null: true}}}, nil},
		// NULL and long-data parameters need no types and have no value.
		{"all NULL, no types", cat(execHead, []byte{0x03, 0}), 2, nil, nil,
			StmtExecute{StatementID: 7, Params: []Value{{Null: true}, {Null: true}}}, nil},
		{"long data", cat(execHead, []byte{0x00, 1}, execTypes, execValues[3:]), 2, nil, []bool{true},
			StmtExecute{StatementID: 7, BindTypes: true, LongData: []bool{true}, Params: []Value{{Type: mysql.MYSQL_TYPE_VAR_STRING}, five}}, nil},
		{"unsigned", cat(execHead, []byte{0x00, 1, mysql.MYSQL_TYPE_TINY, 0x80, mysql.MYSQL_TYPE_SHORT, 0x80}, []byte{0xff, 0xff, 0xff}), 2, nil, nil,
			StmtExecute{StatementID: 7, BindTypes: true, Params: []Value{{Type: mysql.MYSQL_TYPE_TINY, Unsigned: true, Int: 255},
				{Type: mysql.MYSQL_TYPE_SHORT, Unsigned: true, Int: 0xffff}}}, nil},
		{"nine parameters", cat(execHead, []byte{0x00, 0x01, 1}, bytes.Repeat([]byte{mysql.MYSQL_TYPE_VAR_STRING, 0}, 9), bytes.Repeat([]byte{1, 'x'}, 8)), 9, nil, nil,
			StmtExecute{StatementID: 7, BindTypes: true, Params: append(bytes9(Value{Type: mysql.MYSQL_TYPE_VAR_STRING, Bytes: []byte("x")})[:8], nullStr)}, nil},
		{"not an execution", cat(mysql.COM_STMT_FETCH, le32(7), le32(1), byte(0)), 0, nil, nil, StmtExecute{}, ErrMalformed},
		{"cut value", execBound[:len(execBound)-1], 2, nil, nil, StmtExecute{}, ErrMalformed},
	} {
		got, err := ParseStmtExecute(tc.p, tc.numParams, tc.types, tc.longData)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("%s: err %v, want %v", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || got.StatementID != tc.want.StatementID || got.Flags != tc.want.Flags || got.BindTypes != tc.want.BindTypes ||
			!sameValues(got.Params, tc.want.Params) {
			t.Errorf("%s: %+v, %v\nwant %+v", tc.name, got, err, tc.want)
			continue
		}
		// Encoding what was decoded gives the packet back.
		if again := AppendStmtExecute(nil, got); !bytes.Equal(again, tc.p) {
			t.Errorf("%s: re-encoded as % x\nwant          % x", tc.name, again, tc.p)
		}
	}
	// A bulk execution's iteration count is not read; it is written as 1.
	bulk := bytes.Clone(execBound)
	bulk[6] = 3
	if got, err := ParseStmtExecute(bulk, 2, nil, nil); err != nil || !bytes.Equal(AppendStmtExecute(nil, got), execBound) {
		t.Fatalf("iteration count 3: %+v, %v", got, err)
	}
	// Every cut of an execution is refused, but for the end of its header
	// when it has no parameters.
	parse := func(p []byte) error { _, err := ParseStmtExecute(p, 2, nil, nil); return err }
	checkPrefixes(t, "ParseStmtExecute bound", []field{
		must(execHead[:1]), must(execHead[1:5]), must(execHead[5:6]), must(execHead[6:10]),
		must(byte(0)), must(byte(1)), must(execTypes), must(execValues[:3]), must(execValues[3:]),
	}, parse)
	checkPrefixes(t, "ParseStmtExecute unbound", []field{
		must(execHead[:1]), must(execHead[1:5]), must(execHead[5:6]), must(execHead[6:10]),
		must(byte(0)), must(byte(0)), must(execValues[:3]), must(execValues[3:]),
	}, func(p []byte) error { _, err := ParseStmtExecute(p, 2, execTypes, nil); return err })
	checkPrefixes(t, "ParseStmtExecute without parameters", []field{
		must(execHead[:1]), must(execHead[1:5]), must(execHead[5:6]), must(execHead[6:10]),
	}, func(p []byte) error { _, err := ParseStmtExecute(p, 0, nil, nil); return err })
}

func bytes9(v Value) []Value {
	vs := make([]Value, 9)
	for i := range vs {
		vs[i] = v
	}
	return vs
}

func TestStmtFetch(t *testing.T) {
	want := cat(mysql.COM_STMT_FETCH, le32(7), le32(100))
	if got := AppendStmtFetch(nil, StmtFetch{StatementID: 7, Rows: 100}); !bytes.Equal(got, want) {
		t.Fatalf("AppendStmtFetch = % x", got)
	}
	for _, f := range []StmtFetch{{}, {StatementID: 1<<32 - 1, Rows: 1<<32 - 1}, {StatementID: 3, Rows: 1}} {
		if got, err := ParseStmtFetch(AppendStmtFetch(nil, f)); err != nil || got != f {
			t.Errorf("ParseStmtFetch(AppendStmtFetch(%+v)) = %+v, %v", f, got, err)
		}
	}
	if _, err := ParseStmtFetch(cat(mysql.COM_STMT_EXECUTE, le32(7), le32(100))); err == nil {
		t.Fatal("an execution read as a fetch")
	}
	// Servers do not read past the row count.
	if got, err := ParseStmtFetch(cat(want, "xyz")); err != nil || got.Rows != 100 {
		t.Fatalf("with bytes after it: %+v, %v", got, err)
	}
	checkPrefixes(t, "ParseStmtFetch", []field{must(mysql.COM_STMT_FETCH), must(le32(7)), must(le32(100))}, func(p []byte) error {
		_, err := ParseStmtFetch(p)
		return err
	})
}

func TestStmtSendLongData(t *testing.T) {
	want := cat(mysql.COM_STMT_SEND_LONG_DATA, le32(7), le16(1), "a long value")
	d := StmtSendLongData{StatementID: 7, Param: 1, Data: []byte("a long value")}
	if got := AppendStmtSendLongData(nil, d); !bytes.Equal(got, want) {
		t.Fatalf("AppendStmtSendLongData = % x", got)
	}
	for _, d := range []StmtSendLongData{d, {StatementID: 1, Param: 0xffff}, {Data: bytes.Repeat([]byte{0}, 1000)}} {
		got, err := ParseStmtSendLongData(AppendStmtSendLongData(nil, d))
		if err != nil || got.StatementID != d.StatementID || got.Param != d.Param || !bytes.Equal(got.Data, d.Data) {
			t.Errorf("ParseStmtSendLongData(AppendStmtSendLongData(%+v)) = %+v, %v", d, got, err)
		}
	}
	if _, err := ParseStmtSendLongData(cat(mysql.COM_STMT_FETCH, le32(7), le32(100))); err == nil {
		t.Fatal("a fetch read as long data")
	}
	// The data may be empty; the header may not be cut.
	checkPrefixes(t, "ParseStmtSendLongData", []field{must(mysql.COM_STMT_SEND_LONG_DATA), must(le32(7)), endOK(le16(1)), cutOK("data")}, func(p []byte) error {
		_, err := ParseStmtSendLongData(p)
		return err
	})
	if got := AppendStmtReset(nil, 0x01020304); !bytes.Equal(got, []byte{mysql.COM_STMT_RESET, 4, 3, 2, 1}) {
		t.Fatalf("AppendStmtReset = % x", got)
	}
}
