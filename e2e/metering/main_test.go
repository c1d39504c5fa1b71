// Package metering tests the ways to sell beyond a pass end to end on a
// real regtest Lightning network: alice's lnd behind Caddy (run in this
// process from a Caddyfile), bob paying through his own lnd. Per-request
// payments, prepaid balances under concurrency, costs reported by an
// upstream (headers, and trailers of streamed answers), prices from `map`,
// a Redis ledger that goes down, and a balance across a restart. Under
// -short no network starts and every test skips.
package metering

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
