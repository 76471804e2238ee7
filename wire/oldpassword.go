package wire

import (
	"crypto/subtle"
	"encoding/hex"
	"math"
)

// mysql_old_password, the authentication of MySQL before 4.1 that MariaDB
// still accepts for legacy accounts while @@secure_auth is OFF. The stored
// hash is 16 hex digits: two 31-bit words computed from the password. The
// client's answer to a scramble is 8 bytes (sent NUL-terminated after an
// auth switch) derived from the hash and the scramble's first 8 bytes, so
// whoever holds the hash can both check an answer and compute one: the
// proxy needs nothing else to let such a client in and to log in to the
// servers as it. The scheme is weak (62 bits, no salt); it is here only
// because the servers still take it for these accounts.

// OldPasswordHash is a mysql_old_password hash: the two words the stored
// hex form spells out.
type OldPasswordHash [2]uint32

// OldPasswordScrambleLen is the length of a mysql_old_password answer.
const OldPasswordScrambleLen = 8

// HashOldPassword computes the mysql_old_password hash of password, as
// MySQL's OLD_PASSWORD() does (spaces and tabs are skipped).
func HashOldPassword(password []byte) OldPasswordHash {
	nr, add, nr2 := uint32(1345345333), uint32(7), uint32(0x12345671)
	for _, c := range password {
		if c == ' ' || c == '\t' {
			continue
		}
		t := uint32(c)
		// The server computes this in unsigned long; only the low 31 bits
		// are kept, and they come out the same in 32 bits.
		nr ^= ((nr&63)+add)*t + nr<<8
		nr2 += nr2<<8 ^ nr
		add += t
	}
	return OldPasswordHash{nr & 0x7fffffff, nr2 & 0x7fffffff}
}

// ParseOldPasswordHash decodes the stored form: 16 hex digits.
func ParseOldPasswordHash(s string) (OldPasswordHash, bool) {
	if len(s) != 16 {
		return OldPasswordHash{}, false
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return OldPasswordHash{}, false
	}
	return OldPasswordHash{
		uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]),
		uint32(b[4])<<24 | uint32(b[5])<<16 | uint32(b[6])<<8 | uint32(b[7]),
	}, true
}

// oldRandMax is the modulus of the old scheme's random generator.
const oldRandMax = 0x3FFFFFFF

// oldRand is the random generator the old scheme seeds from the password
// and scramble hashes.
type oldRand struct{ seed1, seed2 uint64 }

// next returns the generator's next value in [0, 1), as a double, the way
// the server computes it: the answer's bytes come from floor(next*31),
// which must round exactly as the server's does.
func (r *oldRand) next() float64 {
	r.seed1 = (r.seed1*3 + r.seed2) % oldRandMax
	r.seed2 = (r.seed1 + r.seed2 + 33) % oldRandMax
	return float64(r.seed1) / float64(oldRandMax)
}

// ScrambleOldPassword is the mysql_old_password answer (8 bytes, no NUL)
// to scramble for an account with hash h. It needs the first 8 bytes of
// the scramble; a shorter one gets nil.
func ScrambleOldPassword(scramble []byte, h OldPasswordHash) []byte {
	if len(scramble) < OldPasswordScrambleLen {
		return nil
	}
	msg := HashOldPassword(scramble[:OldPasswordScrambleLen])
	r := oldRand{seed1: uint64(h[0]^msg[0]) % oldRandMax, seed2: uint64(h[1]^msg[1]) % oldRandMax}
	out := make([]byte, OldPasswordScrambleLen)
	for i := range out {
		out[i] = byte(math.Floor(r.next()*31) + 64)
	}
	extra := byte(math.Floor(r.next() * 31))
	for i := range out {
		out[i] ^= extra
	}
	return out
}

// CheckOldPassword reports whether answer, a client's mysql_old_password
// answer to scramble (with or without its NUL), proves hash h.
func CheckOldPassword(answer, scramble []byte, h OldPasswordHash) bool {
	if len(answer) == OldPasswordScrambleLen+1 && answer[OldPasswordScrambleLen] == 0 {
		answer = answer[:OldPasswordScrambleLen]
	}
	want := ScrambleOldPassword(scramble, h)
	return want != nil && subtle.ConstantTimeCompare(answer, want) == 1
}
