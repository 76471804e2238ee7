package wire

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"reflect"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Capabilities of a current MySQL server's greeting.
const serverCaps = mysql.CLIENT_LONG_PASSWORD | mysql.CLIENT_FOUND_ROWS | mysql.CLIENT_LONG_FLAG |
	mysql.CLIENT_CONNECT_WITH_DB | mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SSL | mysql.CLIENT_TRANSACTIONS |
	mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_MULTI_STATEMENTS | mysql.CLIENT_MULTI_RESULTS |
	mysql.CLIENT_PS_MULTI_RESULTS | mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_CONNECT_ATTRS |
	mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | mysql.CLIENT_SESSION_TRACK | mysql.CLIENT_DEPRECATE_EOF

// scramble is a 20-byte scramble as servers make them: no NUL bytes.
var scramble = []byte("4=j%Qm,2Xv!Lo8pZ@c9e")

func TestGreetingRoundTrip(t *testing.T) {
	if len(scramble) != 20 {
		t.Fatal("the test scramble must be 20 bytes")
	}
	for _, g := range []Greeting{
		{ServerVersion: "8.0.36", ConnectionID: 12, Capabilities: serverCaps, Collation: 255,
			Status: autocommit, AuthData: scramble, AuthPlugin: mysql.AUTH_CACHING_SHA2_PASSWORD},
		{ServerVersion: "5.5.5-10.11.6-MariaDB-log", ConnectionID: 1 << 31, Capabilities: serverCaps &^ mysql.CLIENT_DEPRECATE_EOF,
			Collation: 45, Status: autocommit, AuthData: scramble, AuthPlugin: mysql.AUTH_NATIVE_PASSWORD},
		// Without CLIENT_PLUGIN_AUTH no name is read: the default applies.
		{ServerVersion: "5.1.73", ConnectionID: 3, Capabilities: serverCaps &^ mysql.CLIENT_PLUGIN_AUTH,
			Collation: 8, AuthData: scramble, AuthPlugin: mysql.AUTH_NATIVE_PASSWORD},
		// A longer scramble still fits the part-2 field.
		{ServerVersion: "x", Capabilities: serverCaps, AuthData: append(bytes.Clone(scramble), "0123"...), AuthPlugin: "client_ed25519"},
	} {
		p := AppendGreeting(nil, &g)
		got, err := ParseGreeting(p)
		if err != nil {
			t.Fatalf("%s: %v", g.ServerVersion, err)
		}
		if !reflect.DeepEqual(*got, g) {
			t.Errorf("%s: got %+v\nwant %+v", g.ServerVersion, *got, g)
		}
	}
}

// The two HandshakeV10 examples of the MySQL protocol documentation.
const (
	docGreetingNoPlugin = `0a 35 2e 35 2e 32 2d 6d 32 00 0b 00 00 00 64 76 48 40 49 2d 43 4a 00 ff f7 08 02 00
		00 00 00 00 00 00 00 00 00 00 00 00 00 2a 34 64 7c 63 5a 77 6b 34 5e 5d 3a 00`
	docGreetingPlugin = `0a 35 2e 36 2e 34 2d 6d 37 2d 6c 6f 67 00 56 0a 00 00 52 42 33 76 7a 26 47 72 00 ff
		ff 08 02 00 0f c0 15 00 00 00 00 00 00 00 00 00 00 2b 79 44 26 2f 5a 5a 33 30 35 5a 47 00 6d 79
		73 71 6c 5f 6e 61 74 69 76 65 5f 70 61 73 73 77 6f 72 64 00`
)

