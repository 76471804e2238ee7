package wire

import (
	"bytes"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

func TestOKRoundTrip(t *testing.T) {
	for _, ok := range []OK{
		{},
		{AffectedRows: 1, LastInsertID: 7, Status: autocommit, Warnings: 1},
		// Values that need each lenenc form.
		{AffectedRows: 300, LastInsertID: 70000, Status: autocommit | mysql.SERVER_MORE_RESULTS_EXISTS, Warnings: 2},
		{AffectedRows: 1 << 24, LastInsertID: 1<<64 - 1, Status: 0xffff, Warnings: 0xffff},
	} {
		p := AppendOK(nil, ok)
		got, err := ParseOK(p)
		if err != nil || got != ok {
			t.Errorf("ParseOK(AppendOK(%+v)) = %+v, %v", ok, got, err)
		}
		if p[0] != OKHeader {
			t.Errorf("header %#x", p[0])
		}
	}
}

func TestOKBytes(t *testing.T) {
	// The documentation's OK after a statement in autocommit mode, framed
	// as the second packet: 07 00 00 02 00 00 00 02 00 00 00.
	got, _ := AppendPacket(nil, AppendOK(nil, OK{Status: autocommit}), 2)
	if want := unhex(t, "07 00 00 02 00 00 00 02 00 00 00"); !bytes.Equal(got, want) {
		t.Fatalf("% x, want % x", got, want)
	}
	got = AppendOK(nil, OK{AffectedRows: 300, LastInsertID: 1, Status: 0x4002, Warnings: 3})
	if want := unhex(t, "00 fc 2c 01 01 02 40 03 00"); !bytes.Equal(got, want) {
		t.Fatalf("% x, want % x", got, want)
	}
}

func TestOKTruncated(t *testing.T) {
	parse := func(p []byte) error { _, err := ParseOK(p); return err }
	checkPrefixes(t, "OK", []field{
		must(byte(0)), must(0xfc, le16(300)), must(byte(1)), must(le16(autocommit)), must(le16(3)),
	}, parse)
	// The info and session state that may follow are not read.
	p := AppendOKWithState(nil, OK{AffectedRows: 1}, "Rows matched: 1", AppendSystemVariable(nil, "last_gtid", "0-1-5"))
	checkPrefixes(t, "OK with state", okWithStateFields(p), parse)
}

// okWithStateFields splits an OK packet with one-byte affected rows and
// insert id, info and session state into fields for checkPrefixes: the
// fixed part is mandatory; a cut in what follows is not seen by ParseOK.
func okWithStateFields(p []byte) []field {
	return []field{must(p[:1]), must(p[1:2]), must(p[2:3]), must(p[3:5]), endOK(p[5:7]), cutOK(p[7:])}
}

func TestOKWithStateAndLastGTID(t *testing.T) {
	// The session state as a MariaDB server sends it after a write: a
	// schema change first, then last_gtid among the system variables.
	sysvar := AppendSystemVariable(nil, "last_gtid", "0-1-123")
	// AppendSystemVariable byte for byte: type 0, the entry's length, then
	// name and value, each length-encoded.
	if want := cat(byte(0), byte(18), byte(9), "last_gtid", byte(7), "0-1-123"); !bytes.Equal(sysvar, want) {
		t.Fatalf("AppendSystemVariable = % x", sysvar)
	}
	schema := []byte{1, 5, 4, 's', 'h', 'o', 'p'}
	state := cat(schema, AppendSystemVariable(nil, "autocommit", "ON"), sysvar)
	ok := OK{AffectedRows: 1, Status: autocommit, Warnings: 0}
	p := AppendOKWithState(nil, ok, "", state)

	got, err := ParseOK(p)
	if err != nil || got.AffectedRows != 1 || got.Status != autocommit|mysql.SERVER_SESSION_STATE_CHANGED {
		t.Fatalf("ParseOK = %+v, %v", got, err)
	}
	if g, found := LastGTID(p); !found || g != "0-1-123" {
		t.Fatalf("LastGTID = %q, %v", g, found)
	}
	// The same with an info string in front, and as an OK ending rows.
	p2 := AppendOKWithState(nil, ok, "Rows matched: 1  Changed: 1  Warnings: 0", state)
	if g, found := LastGTID(p2); !found || g != "0-1-123" {
		t.Fatalf("LastGTID after info = %q, %v", g, found)
	}
	p3 := append([]byte{EOFHeader}, p[1:]...)
	if g, found := LastGTID(p3); !found || g != "0-1-123" {
		t.Fatalf("LastGTID of an OK with header 0xfe = %q, %v", g, found)
	}

	for _, tc := range []struct {
		name string
		p    []byte
	}{
		{"no session state", AppendOK(nil, OK{Status: autocommit})},
		{"flag without data", AppendOK(nil, OK{Status: mysql.SERVER_SESSION_STATE_CHANGED})},
		{"other variables only", AppendOKWithState(nil, ok, "", AppendSystemVariable(nil, "autocommit", "OFF"))},
		{"empty last_gtid", AppendOKWithState(nil, ok, "", AppendSystemVariable(nil, "last_gtid", ""))},
		{"last_gtid as another entry type", AppendOKWithState(nil, ok, "", cat(byte(4), sysvar[1:]))},
		{"state without the flag", cat(AppendOK(nil, ok), byte(0), AppendLenencString(nil, sysvar))},
		{"malformed OK", []byte{0, 0xfc}},
		{"entry longer than the state", AppendOKWithState(nil, ok, "", []byte{0, 40, 9})},
		{"name cut inside the entry", AppendOKWithState(nil, ok, "", []byte{0, 3, 9, 'l', 'a'})},
	} {
		if g, found := LastGTID(tc.p); found {
			t.Errorf("%s: LastGTID found %q", tc.name, g)
		}
	}
	// Every cut of the packet loses the GTID, and none panics.
	checkPrefixes(t, "LastGTID", []field{must(p)}, func(p []byte) error {
		if _, found := LastGTID(p); !found {
			return errNotAccepted
		}
		return nil
	})
}

func TestStripSessionTrack(t *testing.T) {
	status := autocommit | mysql.SERVER_SESSION_STATE_CHANGED
	info := "Rows matched: 1  Changed: 1  Warnings: 0"
	state := cat([]byte{0, 10, 9}, "last_gtid")
	// Built by hand, not with the encoders under test.
	p := cat([]byte{OKHeader, 1, 0, byte(status), byte(status >> 8), 0, 0},
		byte(len(info)), info, byte(len(state)), state)
	want := cat([]byte{OKHeader, 1, 0, byte(autocommit), 0, 0, 0}, byte(len(info)), info)
	for _, tc := range []struct {
		name   string
		in     []byte
		want   []byte
		reject bool
	}{
		{"info and state", p, want, false},
		{"no info, state", AppendOKWithState(nil, OK{AffectedRows: 1, Status: autocommit}, "", state),
			[]byte{OKHeader, 1, 0, byte(autocommit), 0, 0, 0}, false},
		// Nothing after the fixed part: only the flag changes.
		{"fixed part only", []byte{OKHeader, 0, 0, 2, 0x40, 0, 0}, []byte{OKHeader, 0, 0, 2, 0, 0, 0}, false},
		// An OK ending rows keeps its 0xfe header.
		{"header 0xfe", cat(byte(EOFHeader), p[1:]), cat(byte(EOFHeader), want[1:]), false},
		{"cut in the fixed part", []byte{OKHeader, 0xfc}, nil, true},
		{"info longer than the packet", []byte{OKHeader, 0, 0, 2, 0, 0, 0, 9, 'a'}, nil, true},
	} {
		got, err := StripSessionTrack(nil, tc.in)
		if tc.reject {
			if err == nil {
				t.Errorf("%s: accepted", tc.name)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("%s: got % x, %v\nwant % x", tc.name, got, err, tc.want)
			continue
		}
		// What comes out needs no more stripping and carries no GTID.
		again, err := StripSessionTrack(nil, got)
		if err != nil || !bytes.Equal(again, got) {
			t.Errorf("%s: not idempotent: % x, %v", tc.name, again, err)
		}
		if _, found := LastGTID(got); found {
			t.Errorf("%s: GTID survived", tc.name)
		}
	}
	// dst receives the new payload, whatever it held; p is untouched.
	buf := []byte("leftover bytes from the previous packet")
	orig := bytes.Clone(p)
	got, err := StripSessionTrack(buf[:0], p)
	if err != nil || !bytes.Equal(got, want) || !bytes.Equal(p, orig) {
		t.Fatalf("into a used buffer: % x, %v", got, err)
	}
	// The fixed part is mandatory, then the info length when there is any;
	// the session state is not read.
	fields := []field{must(p[:1]), must(p[1:2]), must(p[2:3]), must(p[3:5]), endOK(p[5:7]),
		endOK(p[7 : 8+len(info)]), cutOK(p[8+len(info):])}
	checkPrefixes(t, "StripSessionTrack", fields, func(p []byte) error {
		_, err := StripSessionTrack(nil, p)
		return err
	})
}

func TestErrRoundTrip(t *testing.T) {
	for _, e := range []mysql.MyError{
		{Code: 1146, State: "42S02", Message: "Table 'shop.x' doesn't exist"},
		{Code: 1064, State: "42000", Message: "You have an error in your SQL syntax; check the manual"},
		{Code: 1045, State: "28000", Message: "Access denied for user 'app'@'10.0.0.7' (using password: YES)"},
		{Code: 0xffff, State: "HY000", Message: ""},
		{Code: 1105, State: "HY000", Message: "#message that starts with a hash"},
	} {
		got := ParseErr(AppendErr(nil, &e))
		if *got != e {
			t.Errorf("ParseErr(AppendErr(%+v)) = %+v", e, *got)
		}
	}
	// An SQLSTATE that is not 5 characters is replaced, not sent broken.
	got := ParseErr(AppendErr(nil, &mysql.MyError{Code: 1, State: "bad", Message: "m"}))
	if got.State != mysql.DEFAULT_MYSQL_STATE || got.Message != "m" {
		t.Errorf("bad state: %+v", got)
	}
}

func TestErrBytes(t *testing.T) {
	// The ERR example of the protocol documentation.
	want := unhex(t, "17 00 00 01 ff 48 04 23 48 59 30 30 30 4e 6f 20 74 61 62 6c 65 73 20 75 73 65 64")
	got, _ := AppendPacket(nil, AppendErr(nil, &mysql.MyError{Code: 1096, State: "HY000", Message: "No tables used"}), 1)
	if !bytes.Equal(got, want) {
		t.Fatalf("% x\nwant % x", got, want)
	}
	if e := ParseErr(want[HeaderSize:]); e.Code != 1096 || e.State != "HY000" || e.Message != "No tables used" {
		t.Fatalf("ParseErr = %+v", e)
	}
}

func TestErrOddities(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    []byte
		want mysql.MyError
	}{
		// Before the 4.1 protocol (and in some handshake errors) there is
		// no SQLSTATE marker.
		{"no SQLSTATE", cat(byte(0xff), le16(1040), "Too many connections"),
			mysql.MyError{Code: 1040, State: "HY000", Message: "Too many connections"}},
		{"a hash but a short state", cat(byte(0xff), le16(1), "#42"),
			mysql.MyError{Code: 1, State: "HY000", Message: "#42"}},
		{"code only", cat(byte(0xff), le16(2013)), mysql.MyError{Code: 2013, State: "HY000"}},
		{"too short", []byte{0xff, 1}, mysql.MyError{Code: mysql.ER_UNKNOWN_ERROR, State: "HY000", Message: "malformed error packet"}},
		{"not an ERR", []byte{0, 0, 0}, mysql.MyError{Code: mysql.ER_UNKNOWN_ERROR, State: "HY000", Message: "malformed error packet"}},
	} {
		if got := ParseErr(tc.p); *got != tc.want {
			t.Errorf("%s: %+v", tc.name, *got)
		}
	}
	// ParseErr never fails: every cut keeps the code once it is whole.
	checkPrefixes(t, "ERR", []field{must(byte(0xff)), endOK(le16(1146)), tailOK("#42S02"), cutOK("gone")}, func(p []byte) error {
		if ParseErr(p).Code != 1146 {
			return errNotAccepted
		}
		return nil
	})
}

func TestErrorf(t *testing.T) {
	e := Errorf(1146, "Table '%s.%s' doesn't exist", "shop", "x")
	if e.Code != 1146 || e.State != "42S02" || e.Message != "Table 'shop.x' doesn't exist" {
		t.Fatalf("%+v", e)
	}
	// A code go-mysql does not know gets HY000.
	if e := Errorf(60000, "proxy says no"); e.State != "HY000" || e.Message != "proxy says no" {
		t.Fatalf("%+v", e)
	}
}

func TestEOF(t *testing.T) {
	// The classic EOF is exactly 5 bytes: fe, warnings, status.
	p := AppendEOF(nil, EOF{Status: autocommit})
	if want := unhex(t, "fe 00 00 02 00"); !bytes.Equal(p, want) {
		t.Fatalf("AppendEOF = % x", p)
	}
	framed, _ := AppendPacket(nil, p, 5)
	if want := unhex(t, "05 00 00 05 fe 00 00 02 00"); !bytes.Equal(framed, want) {
		t.Fatalf("framed % x", framed)
	}
	for _, e := range []EOF{{}, {Warnings: 3, Status: autocommit | mysql.SERVER_MORE_RESULTS_EXISTS}, {Warnings: 0xffff, Status: 0xffff}} {
		p := AppendEOF(nil, e)
		got, err := ParseEOF(p)
		if err != nil || got != e || !IsClassicEOF(p) || !IsEOFPacket(p, len(p)) {
			t.Errorf("ParseEOF(AppendEOF(%+v)) = %+v, %v", e, got, err)
		}
		if st, err := EOFStatus(p); err != nil || st != e.Status {
			t.Errorf("EOFStatus(% x) = %#x, %v", p, st, err)
		}
		// What a CLIENT_DEPRECATE_EOF client gets instead: an OK with
		// header 0xfe, the same status and warnings.
		q := AppendEOFAsOK(nil, e)
		ok, err := ParseOK(q)
		if err != nil || q[0] != EOFHeader || ok.Status != e.Status || ok.Warnings != e.Warnings || IsClassicEOF(q) || !IsEOFPacket(q, len(q)) {
			t.Errorf("AppendEOFAsOK(%+v) = % x: %+v, %v", e, q, ok, err)
		}
		if st, err := EOFStatus(q); err != nil || st != e.Status {
			t.Errorf("EOFStatus(% x) = %#x, %v", q, st, err)
		}
		if _, err := ParseEOF(q); err == nil {
			t.Errorf("ParseEOF took an OK for a classic EOF")
		}
	}
	if q := AppendEOFAsOK(nil, EOF{Status: autocommit}); !bytes.Equal(q, unhex(t, "fe 00 00 02 00 00 00")) {
		t.Fatalf("AppendEOFAsOK = % x", q)
	}
	for _, bad := range [][]byte{nil, {0xfe}, {0xfe, 0, 0, 2}, {0xfe, 0, 0, 2, 0, 0}, {0x00, 0, 0, 2, 0}} {
		if _, err := ParseEOF(bad); err == nil {
			t.Errorf("ParseEOF(% x) accepted", bad)
		}
	}
	for _, bad := range [][]byte{nil, {0xfe}, {0xfe, 0, 0, 2}, {0xfe, 0, 0, 2, 0, 0}, {0xfe, 0xfc, 0, 0, 0, 0, 0}} {
		if _, err := EOFStatus(bad); err == nil {
			t.Errorf("EOFStatus(% x) accepted", bad)
		}
	}
}

func TestEOFTruncated(t *testing.T) {
	checkPrefixes(t, "EOF", []field{must(AppendEOF(nil, EOF{Warnings: 1, Status: autocommit}))}, func(p []byte) error {
		_, err := ParseEOF(p)
		return err
	})
	status := func(p []byte) error { _, err := EOFStatus(p); return err }
	checkPrefixes(t, "EOF status", []field{must(AppendEOF(nil, EOF{Status: autocommit}))}, status)
	// An OK with header 0xfe cut after its status is, byte for byte, a
	// classic EOF: the only cut that can be accepted.
	checkPrefixes(t, "EOF as OK", []field{
		must(byte(0xfe)), must(byte(0)), must(byte(0)), endOK(le16(autocommit)), must(le16(0)),
	}, status)
}

func TestIsEOFPacket(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    []byte
		n    int
		want bool
	}{
		{"classic EOF", []byte{0xfe, 0, 0, 2, 0}, 5, true},
		{"OK with header 0xfe", []byte{0xfe, 0, 0, 2, 0, 0, 0}, 7, true},
		// A row starting with 0xfe (a value of 2^24 bytes or more) always
		// fills a whole physical packet.
		{"full-size row starting with 0xfe", []byte{0xfe}, MaxPayload, false},
		{"a row", []byte{0x03, 'd', 'e', 'f'}, 4, false},
		{"OK", []byte{0, 0, 0, 2, 0, 0, 0}, 7, false},
		{"empty", nil, 0, false},
	} {
		if got := IsEOFPacket(tc.p, tc.n); got != tc.want {
			t.Errorf("%s: IsEOFPacket = %v", tc.name, got)
		}
	}
}

