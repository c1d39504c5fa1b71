// Package paywall tests the paywall end to end on a real regtest Lightning
// network: alice's lnd behind Caddy (run in this process from a Caddyfile),
// bob paying as a customer through his own lnd, and clients that range from
// Go's net/http to headless Chromium and an L402 library this project did
// not write. Under -short no network starts and every test skips.
package paywall

import (
	"os"
	"testing"

	"github.com/lightningcaddy/caddy-lightning/internal/regtest"
)

// network is shared by the tests of this package; nil under -short.
var network *regtest.Network

func TestMain(m *testing.M) {
	os.Exit(regtest.RunTests(m, func(n *regtest.Network) { network = n }))
}

func needNetwork(t *testing.T) {
	t.Helper()
	if network == nil {
		t.Skip("needs the regtest network; not started under -short")
	}
}
