package wire

import (
	"bytes"
	"strings"
	"testing"
)

func TestLenencBytes(t *testing.T) {
	// The encodings the protocol documents: one byte below 251, then 0xfc
	// with 2 bytes, 0xfd with 3, 0xfe with 8, all little-endian. Checked
	// byte for byte so that an encoder and decoder wrong in the same way
	// cannot pass the round trip below.
	for _, tc := range []struct {
		v    uint64
		want string
	}{
		{0, "00"},
		{250, "fa"},
		{251, "fc fb 00"},
		{0xffff, "fc ff ff"},
		{0x10000, "fd 00 00 01"},
		{0xffffff, "fd ff ff ff"},
		{0x1000000, "fe 00 00 00 01 00 00 00 00"},
		{1<<64 - 1, "fe ff ff ff ff ff ff ff ff"},
	} {
		got := AppendLenenc(nil, tc.v)
		if want := unhex(t, tc.want); !bytes.Equal(got, want) {
			t.Errorf("AppendLenenc(%d) = % x, want % x", tc.v, got, want)
		}
		v, n, err := Lenenc(got)
		if err != nil || v != tc.v || n != len(got) {
			t.Errorf("Lenenc(% x) = %d, %d, %v", got, v, n, err)
		}
	}
}

func TestLenencRoundTrip(t *testing.T) {
	for _, v := range []uint64{0, 1, 250, 251, 252, 0xffff, 0x10000, 0xffffff, 0x1000000, 1<<32 + 5, 1<<64 - 1} {
		b := AppendLenenc([]byte{0x42}, v)
		got, n, err := Lenenc(b[1:])
		if err != nil || got != v || n != len(b)-1 || b[0] != 0x42 {
			t.Errorf("Lenenc(AppendLenenc(%d)) = %d, %d, %v; encoded % x", v, got, n, err, b)
		}
	}
}

func TestLenencMalformed(t *testing.T) {
	for _, bad := range [][]byte{
		nil,
		{0xfc}, {0xfc, 1},
		{0xfd}, {0xfd, 1, 2},
		{0xfe}, {0xfe, 1, 2, 3}, {0xfe, 1, 2, 3, 4, 5, 6, 7},
		{0xff}, // the first byte of an ERR packet, never an integer
	} {
		if _, _, err := Lenenc(bad); err != ErrMalformed {
			t.Errorf("Lenenc(% x) accepted a truncated or invalid prefix: %v", bad, err)
		}
	}
	// 0xfb is NULL in a row; as an integer it reads as 0, one byte.
	if v, n, err := Lenenc([]byte{0xfb, 9}); err != nil || v != 0 || n != 1 {
		t.Errorf("Lenenc(fb) = %d, %d, %v", v, n, err)
	}
}

func TestLenencString(t *testing.T) {
	long := strings.Repeat("x", 300) // needs the 0xfc prefix
	for _, s := range []string{"", "def", long} {
		b := AppendLenencString([]byte("head"), s)
		b = append(b, "tail"...)
		got, n, err := LenencString(b[4:])
		if err != nil || string(got) != s || n != len(b)-8 {
			t.Errorf("LenencString(%d bytes) = %d bytes, %d, %v", len(s), len(got), n, err)
		}
		// The result aliases the packet but cannot grow into what follows.
		if len(got) > 0 {
			_ = append(got, '!')
			if string(b[len(b)-4:]) != "tail" {
				t.Fatalf("appending to the decoded string overwrote the packet")
			}
		}
	}
	if got := AppendLenencString(nil, []byte{1, 2}); !bytes.Equal(got, []byte{2, 1, 2}) {
		t.Errorf("AppendLenencString([]byte) = % x", got)
	}
	for _, bad := range [][]byte{
		nil,
		{3, 'd', 'e'},           // one byte short
		{0xfc, 0x2c, 0x01, 'x'}, // says 300 bytes
		{0xfc, 0x2c},            // the length itself cut
		{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, // 2^64-1 bytes: no overflow
	} {
		if _, _, err := LenencString(bad); err != ErrMalformed {
			t.Errorf("LenencString(% x) = %v", bad, err)
		}
	}
}

func TestNulString(t *testing.T) {
	for _, tc := range []struct {
		in       string
		tolerant bool
		s, rest  string
		ok       bool
	}{
		{"root\x00more", false, "root", "more", true},
		{"\x00", false, "", "", true},
		{"root", false, "", "", false},
		// Some clients omit the last NUL: the rest is the string.
		{"root", true, "root", "", true},
		{"", true, "", "", true},
	} {
		s, rest, err := nulString([]byte(tc.in), tc.tolerant)
		if (err == nil) != tc.ok || string(s) != tc.s || string(rest) != tc.rest {
			t.Errorf("nulString(%q, %v) = %q, %q, %v", tc.in, tc.tolerant, s, rest, err)
		}
	}
}

func TestReaderStopsAtFirstFailure(t *testing.T) {
	// A parser checks the error once at the end, so every read after a
	// failure must be harmless and return zero values.
	r := reader{b: []byte{1, 2, 3}}
	if r.u32() != 0 || r.err == nil {
		t.Fatal("u32 on 3 bytes succeeded")
	}
	if r.u8() != 0 || r.u16() != 0 || r.lenenc() != 0 || r.lenencString() != nil ||
		r.nulString(true) != nil || r.bytes(0) != nil || r.bytes(-1) != nil || !r.empty() {
		t.Fatal("a read after a failure returned data")
	}
	r = reader{b: []byte{0xfc, 1}}
	if r.lenenc(); r.err == nil {
		t.Fatal("cut lenenc accepted")
	}
	r = reader{b: []byte{5, 'a'}}
	if r.lenencString(); r.err == nil {
		t.Fatal("cut lenenc string accepted")
	}
	r = reader{b: []byte("abc")}
	if r.nulString(false); r.err == nil {
		t.Fatal("unterminated string accepted")
	}
	r = reader{b: []byte("abc")}
	if got := r.rest(); string(got) != "abc" || !r.empty() {
		t.Fatalf("rest = %q", got)
	}
}
