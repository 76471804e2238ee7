package proxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/internal/mysqltest"
)

// proxyV2 builds a version 2 header: command (0 LOCAL, 1 PROXY), family
// and protocol byte, addresses and extra TLV bytes.
func proxyV2(cmd, fam byte, addrs, tlv []byte) []byte {
	b := append([]byte(nil), proxyHeaderV2Sig...)
	b = append(b, 0x20|cmd, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(len(addrs)+len(tlv)))
	return append(append(b, addrs...), tlv...)
}

func v4addrs(src, dst [4]byte, sport, dport uint16) []byte {
	b := append(src[:], dst[:]...)
	b = binary.BigEndian.AppendUint16(b, sport)
	return binary.BigEndian.AppendUint16(b, dport)
}

func TestParseProxyHeader(t *testing.T) {
	v6 := netip.MustParseAddr("2001:db8::7").As16()
	v6addrs := append(append(v6[:], make([]byte, 16)...), 0x30, 0x39, 0x0c, 0xea)
	for _, tc := range []struct {
		name, in string
		want     string // "" for none
		bad      bool
	}{
		{"v1 tcp4", "PROXY TCP4 192.0.2.7 10.0.0.1 5555 3306\r\n", "192.0.2.7:5555", false},
		{"v1 tcp6", "PROXY TCP6 2001:db8::7 2001:db8::1 12345 3306\r\n", "[2001:db8::7]:12345", false},
		{"v1 unknown", "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", "", false},
		{"v1 no crlf", "PROXY TCP4 192.0.2.7 10.0.0.1 5555 3306\n", "", true},
		{"v1 family mismatch", "PROXY TCP4 2001:db8::7 10.0.0.1 5555 3306\r\n", "", true},
		{"v1 bad port", "PROXY TCP4 192.0.2.7 10.0.0.1 99999 3306\r\n", "", true},
		{"v1 fields", "PROXY TCP4 192.0.2.7 10.0.0.1 5555\r\n", "", true},
		{"v1 too long", "PROXY TCP4 " + string(bytes.Repeat([]byte("1"), 120)) + "\r\n", "", true},
		{"v2 tcp4", string(proxyV2(1, 0x11, v4addrs([4]byte{192, 0, 2, 7}, [4]byte{10, 0, 0, 1}, 5555, 3306), nil)), "192.0.2.7:5555", false},
		{"v2 tcp4 with tlvs", string(proxyV2(1, 0x11, v4addrs([4]byte{192, 0, 2, 8}, [4]byte{10, 0, 0, 1}, 1, 3306), []byte{0x04, 0, 3, 'a', 'b', 'c'})), "192.0.2.8:1", false},
		{"v2 tcp6", string(proxyV2(1, 0x21, v6addrs, nil)), "[2001:db8::7]:12345", false},
		{"v2 local", string(proxyV2(0, 0x00, nil, nil)), "", false},
		{"v2 udp", string(proxyV2(1, 0x12, v4addrs([4]byte{192, 0, 2, 7}, [4]byte{10, 0, 0, 1}, 5555, 3306), nil)), "", false},
		{"v2 short addresses", string(proxyV2(1, 0x11, []byte{1, 2, 3}, nil)), "", true},
		{"v2 version 1", string(append(append([]byte(nil), proxyHeaderV2Sig...), 0x11, 0x11, 0, 0)), "", true},
		{"neither", "\r\n\r\n\x00\r\nQUIX\n\x21\x11\x00\x00", "", true},
	} {
		r := bufio.NewReaderSize(bytes.NewReader(append([]byte(tc.in), "rest"...)), 512)
		src, err := parseProxyHeader(r)
		if tc.bad {
			if err == nil {
				t.Errorf("%s: accepted, source %v", tc.name, src)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		got := ""
		if src.IsValid() {
			got = src.String()
		}
		if got != tc.want {
			t.Errorf("%s: source %q, want %q", tc.name, got, tc.want)
		}
		if rest, _ := r.Peek(4); string(rest) != "rest" {
			t.Errorf("%s: read past the header: next bytes %q", tc.name, rest)
		}
	}
}

func FuzzParseProxyHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.7 10.0.0.1 5555 3306\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(proxyV2(1, 0x11, v4addrs([4]byte{192, 0, 2, 7}, [4]byte{10, 0, 0, 1}, 5555, 3306), []byte{1, 0, 0}))
	f.Add(proxyV2(1, 0x31, make([]byte, 216), nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(data), 512)
		src, err := parseProxyHeader(r)
		if err == nil && src.IsValid() && (!src.Addr().IsValid() || src.Addr().Zone() != "") {
			t.Fatalf("accepted a source without a plain address: %v", src)
		}
	})
}

