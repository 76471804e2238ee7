package backend

import (
	"bytes"
	"crypto/sha1"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// TestNativeScrambleFromStage1: SHA1(password), which the proxy recovers
// from a client's native-password login, gives the same login token as the
// password itself, so users configured with only a hash can be logged in.
func TestNativeScrambleFromStage1(t *testing.T) {
	salt := []byte("0123456789abcdefghij")
	stage1 := sha1.Sum([]byte("s3cret"))
	if !bytes.Equal(nativeScramble(salt, stage1[:]), mysql.CalcNativePassword(salt, []byte("s3cret"))) {
		t.Fatal("scramble from stage1 differs from scramble from the password")
	}
	got, err := scramble(mysql.AUTH_NATIVE_PASSWORD, salt, Credentials{Stage1: stage1[:], HasPassword: true}, false)
	if err != nil || !bytes.Equal(got, mysql.CalcNativePassword(salt, []byte("s3cret"))) {
		t.Fatalf("scramble with stage1 only: %x %v", got, err)
	}
	if got, err := scramble(mysql.AUTH_NATIVE_PASSWORD, salt, Credentials{}, false); got != nil || err != nil {
		t.Fatalf("no password: %x %v, want an empty answer", got, err)
	}
	if _, err := scramble(mysql.AUTH_CACHING_SHA2_PASSWORD, salt, Credentials{Stage1: stage1[:], HasPassword: true}, false); err == nil {
		t.Fatal("caching_sha2_password without the plain password: want an error")
	}
	if _, err := scramble("client_ed25519", salt, Credentials{Plain: "x", HasPassword: true}, false); err == nil {
		t.Fatal("unsupported plugin: want an error")
	}
	// The password in the clear only over TLS.
	if _, err := scramble(mysql.AUTH_CLEAR_PASSWORD, salt, Credentials{Plain: "x", HasPassword: true}, false); err == nil {
		t.Fatal("mysql_clear_password on a plain connection: want a refusal")
	}
	if got, err := scramble(mysql.AUTH_CLEAR_PASSWORD, salt, Credentials{Plain: "x", HasPassword: true}, true); err != nil || string(got) != "x\x00" {
		t.Fatalf("mysql_clear_password over TLS: %q %v", got, err)
	}
}
