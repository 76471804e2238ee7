package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

func TestLenencRoundTrip(t *testing.T) {
	for _, v := range []uint64{0, 1, 250, 251, 0xffff, 0x10000, 0xffffff, 0x1000000, 1<<64 - 1} {
		b := AppendLenenc(nil, v)
		got, n, err := Lenenc(b)
		if err != nil || got != v || n != len(b) {
			t.Errorf("Lenenc(AppendLenenc(%d)) = %d, %d, %v; encoded %x", v, got, n, err, b)
		}
	}
	for _, bad := range [][]byte{nil, {0xfc, 1}, {0xfd, 1, 2}, {0xfe, 1, 2, 3}, {0xff}} {
		if _, _, err := Lenenc(bad); err == nil {
			t.Errorf("Lenenc(%x) accepted a truncated or invalid prefix", bad)
		}
	}
}

func TestReadPacketJoinsContinuations(t *testing.T) {
	payload := bytes.Repeat([]byte{7}, MaxPayload+10)
	framed, next := AppendPacket(nil, payload, 3)
	if next != 5 {
		t.Fatalf("next sequence id = %d, want 5", next)
	}
	got, seq, err := ReadPacket(bufio.NewReader(bytes.NewReader(framed)), nil, 1<<30)
	if err != nil || seq != 4 || !bytes.Equal(got, payload) {
		t.Fatalf("ReadPacket: len %d seq %d err %v", len(got), seq, err)
	}
	// A payload of exactly MaxPayload needs an empty continuation packet.
	framed, _ = AppendPacket(nil, payload[:MaxPayload], 0)
	if len(framed) != 2*HeaderSize+MaxPayload {
		t.Fatalf("exact-size payload framed as %d bytes", len(framed))
	}
}

func TestReadPacketLimit(t *testing.T) {
	framed, _ := AppendPacket(nil, make([]byte, 100), 0)
	_, _, err := ReadPacket(bufio.NewReader(bytes.NewReader(framed)), nil, 99)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	_, _, err = ReadPacket(bufio.NewReader(bytes.NewReader(framed[:50])), nil, 1000)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated packet: err = %v, want ErrUnexpectedEOF", err)
	}
}

func TestOKAndErrRoundTrip(t *testing.T) {
	p := AppendOK(nil, 300, 70000, mysql.SERVER_STATUS_AUTOCOMMIT|mysql.SERVER_MORE_RESULTS_EXISTS, 2)
	ok, err := ParseOK(p)
	if err != nil || ok.AffectedRows != 300 || ok.LastInsertID != 70000 || ok.Warnings != 2 ||
		ok.Status != mysql.SERVER_STATUS_AUTOCOMMIT|mysql.SERVER_MORE_RESULTS_EXISTS {
		t.Fatalf("ParseOK = %+v, %v", ok, err)
	}
	e := &mysql.MyError{Code: 1146, State: "42S02", Message: "Table 'shop.x' doesn't exist"}
	got := ParseErr(AppendErr(nil, e))
	if *got != *e {
		t.Fatalf("ParseErr(AppendErr(e)) = %+v, want %+v", got, e)
	}
	if st, err := EOFStatus([]byte{0xfe, 0, 0, 0x22, 0}); err != nil || st != 0x22 {
		t.Fatalf("EOFStatus = %x, %v", st, err)
	}
}

func TestIsEOFPacket(t *testing.T) {
	if !IsEOFPacket([]byte{0xfe, 0, 0, 2, 0}, 5) {
		t.Error("5-byte EOF not recognised")
	}
	if IsEOFPacket([]byte{0xfe}, MaxPayload) {
		t.Error("a full-size row starting with 0xfe taken for EOF")
	}
	if IsEOFPacket([]byte{0x03, 'd', 'e', 'f'}, 4) {
		t.Error("a row taken for EOF")
	}
}

