package lnd

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"sync"

	"google.golang.org/grpc/credentials"
)

// certFileCredentials trusts the certificate in lnd's tls.cert, read again
// at every dial, so a renewed certificate at the same path is used when the
// connection is redialled (after lnd restarts with it) without a new
// client. If the file cannot be read or holds no certificate, the last one
// read is used.
type certFileCredentials struct {
	path string

	mu   sync.Mutex
	last credentials.TransportCredentials
}

// newCertFileCredentials starts from certPEM, the file's current content.
func newCertFileCredentials(path string, certPEM []byte) (*certFileCredentials, error) {
	creds, err := trustPEM(certPEM)
	if err != nil {
		return nil, err
	}
	return &certFileCredentials{path: path, last: creds}, nil
}

// trustPEM returns client TLS credentials that trust the PEM certificates.
func trustPEM(certPEM []byte) (credentials.TransportCredentials, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(certPEM) {
		return nil, errors.New("lnd: tls_cert holds no PEM certificate")
	}
	return credentials.NewClientTLSFromCert(pool, ""), nil
}

// current reads the file and returns credentials for it.
func (c *certFileCredentials) current() credentials.TransportCredentials {
	c.mu.Lock()
	defer c.mu.Unlock()
	if data, err := os.ReadFile(c.path); err == nil {
		if creds, err := trustPEM(data); err == nil {
			c.last = creds
		}
	}
	return c.last
}

func (c *certFileCredentials) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c.current().ClientHandshake(ctx, authority, conn)
}

func (c *certFileCredentials) ServerHandshake(net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("lnd: client credentials cannot serve")
}

func (c *certFileCredentials) Info() credentials.ProtocolInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last.Info()
}

func (c *certFileCredentials) Clone() credentials.TransportCredentials {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &certFileCredentials{path: c.path, last: c.last.Clone()}
}

// OverrideServerName implements credentials.TransportCredentials (deprecated
// in gRPC, unused by the client).
func (c *certFileCredentials) OverrideServerName(string) error {
	return errors.New("lnd: server name override is not supported")
}
