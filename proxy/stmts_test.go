package proxy

import (
	"bytes"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

func TestRewriteExecute(t *testing.T) {
	// Client statement 7, 2 parameters, types bound, values "ab" and 5.
	types := []byte{mysql.MYSQL_TYPE_VAR_STRING, 0, mysql.MYSQL_TYPE_LONGLONG, 0}
	values := []byte{2, 'a', 'b', 5, 0, 0, 0, 0, 0, 0, 0}
	head := []byte{7, 0, 0, 0, 0, 1, 0, 0, 0}
	bound := append(append(append(append([]byte{}, head...), 0x00, 1), types...), values...)
	unbound := append(append(append([]byte{}, head...), 0x00, 0), values...)

	got, err := rewriteExecute(nil, bound, 42, 2, types)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte{0, 0, 0, 0, mysql.COM_STMT_EXECUTE, 42, 0, 0, 0, 0, 1, 0, 0, 0, 0x00, 1}, append(append([]byte{}, types...), values...)...)
	if !bytes.Equal(got, want) {
		t.Fatalf("bound:\n got %x\nwant %x", got, want)
	}
	// Without bound types the saved ones are put in: the server connection
	// may never have seen them.
	got, err = rewriteExecute(nil, unbound, 42, 2, types)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("unbound: %x, %v\nwant %x", got, err, want)
	}
	if _, err := rewriteExecute(nil, unbound, 42, 2, nil); err == nil {
		t.Fatal("no types ever bound: want an error")
	}
	if bt, err := boundTypes(bound, 2); err != nil || !bytes.Equal(bt, types) {
		t.Fatalf("boundTypes = %x, %v", bt, err)
	}
	if bt, err := boundTypes(unbound, 2); err != nil || bt != nil {
		t.Fatalf("boundTypes(unbound) = %x, %v", bt, err)
	}
	// No parameters: only the id changes.
	got, err = rewriteExecute(nil, head, 9, 0, nil)
	if err != nil || !bytes.Equal(got, []byte{0, 0, 0, 0, mysql.COM_STMT_EXECUTE, 9, 0, 0, 0, 0, 1, 0, 0, 0}) {
		t.Fatalf("no params: %x %v", got, err)
	}
}

// FuzzRewriteExecute feeds client COM_STMT_EXECUTE payloads to the rewrite:
// it may refuse them but never panic, and a rewrite keeps the values.
func FuzzRewriteExecute(f *testing.F) {
	f.Add([]byte{7, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 253, 0, 8, 0, 2, 'a', 'b'}, uint8(2))
	f.Add([]byte{7, 0, 0, 0, 0, 1, 0, 0, 0}, uint8(0))
	f.Fuzz(func(t *testing.T, p []byte, n uint8) {
		types, err := boundTypes(p, int(n))
		if err != nil {
			return
		}
		if types == nil && n > 0 {
			types = make([]byte, 2*int(n))
		}
		out, err := rewriteExecute(nil, p, 1, int(n), types)
		if err == nil && len(out) < 4+1+stmtExecuteHeader {
			t.Fatalf("rewrite too short: %x", out)
		}
	})
}