func TestGreetingDocumented(t *testing.T) {
	g, err := ParseGreeting(unhex(t, docGreetingNoPlugin))
	want := Greeting{ServerVersion: "5.5.2-m2", ConnectionID: 11, Capabilities: 0xf7ff, Collation: 8,
		Status: 2, AuthData: []byte("dvH@I-CJ*4d|cZwk4^]:"), AuthPlugin: mysql.AUTH_NATIVE_PASSWORD}
	if err != nil || !reflect.DeepEqual(*g, want) {
		t.Fatalf("5.5.2-m2: %+v, %v", g, err)
	}

	p := unhex(t, docGreetingPlugin)
	g, err = ParseGreeting(p)
	want = Greeting{ServerVersion: "5.6.4-m7-log", ConnectionID: 2646, Capabilities: 0xc00fffff, Collation: 8,
		Status: 2, AuthData: []byte("RB3vz&Gr+yD&/ZZ305ZG"), AuthPlugin: mysql.AUTH_NATIVE_PASSWORD}
	if err != nil || !reflect.DeepEqual(*g, want) {
		t.Fatalf("5.6.4-m7-log: %+v, %v", g, err)
	}
	// The encoder writes what MySQL writes, byte for byte.
	if got := AppendGreeting(nil, g); !bytes.Equal(got, p) {
		t.Fatalf("AppendGreeting:\n% x\nwant\n% x", got, p)
	}
}

func TestGreetingOddities(t *testing.T) {
	// A server refusing the connection sends ERR instead of a greeting.
	_, err := ParseGreeting(AppendErr(nil, &mysql.MyError{Code: 1040, State: "08004", Message: "Too many connections"}))
	var me *mysql.MyError
	if !errors.As(err, &me) || me.Code != 1040 || me.State != "08004" || me.Message != "Too many connections" {
		t.Fatalf("ERR greeting: %v", err)
	}
	// Protocol version 9 (MySQL 3.21) is not spoken.
	if _, err := ParseGreeting(cat(byte(9), "3.20.0\x00", le32(1), "12345678\x00")); err == nil {
		t.Fatal("protocol 9 accepted")
	}
	// A greeting that stops after the lower capabilities (pre-4.1) keeps
	// the 8-byte scramble and the default plugin.
	g, err := ParseGreeting(cat(byte(10), "4.0.1\x00", le32(5), "abcdefgh", byte(0), le16(0x822c)))
	if err != nil || string(g.AuthData) != "abcdefgh" || g.Capabilities != 0x822c || g.AuthPlugin != mysql.AUTH_NATIVE_PASSWORD {
		t.Fatalf("short greeting: %+v, %v", g, err)
	}
	// MySQL before 5.5.10 left out the NUL after the plugin name.
	p := AppendGreeting(nil, &Greeting{ServerVersion: "5.5.8", Capabilities: serverCaps, AuthData: scramble, AuthPlugin: "mysql_native_password"})
	if g, err := ParseGreeting(p[:len(p)-1]); err != nil || g.AuthPlugin != "mysql_native_password" {
		t.Fatalf("plugin name without NUL: %+v, %v", g, err)
	}
}

func TestGreetingTruncated(t *testing.T) {
	part2 := append(bytes.Clone(scramble[8:]), 0)
	caps := uint32(serverCaps)
	checkPrefixes(t, "greeting", []field{
		must(byte(10)), must("8.0.36\x00"), must(le32(12)), must(scramble[:8]), must(byte(0)),
		endOK(le16(uint16(caps))),
		// Fewer than 16 bytes after the lower capabilities: the short
		// greeting of old servers.
		tailOK(byte(255)), tailOK(le16(autocommit)), tailOK(le16(uint16(caps >> 16))), tailOK(byte(21)),
		cutOK(make([]byte, 10)),
		// Then part 2 of the scramble is mandatory; the plugin name is not,
		// and may lack its NUL.
		endOK(part2),
		cutOK("caching_sha2_password\x00"),
	}, func(p []byte) error {
		_, err := ParseGreeting(p)
		return err
	})
}

// Client capabilities: what every client sends, and the variants that
// change the handshake response's layout.
const (
	clientBase = mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_LONG_PASSWORD | mysql.CLIENT_TRANSACTIONS |
		mysql.CLIENT_MULTI_STATEMENTS | mysql.CLIENT_MULTI_RESULTS
	lenencAuth = mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | mysql.CLIENT_SECURE_CONNECTION
	withDB     = mysql.CLIENT_CONNECT_WITH_DB
	withPlugin = mysql.CLIENT_PLUGIN_AUTH
)

