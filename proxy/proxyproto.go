package proxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// PROXY protocol (HAProxy's, versions 1 and 2): a load balancer in front of
// switchyard opens each connection with a header naming the client it
// relays, so that logs, limits and the process list see the client rather
// than the balancer. Headers are believed only from the peers in
// listen.proxy_protocol_networks (ListenerOptions.ProxyProtocolNetworks),
// which must send one: anyone else could claim any address. A header from
// another peer, or a listed peer without a valid header, is refused.

// proxyHeaderV2Sig starts every version 2 header.
var proxyHeaderV2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

// maxProxyHeaderV1 is the longest version 1 header, "\r\n" included.
const maxProxyHeaderV1 = 107

// errProxyHeader says a header is not one the protocol allows.
var errProxyHeader = errors.New("malformed PROXY protocol header")

// expectsProxyHeader reports whether the peer addr must open with a
// PROXY protocol header.
func (ln *Listener) expectsProxyHeader(addr net.Addr) bool {
	if len(ln.opt.ProxyProtocolNetworks) == 0 {
		return false
	}
	ip := addrIP(addr)
	if !ip.IsValid() {
		return false
	}
	for _, p := range ln.opt.ProxyProtocolNetworks {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func addrIP(addr net.Addr) netip.Addr {
	if tcp, ok := addr.(*net.TCPAddr); ok {
		return tcp.AddrPort().Addr().Unmap()
	}
	if ap, err := netip.ParseAddrPort(addr.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// readProxyHeader reads the header a listed peer must send before the
// greeting and makes the client it names the connection's address. On
// error the peer has been told and the connection is to be closed.
func (c *ClientConn) readProxyHeader() error {
	peer := c.addr
	src, err := parseProxyHeader(c.br)
	if err != nil {
		c.ln.metrics.refuse(refusedProxyProtocol)
		if isDisconnect(err) {
			return err
		}
		c.Logger().Warn("refused connection: no PROXY protocol header from a peer in listen.proxy_protocol_networks", "err", err)
		// The handshake's deadline may have passed: the peer waited for a
		// greeting (a MySQL client, not a balancer).
		_ = c.raw.SetWriteDeadline(time.Now().Add(time.Second))
		_ = c.WriteError(mysql.NewError(mysql.ER_HOST_NOT_PRIVILEGED,
			fmt.Sprintf("Host '%s' is not allowed to connect: switchyard expects a PROXY protocol header from it (listen.proxy_protocol_networks)", addrIP(c.raw.RemoteAddr()))))
		return err
	}
	if src.IsValid() {
		c.addr = src.String()
		c.log = nil
		c.Logger().Debug("client address from the PROXY protocol header", "peer", peer)
	}
	return nil
}

// errProxyRefused ends a login that refuseProxyHeader refused.
var errProxyRefused = errors.New("PROXY protocol header refused")

// refuseProxyHeader refuses a connection that opens its handshake response
// with a PROXY protocol header: from a peer not listed in
// listen.proxy_protocol_networks (anyone could claim any address), or a
// second one from a listed peer. Nothing else is read of it. It returns
// errProxyRefused when it refused.
func (c *ClientConn) refuseProxyHeader() error {
	p, _ := c.br.Peek(5) // every handshake response is longer
	if len(p) < 5 || !bytes.HasPrefix(p, []byte("PROXY")) && !bytes.HasPrefix(p, proxyHeaderV2Sig[:5]) {
		return nil
	}
	c.ln.metrics.refuse(refusedProxyProtocol)
	c.Logger().Warn("refused connection: PROXY protocol header from a peer not in listen.proxy_protocol_networks, or a second one")
	_ = c.WriteError(mysql.NewError(mysql.ER_HOST_NOT_PRIVILEGED,
		fmt.Sprintf("Host '%s' may not send a PROXY protocol header here: it is not in listen.proxy_protocol_networks", addrIP(c.raw.RemoteAddr()))))
	return errProxyRefused
}

// parseProxyHeader reads a version 1 or 2 header from r and returns the
// source address it names; none (the zero value) for a connection the
// balancer opened itself (v2 LOCAL, a health check) or whose client it
// does not know (v1 UNKNOWN, v2 UNSPEC or a Unix socket). Nothing past the
// header is read.
func parseProxyHeader(r *bufio.Reader) (netip.AddrPort, error) {
	first, err := r.Peek(1)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if first[0] == 'P' {
		return parseProxyV1(r)
	}
	return parseProxyV2(r)
}

// parseProxyV1 reads "PROXY TCP4|TCP6 src dst sport dport\r\n" or
// "PROXY UNKNOWN ...\r\n".
func parseProxyV1(r *bufio.Reader) (netip.AddrPort, error) {
	var line []byte
	for n := 8; ; n++ {
		p, err := r.Peek(n)
		if err != nil {
			return netip.AddrPort{}, err
		}
		if p[n-1] == '\n' {
			line = p
			break
		}
		if n >= maxProxyHeaderV1 {
			return netip.AddrPort{}, fmt.Errorf("%w: version 1 header longer than %d bytes", errProxyHeader, maxProxyHeaderV1)
		}
	}
	defer r.Discard(len(line))
	if !bytes.HasPrefix(line, []byte("PROXY ")) || !bytes.HasSuffix(line, []byte("\r\n")) {
		return netip.AddrPort{}, fmt.Errorf("%w: version 1 header without PROXY or CRLF", errProxyHeader)
	}
	fields := bytes.Split(line[len("PROXY "):len(line)-2], []byte(" "))
	switch string(fields[0]) {
	case "UNKNOWN":
		return netip.AddrPort{}, nil
	case "TCP4", "TCP6":
	default:
		return netip.AddrPort{}, fmt.Errorf("%w: version 1 protocol %q", errProxyHeader, fields[0])
	}
	if len(fields) != 5 {
		return netip.AddrPort{}, fmt.Errorf("%w: version 1 header with %d fields", errProxyHeader, len(fields)+1)
	}
	src, err1 := netip.ParseAddr(string(fields[1]))
	dst, err2 := netip.ParseAddr(string(fields[2]))
	sport, err3 := strconv.ParseUint(string(fields[3]), 10, 16)
	_, err4 := strconv.ParseUint(string(fields[4]), 10, 16)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: version 1 addresses: %v", errProxyHeader, err)
	}
	if want4 := string(fields[0]) == "TCP4"; src.Is4() != want4 || dst.Is4() != want4 || src.Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("%w: version 1 addresses do not match %s", errProxyHeader, fields[0])
	}
	return netip.AddrPortFrom(src, uint16(sport)), nil
}

// parseProxyV2 reads the binary header: the signature, version and
// command, family and protocol, the length of what follows, the addresses,
// and TLVs, which are skipped.
func parseProxyV2(r *bufio.Reader) (netip.AddrPort, error) {
	h, err := r.Peek(16)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if !bytes.Equal(h[:12], proxyHeaderV2Sig) {
		return netip.AddrPort{}, fmt.Errorf("%w: neither version 1 nor version 2", errProxyHeader)
	}
	verCmd, fam := h[12], h[13]
	n := int(binary.BigEndian.Uint16(h[14:16]))
	if verCmd>>4 != 2 || verCmd&0x0f > 1 {
		return netip.AddrPort{}, fmt.Errorf("%w: version 2 header with version/command %#x", errProxyHeader, verCmd)
	}
	if _, err := r.Discard(16); err != nil {
		return netip.AddrPort{}, err
	}
	var addrLen int
	switch fam >> 4 {
	case 0x1:
		addrLen = 12
	case 0x2:
		addrLen = 36
	case 0x3:
		addrLen = 216
	}
	if n < addrLen {
		return netip.AddrPort{}, fmt.Errorf("%w: version 2 addresses need %d bytes, the header has %d", errProxyHeader, addrLen, n)
	}
	var src netip.AddrPort
	if addrLen > 0 {
		a, err := r.Peek(addrLen)
		if err != nil {
			return netip.AddrPort{}, err
		}
		switch fam >> 4 {
		case 0x1:
			src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[0:4])), binary.BigEndian.Uint16(a[8:10]))
		case 0x2:
			src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(a[0:16])).Unmap(), binary.BigEndian.Uint16(a[32:34]))
		}
	}
	if _, err := r.Discard(n); err != nil { // addresses and TLVs
		return netip.AddrPort{}, err
	}
	local := verCmd&0x0f == 0
	proto := fam & 0x0f
	if local || proto != 0x1 { // LOCAL, or not over TCP (STREAM)
		return netip.AddrPort{}, nil
	}
	return src, nil
}
