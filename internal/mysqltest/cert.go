package mysqltest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"sync"
	"time"
)

// Cert is the test certificate: self-signed, RSA, for 127.0.0.1.
type Cert struct {
	// Server is a server's TLS configuration with the certificate; Client
	// a client's that trusts it, for server name 127.0.0.1.
	Server, Client *tls.Config
	// Key is the certificate's private key, which a server may also use
	// for caching_sha2_password's RSA exchange.
	Key *rsa.PrivateKey
}

var (
	certOnce sync.Once
	cert     Cert
)

// Certificate returns the test certificate, made once per test binary
// (an RSA key takes a while), with configurations of its own for the
// caller.
func Certificate() Cert {
	certOnce.Do(func() {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			Subject:               pkix.Name{CommonName: "switchyard-test"},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(24 * time.Hour),
			IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
			KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
			ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			BasicConstraintsValid: true,
			IsCA:                  true,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			panic(err)
		}
		parsed, err := x509.ParseCertificate(der)
		if err != nil {
			panic(err)
		}
		roots := x509.NewCertPool()
		roots.AddCert(parsed)
		cert = Cert{
			Server: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
			Client: &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"},
			Key:    key,
		}
	})
	return Cert{Server: cert.Server.Clone(), Client: cert.Client.Clone(), Key: cert.Key}
}
