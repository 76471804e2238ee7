package backend

import (
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"

	"github.com/go-mysql-org/go-mysql/mysql"

	"switchyard/wire"
)

// The proxy's side of a server login: the greeting, an optional TLS
// upgrade, the handshake response, then auth switches and the extra rounds
// of caching_sha2_password until OK or ERR.

// supportedExtCaps are the MariaDB extended capabilities whose packets the
// proxy passes through: extended metadata changes only the content of
// column definitions, which are forwarded as they are.
const supportedExtCaps = wire.MariaDBExtendedMetadata

// maxPacketHint is the max packet size the proxy announces to servers: only
// a hint to the server, as the proxy splits large packets itself.
const maxPacketHint = 1 << 24

func (c *Conn) login(opt DialOptions) error {
	c.acquireReader()
	defer c.ReleaseReader()
	p, seq, err := wire.ReadPacket(c.br, nil, maxServerPacket, 0)
	if err != nil {
		return err
	}
	g, err := wire.ParseGreeting(p)
	if err != nil {
		return err
	}
	c.version = g.ServerVersion
	c.threadID, c.creds = g.ConnectionID, opt.Creds
	if g.Capabilities&requiredCaps != requiredCaps {
		return fmt.Errorf("server lacks protocol 4.1 capabilities (%#x)", g.Capabilities)
	}
	caps := serverCapabilities(opt.Capabilities) & g.Capabilities
	caps |= mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA & g.Capabilities
	if opt.Schema != "" {
		caps |= mysql.CLIENT_CONNECT_WITH_DB
	} else {
		caps &^= mysql.CLIENT_CONNECT_WITH_DB
	}
	resp := &wire.HandshakeResponse{Capabilities: caps, MaxPacketSize: maxPacketHint, Collation: opt.Collation}
	if g.Capabilities&mysql.CLIENT_LONG_PASSWORD == 0 {
		// A MariaDB server: the response must leave CLIENT_LONG_PASSWORD
		// out too for the extended capabilities to be read.
		resp.Capabilities &^= mysql.CLIENT_LONG_PASSWORD
		resp.ExtCapabilities = opt.ExtCapabilities & g.ExtCapabilities & supportedExtCaps
	}
	if opt.tls != nil {
		if g.Capabilities&mysql.CLIENT_SSL == 0 {
			return fmt.Errorf("backend_tls is configured but server %s does not offer TLS", c.srv.Name)
		}
		resp.Capabilities |= mysql.CLIENT_SSL
		resp.SSLRequest = true
		if err := c.writePacket(wire.AppendHandshakeResponse(make([]byte, wire.HeaderSize, 64), resp), seq); err != nil {
			return err
		}
		seq++
		cfg := opt.tls.Clone()
		if cfg.ServerName == "" {
			host, _, _ := net.SplitHostPort(c.srv.Address)
			cfg.ServerName = host
		}
		tc := tls.Client(c.nc, cfg)
		if err := tc.Handshake(); err != nil {
			return fmt.Errorf("TLS handshake: %w", err)
		}
		c.nc = tc
		c.br.Reset(tc)
		resp.SSLRequest = false
	}
	c.caps, c.extCaps = resp.Capabilities, resp.ExtCapabilities

	plugin := g.AuthPlugin
	if plugin != mysql.AUTH_NATIVE_PASSWORD && plugin != mysql.AUTH_CACHING_SHA2_PASSWORD {
		// Answer for native password and let the server switch us if needed.
		plugin = mysql.AUTH_NATIVE_PASSWORD
	}
	if resp.AuthData, err = scramble(plugin, g.AuthData, opt.Creds, c.encrypted()); err != nil {
		return err
	}
	resp.User, resp.Schema, resp.AuthPlugin = opt.Creds.User, opt.Schema, plugin
	if err := c.writePacket(wire.AppendHandshakeResponse(make([]byte, wire.HeaderSize, 128), resp), seq); err != nil {
		return err
	}
	return c.finishAuth(plugin, g.AuthData, opt.Creds, seq+1)
}

// finishAuth reads the server's verdict, answering auth switches and the
// extra rounds of caching_sha2_password. seq is the sequence id of the
// server's next packet.
func (c *Conn) finishAuth(plugin string, salt []byte, creds Credentials, seq uint8) error {
	for range 4 {
		p, next, err := wire.ReadPacket(c.br, nil, maxServerPacket, seq)
		if err != nil {
			return err
		}
		seq = next + 1 // past our answer, if we send one
		switch {
		case len(p) == 0:
			return wire.ErrMalformed
		case p[0] == wire.OKHeader:
			ok, err := wire.ParseOK(p)
			if err != nil {
				return err
			}
			c.SetStatus(ok.Status)
			return nil
		case p[0] == wire.ErrHeader:
			return wire.ParseErr(p)
		case wire.IsAuthSwitchRequest(p):
			sw, err := wire.ParseAuthSwitchRequest(p)
			if err != nil {
				return err
			}
			plugin = sw.Plugin
			if !sw.OldStyle { // which answers the scramble we have
				salt = sw.Data
			}
			resp, err := scramble(plugin, salt, creds, c.encrypted())
			if err != nil {
				return err
			}
			if err := c.writePacket(append(make([]byte, wire.HeaderSize, wire.HeaderSize+len(resp)), resp...), next); err != nil {
				return err
			}
		case wire.IsAuthMoreData(p):
			data, err := wire.ParseAuthMoreData(p)
			if err != nil || plugin != mysql.AUTH_CACHING_SHA2_PASSWORD {
				return fmt.Errorf("unexpected auth data from server for %s", plugin)
			}
			switch data[0] {
			case wire.CachingSha2FastAuthOK: // OK follows
				seq = next
			case wire.CachingSha2FullAuth:
				if seq, err = c.sha2FullAuth(salt, creds, next); err != nil {
					return err
				}
			default:
				return fmt.Errorf("unexpected caching_sha2_password state %d", data[0])
			}
		default:
			return fmt.Errorf("unexpected packet %#x during login", p[0])
		}
	}
	return errors.New("login did not finish")
}