// sha2Response is a caching_sha2_password scramble response: 32 bytes.
var sha2Response = bytes.Repeat([]byte{0x9c, 0x00, 0x41, 0xfe}, 8)

var handshakeCases = []struct {
	name string
	h    HandshakeResponse
}{
	{"lenenc auth, schema, plugin", HandshakeResponse{Capabilities: clientBase | lenencAuth | withDB | withPlugin,
		MaxPacketSize: 1 << 24, Collation: 255, User: "app", AuthData: sha2Response, Schema: "shop",
		AuthPlugin: mysql.AUTH_CACHING_SHA2_PASSWORD}},
	// Over 250 bytes the length takes the 0xfc form.
	{"lenenc auth of 300 bytes", HandshakeResponse{Capabilities: clientBase | lenencAuth | withPlugin,
		MaxPacketSize: 1 << 30, Collation: 45, User: "app", AuthData: bytes.Repeat([]byte{7}, 300),
		AuthPlugin: "authentication_ldap_sasl_client"}},
	{"secure connection, schema, plugin", HandshakeResponse{Capabilities: clientBase | mysql.CLIENT_SECURE_CONNECTION | withDB | withPlugin,
		MaxPacketSize: 1 << 24, Collation: 8, User: "pam", AuthData: scramble, Schema: "test",
		AuthPlugin: mysql.AUTH_NATIVE_PASSWORD}},
	{"secure connection only", HandshakeResponse{Capabilities: clientBase | mysql.CLIENT_SECURE_CONNECTION,
		MaxPacketSize: 1 << 24, Collation: 33, User: "old", AuthData: scramble}},
	// Neither flag: the auth data is NUL-terminated (it cannot hold a NUL).
	{"NUL-terminated auth, schema", HandshakeResponse{Capabilities: clientBase | withDB,
		MaxPacketSize: 1 << 24, Collation: 8, User: "older", AuthData: []byte("QGFCRUH["), Schema: "test"}},
	{"NUL-terminated auth, plugin", HandshakeResponse{Capabilities: clientBase | withPlugin,
		MaxPacketSize: 1 << 24, Collation: 8, User: "x", AuthData: []byte("pw"), AuthPlugin: mysql.AUTH_CLEAR_PASSWORD}},
	{"no password", HandshakeResponse{Capabilities: clientBase | lenencAuth | withDB | withPlugin,
		MaxPacketSize: 1 << 24, Collation: 255, User: "root", AuthPlugin: mysql.AUTH_CACHING_SHA2_PASSWORD}},
	{"schema flag, empty schema", HandshakeResponse{Capabilities: clientBase | lenencAuth | withDB | withPlugin,
		MaxPacketSize: 1 << 24, User: "root", AuthData: scramble, AuthPlugin: mysql.AUTH_NATIVE_PASSWORD}},
	{"empty user", HandshakeResponse{Capabilities: clientBase | mysql.CLIENT_SECURE_CONNECTION, MaxPacketSize: 1}},
	{"SSLRequest", HandshakeResponse{Capabilities: clientBase | lenencAuth | mysql.CLIENT_SSL,
		MaxPacketSize: 1 << 24, Collation: 255, SSLRequest: true}},
}

// normHandshake makes empty byte slices nil, so that values compare equal
// whether a decoder returned nil or an empty slice.
func normHandshake(h HandshakeResponse) HandshakeResponse {
	if len(h.AuthData) == 0 {
		h.AuthData = nil
	}
	return h
}

func TestHandshakeResponseRoundTrip(t *testing.T) {
	for _, tc := range handshakeCases {
		p := AppendHandshakeResponse(nil, &tc.h)
		got, err := ParseHandshakeResponse(p)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !reflect.DeepEqual(normHandshake(*got), normHandshake(tc.h)) {
			t.Errorf("%s: got %+v\nwant %+v", tc.name, *got, tc.h)
		}
		if tc.h.SSLRequest != (len(p) == 32) {
			t.Errorf("%s: %d bytes", tc.name, len(p))
		}
	}
}

