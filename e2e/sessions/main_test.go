// Package sessions tests Lightning sessions (the Payment scheme's session
// intent) end to end on a real regtest Lightning network: alice's lnd
// behind Caddy (run in this process from a Caddyfile), bob as the client,
// paying deposits through his lnd and giving an amountless invoice of his
// lnd for the refund. Under -short no network starts and every test skips.
package sessions

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