// sha2FullAuth sends the plain password as caching_sha2_password's full
// authentication wants it: in the clear over TLS, else encrypted with the
// server's RSA key. seq is the id our first packet carries; it returns the
// id of the server's next packet.
func (c *Conn) sha2FullAuth(salt []byte, creds Credentials, seq uint8) (uint8, error) {
	if creds.Plain == "" && creds.HasPassword {
		return 0, fmt.Errorf("server %s wants the plain password for caching_sha2_password full authentication of %q, but the proxy only knows its hash", c.srv.Name, creds.User)
	}
	if c.encrypted() {
		return seq + 1, c.writePacket(wire.AppendClearPassword(make([]byte, wire.HeaderSize, wire.HeaderSize+len(creds.Plain)+1), creds.Plain), seq)
	}
	if err := c.writePacket(wire.AppendPublicKeyRequest(make([]byte, wire.HeaderSize, wire.HeaderSize+1)), seq); err != nil {
		return 0, err
	}
	keyPkt, next, err := wire.ReadPacket(c.br, nil, maxServerPacket, seq+1)
	if err != nil {
		return 0, err
	}
	pemBytes, err := wire.ParseAuthMoreData(keyPkt)
	if err != nil {
		return 0, fmt.Errorf("server %s sent no public key", c.srv.Name)
	}
	pub, err := parsePublicKey(pemBytes)
	if err != nil {
		return 0, err
	}
	enc, err := mysql.EncryptPassword(creds.Plain, salt, pub)
	if err != nil {
		return 0, err
	}
	return next + 1, c.writePacket(append(make([]byte, wire.HeaderSize, wire.HeaderSize+len(enc)), enc...), next)
}

func parsePublicKey(pemBytes []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("server public key is not PEM")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("server public key is not RSA")
	}
	return pub, nil
}

// encrypted reports whether the connection runs over TLS.
func (c *Conn) encrypted() bool {
	_, ok := c.nc.(*tls.Conn)
	return ok
}

// scramble computes the login token for plugin. A native-password token needs
// only SHA1(password), which is what lets the proxy log in for users whose
// config holds just the password hash. The password itself is sent in the
// clear (mysql_clear_password) only over TLS: a server that asks for it on
// a plain connection could be anyone on the path.
func scramble(plugin string, salt []byte, creds Credentials, encrypted bool) ([]byte, error) {
	if !creds.HasPassword {
		return nil, nil
	}
	switch plugin {
	case mysql.AUTH_NATIVE_PASSWORD:
		if creds.OldHash != nil {
			// The old hash gives no native answer; the server asks for
			// the old one (MariaDB switches old-password accounts
			// whatever the first answer).
			return nil, nil
		}
		stage1 := creds.Stage1
		if stage1 == nil {
			s := sha1.Sum([]byte(creds.Plain))
			stage1 = s[:]
		}
		return nativeScramble(salt, stage1), nil
	case mysql.AUTH_CACHING_SHA2_PASSWORD:
		if creds.Plain == "" {
			return nil, fmt.Errorf("server asks for caching_sha2_password for %q, but the proxy only knows a mysql_native_password hash", creds.User)
		}
		return mysql.CalcCachingSha2Password(salt, []byte(creds.Plain)), nil
	case mysql.AUTH_MYSQL_OLD_PASSWORD:
		// Only for accounts the servers keep an old hash for: the
		// password itself is never turned into an old answer, so a
		// server cannot talk the proxy down to the weak scheme.
		if creds.OldHash == nil {
			return nil, fmt.Errorf("server asks for %s for %q, whose account the proxy knows no old password hash for", plugin, creds.User)
		}
		// NUL-terminated, as libmariadb sends it.
		return append(wire.ScrambleOldPassword(salt, *creds.OldHash), 0), nil
	case mysql.AUTH_CLEAR_PASSWORD:
		if !encrypted {
			return nil, fmt.Errorf("server asks for %s, which would send %q's password unencrypted: refused (configure backend_tls)", plugin, creds.User)
		}
		return append([]byte(creds.Plain), 0), nil
	}
	return nil, fmt.Errorf("server asks for authentication plugin %q, which the proxy does not support", plugin)
}

// nativeScramble is SHA1(password) XOR SHA1(salt + SHA1(SHA1(password))):
// the mysql_native_password answer, computed from SHA1(password) alone.
func nativeScramble(salt, stage1 []byte) []byte {
	stage2 := sha1.Sum(stage1)
	h := sha1.New()
	h.Write(salt)
	h.Write(stage2[:])
	out := h.Sum(nil)
	for i := range out {
		out[i] ^= stage1[i]
	}
	return out
}