// FuzzDecoders feeds server- or client-supplied bytes to every decoder here:
// none may panic, whatever the input.
func FuzzDecoders(f *testing.F) {
	f.Add(AppendOK(nil, 1, 2, 3, 4))
	f.Add(AppendErr(nil, &mysql.MyError{Code: 1064, State: "42000", Message: "syntax"}))
	f.Add([]byte{0xfe, 0, 0, 2, 0})
	f.Add([]byte{0x05, 0, 0, 0, 1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseOK(b)
		_ = ParseErr(b)
		_, _ = EOFStatus(b)
		_, _, _ = Lenenc(b)
		_, _, _ = LenencString(b)
		_ = IsEOFPacket(b, len(b))
		_, _ = StripSessionTrack(nil, b)
		_, _ = LastGTID(b)
		_ = GTIDCovers(string(b), string(b))
		_, _, _ = ReadPacket(bufio.NewReader(bytes.NewReader(b)), nil, 1<<20)
	})
}

func TestStripSessionTrack(t *testing.T) {
	// OK with session tracking: affected 1, insert id 0, status with
	// SESSION_STATE_CHANGED, 0 warnings, info "Rows matched: 1", then state.
	status := mysql.SERVER_STATUS_AUTOCOMMIT | mysql.SERVER_SESSION_STATE_CHANGED
	info := "Rows matched: 1  Changed: 1  Warnings: 0"
	p := []byte{OKHeader, 1, 0, byte(status), byte(status >> 8), 0, 0}
	p = AppendLenenc(p, uint64(len(info)))
	p = append(p, info...)
	state := []byte{0, 10, 9, 'l', 'a', 's', 't', '_', 'g', 't', 'i', 'd'}
	p = AppendLenenc(p, uint64(len(state)))
	p = append(p, state...)
	out, err := StripSessionTrack(nil, p)
	if err != nil {
		t.Fatal(err)
	}
	want := append(AppendLenenc([]byte{OKHeader, 1, 0, byte(mysql.SERVER_STATUS_AUTOCOMMIT), 0, 0, 0}, uint64(len(info))), info...)
	if !bytes.Equal(out, want) {
		t.Fatalf("got %q\nwant %q", out, want)
	}
	// No info at all: unchanged but for the flag.
	short := []byte{OKHeader, 0, 0, 2, 0, 0, 0}
	if out, err := StripSessionTrack(nil, short); err != nil || !bytes.Equal(out, short) {
		t.Fatalf("short OK: %x %v", out, err)
	}
	if _, err := StripSessionTrack(nil, []byte{OKHeader, 0xfc}); err == nil {
		t.Fatal("truncated OK accepted")
	}
}

func TestLastGTIDAndCoverage(t *testing.T) {
	status := mysql.SERVER_STATUS_AUTOCOMMIT | mysql.SERVER_SESSION_STATE_CHANGED
	sysvar := AppendLenenc(nil, 9)
	sysvar = append(sysvar, "last_gtid"...)
	sysvar = AppendLenenc(sysvar, 7)
	sysvar = append(sysvar, "0-1-123"...)
	entry := append([]byte{0}, AppendLenenc(nil, uint64(len(sysvar)))...)
	entry = append(entry, sysvar...)
	schema := []byte{1, 5, 4, 's', 'h', 'o', 'p'} // a schema change entry first
	state := append(schema, entry...)
	p := []byte{OKHeader, 1, 0, byte(status), byte(status >> 8), 0, 0, 0}
	p = AppendLenenc(p, uint64(len(state)))
	p = append(p, state...)
	if g, ok := LastGTID(p); !ok || g != "0-1-123" {
		t.Fatalf("LastGTID = %q, %v", g, ok)
	}
	if _, ok := LastGTID(AppendOK(nil, 0, 0, 2, 0)); ok {
		t.Fatal("GTID found in an OK without session state")
	}
	for _, tc := range []struct {
		pos, gtid string
		want      bool
	}{
		{"0-1-123", "0-1-123", true},
		{"0-2-200", "0-1-123", true},
		{"0-1-122", "0-1-123", false},
		{"1-1-500,0-1-130", "0-1-123", true},
		{"1-1-500", "0-1-123", false},
		{"", "0-1-1", false},
		{"0-1-5", "garbage", false},
	} {
		if got := GTIDCovers(tc.pos, tc.gtid); got != tc.want {
			t.Errorf("GTIDCovers(%q, %q) = %v", tc.pos, tc.gtid, got)
		}
	}
}
