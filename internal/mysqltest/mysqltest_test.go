package mysqltest

import (
	"bytes"
	"crypto/tls"
	"encoding/hex"
	"net"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/wire"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPackets: the commands come out as the tests built them by hand
// before wire had builders for them.
func TestPackets(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  []byte
		want string
	}{
		{"execute, bound", ExecutePacket(7, 0, true, int64(-2), "ab", nil),
			"17 07000000 00 01000000 04 01 0800 fd00 0600 feffffffffffffff 02 6162"},
		{"execute, unbound", ExecutePacket(7, 1, false, "x", "y"), "17 07000000 01 01000000 00 00 01 78 01 79"},
		{"execute, no parameters", ExecutePacket(7, 0, true), "17 07000000 00 01000000"},
		{"fetch", FetchPacket(7, 100), "1c 07000000 64000000"},
		{"long data", LongDataPacket(7, 1, "chunk"), "18 07000000 0100 6368756e6b"},
	} {
		if want := unhex(t, tc.want); !bytes.Equal(tc.got, want) {
			t.Errorf("%s: % x\nwant % x", tc.name, tc.got, want)
		}
	}
}

func TestRows(t *testing.T) {
	str := wire.Value{Type: mysql.MYSQL_TYPE_VAR_STRING, Bytes: []byte("a")}
	null := wire.Value{Type: mysql.MYSQL_TYPE_VAR_STRING, Null: true}
	if got := BinaryRow(t, wire.AppendBinaryRow(nil, []wire.Value{str, null}), 2); strings.Join(got, ",") != "a,NULL" {
		t.Fatalf("BinaryRow = %q", got)
	}
	col := wire.Column{Name: "n", Type: mysql.MYSQL_TYPE_LONG}
	resp := []Packet{
		{wire.KindColumnCount, wire.AppendColumnCount(nil, 1)},
		{wire.KindColumnDef, wire.AppendColumnDef(nil, &col)},
		{wire.KindRow, wire.AppendBinaryRow(nil, []wire.Value{{Type: mysql.MYSQL_TYPE_LONG, Int: -3}})},
		{wire.KindEOF, wire.AppendEOF(nil, wire.EOF{Status: mysql.SERVER_STATUS_AUTOCOMMIT})},
	}
	if got := BinaryRows(t, resp); len(got) != 1 || got[0][0] != "-3" {
		t.Fatalf("BinaryRows = %q", got)
	}
	if st := EndStatus(t, resp); st != mysql.SERVER_STATUS_AUTOCOMMIT {
		t.Fatalf("EndStatus = %#x", st)
	}
	text := []Packet{{wire.KindRow, wire.AppendTextRow(nil, nil)}, {wire.KindOK, wire.AppendOK(nil, wire.OK{Status: 2})}}
	if got := TextRows(t, text); len(got) != 1 || len(got[0]) != 0 {
		t.Fatalf("TextRows = %q", got)
	}
	if st := Status(t, text[1].Payload); st != 2 {
		t.Fatalf("Status of an OK = %#x", st)
	}
	e := ErrPacket(t, [][]byte{{1}, wire.AppendErr(nil, mysql.NewError(mysql.ER_PARSE_ERROR, "x"))})
	if e.Code != mysql.ER_PARSE_ERROR {
		t.Fatalf("ErrPacket = %v", e)
	}
}

// TestCertificate: the two ends' configurations complete a handshake, and
// each call has configurations of its own.
func TestCertificate(t *testing.T) {
	c := Certificate()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	done := make(chan error, 1)
	go func() { done <- tls.Server(a, c.Server).Handshake() }()
	if err := tls.Client(b, c.Client).Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c.Client.ServerName = "changed"
	if again := Certificate(); again.Client.ServerName != "127.0.0.1" || again.Key != c.Key {
		t.Fatalf("a second Certificate: %q", again.Client.ServerName)
	}
}

func TestNames(t *testing.T) {
	if CommandName(mysql.COM_RESET_CONNECTION) != "RESET_CONNECTION" || CommandName(0x7f) != "CMD_0x7f" {
		t.Fatal(CommandName(mysql.COM_RESET_CONNECTION), CommandName(0x7f))
	}
	if code, state, msg := ServerError(mysql.NewError(mysql.ER_PARSE_ERROR, "x")); code != mysql.ER_PARSE_ERROR || state != "42000" || msg != "x" {
		t.Fatal(code, state, msg)
	}
	if code, _, _ := ServerError(net.ErrClosed); code != 0 {
		t.Fatal(code)
	}
}