func TestSchemaChange(t *testing.T) {
	// Byte for byte: type 1, the entry's length, then the schema,
	// length-encoded.
	entry := AppendSchemaChange(nil, "shop")
	if want := []byte{1, 5, 4, 's', 'h', 'o', 'p'}; !bytes.Equal(entry, want) {
		t.Fatalf("AppendSchemaChange = % x", entry)
	}
	ok := OK{Status: autocommit}
	for _, tc := range []struct {
		name, info string
		state      []byte
		want       string
	}{
		{"alone", "", entry, "shop"},
		{"after a system variable", "", cat(AppendSystemVariable(nil, "autocommit", "ON"), entry), "shop"},
		{"before last_gtid, with info", "Rows matched: 1", cat(entry, AppendSystemVariable(nil, "last_gtid", "0-1-1")), "shop"},
		{"empty: no schema selected", "", AppendSchemaChange(nil, ""), ""},
	} {
		p := AppendOKWithState(nil, ok, tc.info, tc.state)
		if got, found := SchemaChange(p); !found || got != tc.want {
			t.Errorf("%s: SchemaChange = %q, %v", tc.name, got, found)
		}
	}
	for _, tc := range []struct {
		name string
		p    []byte
	}{
		{"no session state", AppendOK(nil, ok)},
		{"variables only", AppendOKWithState(nil, ok, "", AppendSystemVariable(nil, "autocommit", "ON"))},
		{"state without the flag", cat(AppendOK(nil, ok), byte(0), AppendLenencString(nil, entry))},
		{"schema cut inside the entry", AppendOKWithState(nil, ok, "", []byte{1, 3, 4, 's', 'h'})},
		{"entry longer than the state", AppendOKWithState(nil, ok, "", []byte{1, 9, 4, 's'})},
	} {
		if got, found := SchemaChange(tc.p); found {
			t.Errorf("%s: SchemaChange found %q", tc.name, got)
		}
	}
	p := AppendOKWithState(nil, ok, "", entry)
	checkPrefixes(t, "SchemaChange", []field{must(p)}, func(p []byte) error {
		if _, found := SchemaChange(p); !found {
			return errNotAccepted
		}
		return nil
	})
}

