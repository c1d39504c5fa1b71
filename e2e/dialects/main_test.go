// Package dialects tests the paywall's dialects beside L402 end to end on
// a real regtest Lightning network: alice's lnd behind Caddy (run in this
// process from a Caddyfile), bob paying through his own lnd. Alby's
// @getalby/lightning-tools, a client this project did not write, pays in
// the Payment scheme's Lightning charge (fetchWithMpp, fetch402) and in
// x402 (fetchWithX402); one payment is redeemed once whatever the dialect;
// bad credentials of each dialect admit nothing and move no money. Under
// -short no network starts and every test skips.
package dialects

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