// docHandshakeResponse is the HandshakeResponse41 example of the MySQL
// protocol documentation: CLIENT_SECURE_CONNECTION, schema and plugin.
const docHandshakeResponse = `8d a6 0f 00 00 00 00 01 08 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
	00 00 00 00 70 61 6d 00 14 ab 09 ee f6 bc b1 32 3e 61 14 38 65 c0 99 1d 95 7d 75 d4 47 74 65 73 74 00
	6d 79 73 71 6c 5f 6e 61 74 69 76 65 5f 70 61 73 73 77 6f 72 64 00`

func TestHandshakeResponseDocumented(t *testing.T) {
	p := unhex(t, docHandshakeResponse)
	h, err := ParseHandshakeResponse(p)
	want := HandshakeResponse{Capabilities: 0x000fa68d, MaxPacketSize: 1 << 24, Collation: 8, User: "pam",
		AuthData: unhex(t, "ab 09 ee f6 bc b1 32 3e 61 14 38 65 c0 99 1d 95 7d 75 d4 47"),
		Schema:   "test", AuthPlugin: mysql.AUTH_NATIVE_PASSWORD}
	if err != nil || !reflect.DeepEqual(*h, want) {
		t.Fatalf("got %+v, %v", h, err)
	}
	if got := AppendHandshakeResponse(nil, h); !bytes.Equal(got, p) {
		t.Fatalf("AppendHandshakeResponse:\n% x\nwant\n% x", got, p)
	}
	// The NUL-terminated form of clients without CLIENT_SECURE_CONNECTION.
	h = &HandshakeResponse{Capabilities: clientBase, User: "u", AuthData: []byte("ab")}
	if got := AppendHandshakeResponse(nil, h); !bytes.Equal(got[32:], []byte("u\x00ab\x00")) {
		t.Fatalf("NUL-terminated auth data: % x", got[32:])
	}
}

func TestHandshakeResponseOddities(t *testing.T) {
	// A client that omits the last NUL of the plugin name.
	for _, tc := range handshakeCases {
		if tc.h.AuthPlugin == "" || tc.h.SSLRequest {
			continue
		}
		p := AppendHandshakeResponse(nil, &tc.h)
		got, err := ParseHandshakeResponse(p[:len(p)-1])
		if err != nil || got.AuthPlugin != tc.h.AuthPlugin {
			t.Errorf("%s without the last NUL: %+v, %v", tc.name, got, err)
		}
	}
	// A 4.0 client cannot be served.
	h := handshakeCases[0].h
	h.Capabilities &^= mysql.CLIENT_PROTOCOL_41
	if _, err := ParseHandshakeResponse(AppendHandshakeResponse(nil, &h)); err != ErrNoProtocol41 {
		t.Fatalf("no CLIENT_PROTOCOL_41: %v", err)
	}
	// Connection attributes after the plugin name are skipped.
	p := AppendHandshakeResponse(nil, &handshakeCases[0].h)
	p = append(p, AppendLenencString(nil, AppendLenencString(AppendLenencString(nil, "_os"), "Linux"))...)
	if got, err := ParseHandshakeResponse(p); err != nil || got.AuthPlugin != mysql.AUTH_CACHING_SHA2_PASSWORD {
		t.Fatalf("with attributes: %+v, %v", got, err)
	}
}

