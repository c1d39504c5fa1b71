package lightning

import (
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/lightningcaddy/caddy-lightning/lnd/lndtest"
)

// A tls_cert given as a path is read again by the client at every dial
// (lnd.Config.TLSCertFile); inline certificates are not files.
func TestTLSCertFile(t *testing.T) {
	node := lndtest.Start(t)
	for value, want := range map[string]string{
		node.TLSCertPath():        node.TLSCertPath(),
		string(node.TLSCertPEM()): "",
	} {
		cfg, err := (&LNDConfig{Address: node.Addr(), TLSCert: value, Macaroon: node.MacaroonHex()}).clientConfig(caddy.NewReplacer())
		if err != nil {
			t.Fatal(err)
		}
		if cfg.TLSCertFile != want {
			t.Errorf("TLSCertFile = %q, want %q", cfg.TLSCertFile, want)
		}
	}
}