func TestOKInfo(t *testing.T) {
	const info = "Rows matched: 1  Changed: 1  Warnings: 0"
	ok := OK{AffectedRows: 1, Status: autocommit}
	p := AppendOKWithInfo(nil, ok, info)
	if want := cat(AppendOK(nil, ok), byte(len(info)), info); !bytes.Equal(p, want) {
		t.Fatalf("AppendOKWithInfo = % x", p)
	}
	for _, tc := range []struct {
		name string
		p    []byte
		want string
	}{
		{"info", p, info},
		{"no info", AppendOK(nil, ok), ""},
		{"empty info", AppendOKWithInfo(nil, ok, ""), ""},
		{"info and session state", AppendOKWithState(nil, ok, info, AppendSchemaChange(nil, "shop")), info},
		{"as EOF", cat(EOFHeader, p[1:]), info},
	} {
		got, err := OKInfo(tc.p)
		if err != nil || got != tc.want {
			t.Errorf("%s: OKInfo = %q, %v", tc.name, got, err)
		}
		if o, err := ParseOK(tc.p); err != nil || o.AffectedRows != ok.AffectedRows || o.Status&^mysql.SERVER_SESSION_STATE_CHANGED != ok.Status {
			t.Errorf("%s: ParseOK = %+v, %v", tc.name, o, err)
		}
	}
	// A cut inside the fixed part or the info is malformed; the packet may
	// end before the info.
	checkPrefixes(t, "OKInfo", []field{must(p[:1]), must(p[1:2]), must(p[2:3]), must(p[3:5]), endOK(p[5:7]), must(p[7:])},
		func(p []byte) error { _, err := OKInfo(p); return err })
}