func TestHandshakeResponseTruncated(t *testing.T) {
	fixed := func(caps uint32) []field {
		return []field{must(le32(caps)), must(le32(1 << 24)), must(byte(255)),
			// 32 bytes exactly: an SSLRequest.
			endOK(make([]byte, 23))}
	}
	for _, tc := range []struct {
		name string
		caps uint32
		rest []field
	}{
		{"lenenc auth, schema, plugin", clientBase | lenencAuth | withDB | withPlugin, []field{
			must("app\x00"),
			// The schema and plugin name are optional.
			endOK(AppendLenencString(nil, sha2Response)),
			endOK("shop\x00"),
			cutOK("caching_sha2_password\x00"),
		}},
		{"secure connection, schema", clientBase | mysql.CLIENT_SECURE_CONNECTION | withDB, []field{
			must("pam\x00"), endOK(byte(20), scramble), must("test\x00"),
		}},
		{"NUL-terminated auth, plugin", clientBase | withPlugin, []field{
			must("x\x00"), endOK("pw\x00"), cutOK("mysql_clear_password\x00"),
		}},
	} {
		checkPrefixes(t, tc.name, append(fixed(tc.caps), tc.rest...), func(p []byte) error {
			_, err := ParseHandshakeResponse(p)
			return err
		})
	}
}

var changeUserCases = []struct {
	name string
	caps uint32
	c    ChangeUser
}{
	{"secure connection, plugin", clientBase | mysql.CLIENT_SECURE_CONNECTION | withPlugin,
		ChangeUser{User: "reporting", AuthData: scramble, Schema: "analytics", Collation: 45, AuthPlugin: mysql.AUTH_NATIVE_PASSWORD}},
	{"secure connection, no schema", clientBase | mysql.CLIENT_SECURE_CONNECTION | withPlugin,
		ChangeUser{User: "app", AuthData: sha2Response, Collation: 255, AuthPlugin: mysql.AUTH_CACHING_SHA2_PASSWORD}},
	// Without CLIENT_SECURE_CONNECTION the auth data is NUL-terminated,
	// and without CLIENT_PLUGIN_AUTH there is no plugin name.
	{"NUL-terminated auth", clientBase,
		ChangeUser{User: "old", AuthData: []byte("QGFCRUH["), Schema: "test", Collation: 8}},
	{"no password", clientBase | withPlugin,
		ChangeUser{User: "root", Schema: "mysql", Collation: 33, AuthPlugin: mysql.AUTH_NATIVE_PASSWORD}},
}

func TestChangeUserRoundTrip(t *testing.T) {
	for _, tc := range changeUserCases {
		p := AppendChangeUser(nil, &tc.c, tc.caps)
		if p[0] != mysql.COM_CHANGE_USER {
			t.Fatalf("%s: command byte %#x", tc.name, p[0])
		}
		got, err := ParseChangeUser(p, tc.caps)
		if err != nil || !reflect.DeepEqual(normChangeUser(*got), normChangeUser(tc.c)) {
			t.Errorf("%s: got %+v, %v\nwant %+v", tc.name, got, err, tc.c)
		}
		if tc.c.AuthPlugin != "" {
			got, err := ParseChangeUser(p[:len(p)-1], tc.caps)
			if err != nil || got.AuthPlugin != tc.c.AuthPlugin {
				t.Errorf("%s without the last NUL: %+v, %v", tc.name, got, err)
			}
		}
	}
	// The layout follows the capabilities; byte for byte:
	c := ChangeUser{User: "u", AuthData: []byte("ab"), Schema: "s", Collation: 8, AuthPlugin: "p"}
	for _, tc := range []struct {
		caps uint32
		want string
	}{
		{mysql.CLIENT_SECURE_CONNECTION | withPlugin, "11 75 00 02 61 62 73 00 08 00 70 00"},
		{0, "11 75 00 61 62 00 73 00 08 00"},
	} {
		if got := AppendChangeUser(nil, &c, tc.caps); !bytes.Equal(got, unhex(t, tc.want)) {
			t.Errorf("caps %#x: % x", tc.caps, got)
		}
	}
	if _, err := ParseChangeUser([]byte{mysql.COM_QUERY, 'u', 0}, 0); err == nil {
		t.Error("COM_QUERY taken for COM_CHANGE_USER")
	}
}

func normChangeUser(c ChangeUser) ChangeUser {
	if len(c.AuthData) == 0 {
		c.AuthData = nil
	}
	return c
}

