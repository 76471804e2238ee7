package wire

import (
	"fmt"
	"testing"
)

// The hashes are MariaDB 10.11's OLD_PASSWORD() of the same passwords;
// the answers are ones MariaDB 10.11 accepted for those scrambles (logins
// as accounts with these hashes, secure_auth OFF).
func TestOldPassword(t *testing.T) {
	for _, tc := range []struct{ password, hash string }{
		{"oldpw", "09301740536db389"},
		{"test", "378b243e220ca493"},
		{"a b\tc", "7cd2b5942be28759"}, // spaces and tabs do not count
		{"abc", "7cd2b5942be28759"},
		{"\xe9\xff\x80", "5da7b0ce02926336"}, // bytes, not characters
	} {
		h := HashOldPassword([]byte(tc.password))
		if got := fmt.Sprintf("%08x%08x", h[0], h[1]); got != tc.hash {
			t.Errorf("HashOldPassword(%q) = %s, want %s", tc.password, got, tc.hash)
		}
		parsed, ok := ParseOldPasswordHash(tc.hash)
		if !ok || parsed != h {
			t.Errorf("ParseOldPasswordHash(%s) = %x, %v; want %x", tc.hash, parsed, ok, h)
		}
	}
	for _, bad := range []string{"", "09301740536db38", "09301740536db3890", "0930174053gdb389", "*09301740536db38"} {
		if _, ok := ParseOldPasswordHash(bad); ok {
			t.Errorf("ParseOldPasswordHash(%q) accepted", bad)
		}
	}
	if h, ok := ParseOldPasswordHash("09301740536DB389"); !ok || h != HashOldPassword([]byte("oldpw")) {
		t.Error("upper-case hash not read")
	}

	for _, tc := range []struct{ password, scramble, answer string }{
		{"test", "-M|MH`+UIN/=%AUi0R/1", "EQNU]OKN"},
		{"test", "p}H/N}LA@\\1{>_DuD1h9", "EF[XB^FI"},
		{"oldpw", "[W!<KEU_\\.qq`o.3U6IM", "EYQLNSSG"},
		{"oldpw", "`cQKd5{.qmQ+%t;gxE/[", "]AHNQDFV"},
	} {
		h := HashOldPassword([]byte(tc.password))
		if got := string(ScrambleOldPassword([]byte(tc.scramble), h)); got != tc.answer {
			t.Errorf("ScrambleOldPassword(%q, %q) = %q, want %q", tc.scramble, tc.password, got, tc.answer)
		}
		for _, answer := range []string{tc.answer, tc.answer + "\x00"} {
			if !CheckOldPassword([]byte(answer), []byte(tc.scramble), h) {
				t.Errorf("CheckOldPassword(%q) refused", answer)
			}
		}
		// Only the scramble's first 8 bytes count.
		if !CheckOldPassword([]byte(tc.answer), []byte(tc.scramble[:8]), h) {
			t.Errorf("%q: an 8-byte scramble gives another answer", tc.scramble)
		}
		other := HashOldPassword([]byte(tc.password + "x"))
		for _, answer := range []string{"", tc.answer[:7], tc.answer + "x", tc.answer + "\x00\x00"} {
			if CheckOldPassword([]byte(answer), []byte(tc.scramble), h) {
				t.Errorf("CheckOldPassword(%q) accepted", answer)
			}
		}
		if CheckOldPassword([]byte(tc.answer), []byte(tc.scramble), other) {
			t.Errorf("%q: accepted for another password", tc.answer)
		}
	}
	if ScrambleOldPassword([]byte("1234567"), OldPasswordHash{}) != nil || CheckOldPassword(nil, nil, OldPasswordHash{}) {
		t.Error("a scramble shorter than 8 bytes gave an answer")
	}
}