// TestProxyProtocolListener: a listed peer's header gives the session the
// client's address (logs, access denied); a listed peer without one and
// an unlisted peer with one are refused with 1130.
func TestProxyProtocolListener(t *testing.T) {
	h := newHarness(t, harnessConfig{noTLS: true, listener: ListenerOptions{
		ProxyProtocolNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, HandshakeTimeout: 300 * time.Millisecond}})
	c := h.dial(t)
	if _, err := c.TCP.Write([]byte("PROXY TCP4 192.0.2.7 127.0.0.1 5555 3306\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := c.Login(mysqltest.Login{User: "app", Pass: "secret", Schema: "shop"}); err != nil {
		t.Fatal(err)
	}
	c.Value("SELECT 1")
	if h.logs.count("client=192.0.2.7:5555") == 0 {
		t.Errorf("no log line names the client's address:\n%s", h.logs.dump())
	}
	bad := h.dial(t)
	if _, err := bad.TCP.Write(proxyV2(1, 0x11, v4addrs([4]byte{198, 51, 100, 9}, [4]byte{127, 0, 0, 1}, 4444, 3306), nil)); err != nil {
		t.Fatal(err)
	}
	err := bad.Login(mysqltest.Login{User: "app", Pass: "wrong"})
	if me, ok := err.(*mysql.MyError); !ok || me.Code != mysql.ER_ACCESS_DENIED_ERROR || !bytes.Contains([]byte(me.Message), []byte("'198.51.100.9'")) {
		t.Errorf("wrong password through a v2 header: %v, want access denied for 198.51.100.9", err)
	}

	// Listed, but no header: told 1130 once the handshake timeout passes.
	none := h.dial(t)
	p, err := none.ReadPacket()
	if err != nil || len(p) < 3 || p[0] != 0xff || binary.LittleEndian.Uint16(p[1:]) != mysql.ER_HOST_NOT_PRIVILEGED {
		t.Errorf("a listed peer without a header got %x, %v; want error 1130", p, err)
	}
	mysqltest.Eventually(t, "the refusal counted", func() bool { return h.srv.Metrics().Refused["proxy_protocol"] == 1 })
}

func TestProxyHeaderFromUnlistedPeer(t *testing.T) {
	h := newHarness(t, harnessConfig{noTLS: true})
	c := h.dial(t)
	c.ReadGreeting()
	if _, err := c.TCP.Write([]byte("PROXY TCP4 192.0.2.7 127.0.0.1 5555 3306\r\n")); err != nil {
		t.Fatal(err)
	}
	p, err := c.ReadPacket()
	if err != nil || len(p) < 3 || p[0] != 0xff || binary.LittleEndian.Uint16(p[1:]) != mysql.ER_HOST_NOT_PRIVILEGED {
		t.Errorf("an unlisted peer's header got %x, %v; want error 1130", p, err)
	}
	if h.logs.count("192.0.2.7") != 0 {
		t.Errorf("the header's address was believed:\n%s", h.logs.dump())
	}
	mysqltest.Eventually(t, "the refusal counted", func() bool { return h.srv.Metrics().Refused["proxy_protocol"] == 1 })
}