func TestChangeUserTruncated(t *testing.T) {
	parse := func(caps uint32) func([]byte) error {
		return func(p []byte) error {
			_, err := ParseChangeUser(p, caps)
			return err
		}
	}
	// Everything after the auth data may be missing, and the schema and
	// plugin name may lack their NUL; a cut collation is skipped.
	checkPrefixes(t, "change user", []field{
		must(mysql.COM_CHANGE_USER), must("reporting\x00"), endOK(byte(20), scramble),
		tailOK("analytics\x00"), tailOK(le16(45)), cutOK("mysql_native_password\x00"),
	}, parse(mysql.CLIENT_SECURE_CONNECTION|withPlugin))
	checkPrefixes(t, "change user without secure connection", []field{
		must(mysql.COM_CHANGE_USER), must("old\x00"), endOK("QGFCRUH[\x00"),
		tailOK("test\x00"), cutOK(le16(8)),
	}, parse(0))
}

func TestAuthSwitchRequest(t *testing.T) {
	for _, r := range []AuthSwitchRequest{
		{Plugin: mysql.AUTH_NATIVE_PASSWORD, Data: scramble},
		{Plugin: mysql.AUTH_CACHING_SHA2_PASSWORD, Data: scramble},
		{Plugin: mysql.AUTH_CLEAR_PASSWORD},
		// Data that ends in NUL keeps it: only the terminator goes.
		{Plugin: "dialog", Data: []byte("Password: \x00")},
	} {
		p := AppendAuthSwitchRequest(nil, r)
		if !IsAuthSwitchRequest(p) {
			t.Fatalf("%s: not recognised", r.Plugin)
		}
		got, err := ParseAuthSwitchRequest(p)
		if err != nil || got.Plugin != r.Plugin || !bytes.Equal(got.Data, r.Data) {
			t.Errorf("%s: got %+v, %v", r.Plugin, got, err)
		}
	}
	want := cat(byte(0xfe), "mysql_native_password\x00", scramble, byte(0))
	if got := AppendAuthSwitchRequest(nil, AuthSwitchRequest{Plugin: "mysql_native_password", Data: scramble}); !bytes.Equal(got, want) {
		t.Fatalf("bytes: % x", got)
	}
	// Data without the final NUL is taken as it is.
	if got, err := ParseAuthSwitchRequest(cat(byte(0xfe), "client_ed25519\x00", "0123")); err != nil || string(got.Data) != "0123" {
		t.Fatalf("data without NUL: %+v, %v", got, err)
	}
	// The pre-4.1 request for an old password: 0xfe alone.
	if got, err := ParseAuthSwitchRequest([]byte{0xfe}); err != nil || !got.OldStyle || got.Plugin != mysql.AUTH_MYSQL_OLD_PASSWORD || got.Data != nil {
		t.Fatalf("0xfe alone: %+v, %v", got, err)
	}
	if got := AppendAuthSwitchRequest(nil, AuthSwitchRequest{Plugin: mysql.AUTH_MYSQL_OLD_PASSWORD, OldStyle: true}); !bytes.Equal(got, []byte{0xfe}) {
		t.Fatalf("old-style request: % x", got)
	}
	for _, bad := range [][]byte{nil, {0x00, 'a', 0}, []byte("\xfemysql_native_password")} {
		if _, err := ParseAuthSwitchRequest(bad); err == nil {
			t.Errorf("ParseAuthSwitchRequest(%q) accepted", bad)
		}
	}
	checkPrefixes(t, "auth switch request", []field{
		endOK(byte(0xfe)), endOK("caching_sha2_password\x00"), tailOK(scramble), must(byte(0)),
	}, func(p []byte) error {
		_, err := ParseAuthSwitchRequest(p)
		return err
	})
}

