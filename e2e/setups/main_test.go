// Package setups tests the lnd setups small operators run, end to end on
// a real regtest network: a node whose only inbound liquidity is a private
// channel from an LSP (carol, behind bob), and Caddy on lnd's stock
// invoice.macaroon. Caddy runs in this process in front of carol; alice
// pays. Under -short no network starts and every test skips.
package setups

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/lightningcaddy/caddy-lightning/internal/regtest"
)

// network is shared by the tests of this package; nil under -short.
var network *regtest.Network

func TestMain(m *testing.M) {
	os.Exit(regtest.RunTests(m, func(n *regtest.Network) { network = n }))
}

var (
	carolOnce sync.Once
	carolErr  error
)

// carol returns the network's carol, starting her on first use.
func carol(t *testing.T) *regtest.Node {
	t.Helper()
	if network == nil {
		t.Skip("needs the regtest network; not started under -short")
	}
	carolOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		_, carolErr = network.StartCarol(ctx)
	})
	if carolErr != nil {
		t.Fatal(carolErr)
	}
	return network.Carol
}