func TestAuthMoreData(t *testing.T) {
	pem := "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----\n"
	for _, data := range [][]byte{{CachingSha2FastAuthOK}, {CachingSha2FullAuth}, []byte(pem)} {
		p := AppendAuthMoreData(nil, data)
		if !IsAuthMoreData(p) || p[0] != 0x01 {
			t.Fatalf("% x: not recognised", p)
		}
		got, err := ParseAuthMoreData(p)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("% x: got % x, %v", p, got, err)
		}
	}
	// caching_sha2_password's "fast auth OK" is 01 03.
	if got := AppendAuthMoreData(nil, []byte{CachingSha2FastAuthOK}); !bytes.Equal(got, []byte{1, 3}) {
		t.Fatalf("% x", got)
	}
	for _, bad := range [][]byte{nil, {0x01}, {0x00, 3}, {0xfe, 3}} {
		if _, err := ParseAuthMoreData(bad); err == nil {
			t.Errorf("ParseAuthMoreData(% x) accepted", bad)
		}
	}
	checkPrefixes(t, "auth more data", []field{must(byte(1)), cutOK(pem)}, func(p []byte) error {
		_, err := ParseAuthMoreData(p)
		return err
	})
}

func TestDecryptPassword(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	for _, pass := range []string{"secret", "", "a password longer than the twenty-byte scramble"} {
		enc, err := mysql.EncryptPassword(pass, scramble, &key.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := DecryptPassword(key, enc, scramble); err != nil || string(got) != pass {
			t.Errorf("DecryptPassword(EncryptPassword(%q)) = %q, %v", pass, got, err)
		}
		// Under another scramble it decrypts to something else.
		if got, err := DecryptPassword(key, enc, []byte("another scramble....")); err == nil && string(got) == pass && pass != "" {
			t.Errorf("%q decrypted under the wrong scramble", pass)
		}
	}
	enc, _ := mysql.EncryptPassword("secret", scramble, &key.PublicKey)
	for _, tc := range []struct {
		name           string
		data, scramble []byte
	}{
		{"not RSA", []byte("not an RSA ciphertext"), scramble},
		{"cut", enc[:len(enc)-1], scramble},
		{"no scramble", enc, nil},
	} {
		if got, err := DecryptPassword(key, tc.data, tc.scramble); err == nil {
			t.Errorf("%s: decrypted to %q", tc.name, got)
		}
	}
}

// MariaDB's extended capabilities ride in reserved bytes, read only when
// CLIENT_LONG_PASSWORD (CLIENT_MYSQL) is left out, as a MariaDB server and
// client leave it out. A real MariaDB 10.11 greeting's last reserved bytes
// are 1d 00 00 00.
func TestExtendedCapabilities(t *testing.T) {
	for _, caps := range []uint32{mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_PLUGIN_AUTH,
		mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_LONG_PASSWORD} {
		want := uint32(0x1d)
		if caps&mysql.CLIENT_LONG_PASSWORD != 0 {
			want = 0 // reserved bytes: not written, not read
		}
		g := &Greeting{ServerVersion: "5.5.5-10.11.19-MariaDB", ConnectionID: 7, Capabilities: caps, ExtCapabilities: 0x1d,
			AuthData: bytes.Repeat([]byte{'a'}, 20), AuthPlugin: mysql.AUTH_NATIVE_PASSWORD}
		g2, err := ParseGreeting(AppendGreeting(nil, g))
		if err != nil || g2.ExtCapabilities != want || g2.Capabilities != caps {
			t.Fatalf("greeting caps %#x: re-read %#x ext %#x, %v; want ext %#x", caps, g2.Capabilities, g2.ExtCapabilities, err, want)
		}
		for _, ssl := range []bool{false, true} {
			h := &HandshakeResponse{Capabilities: caps, ExtCapabilities: 0x1d, User: "u", SSLRequest: ssl}
			h2, err := ParseHandshakeResponse(AppendHandshakeResponse(nil, h))
			if err != nil || h2.ExtCapabilities != want {
				t.Fatalf("response caps %#x (SSL request %v): ext %#x, %v; want %#x", caps, ssl, h2.ExtCapabilities, err, want)
			}
		}
	}
}
