package lnd_test

import (
	"encoding/hex"
	"testing"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningnetwork/lnd/zpay32"

	"github.com/lightningcaddy/caddy-lightning/lnd"
	"github.com/lightningcaddy/caddy-lightning/lnd/lndtest"
)

// hintClient connects to node with the macaroon of kind and route hints mode.
func hintClient(t *testing.T, node *lndtest.Node, kind string, mode lnd.RouteHints) *lnd.Client {
	t.Helper()
	c, err := lnd.New(lnd.Config{Address: node.Addr(), TLSCert: node.TLSCertPEM(), Macaroon: macFor(t, node, kind), RouteHints: mode})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// invoiceHints creates an invoice of sat and returns its route hints.
func invoiceHints(t *testing.T, c *lnd.Client, sat int64) [][]zpay32.HopHint {
	t.Helper()
	inv, err := c.CreateInvoice(ctx(t), sat, "hints", 0)
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := zpay32.Decode(inv.PaymentRequest, &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	return decoded.RouteHints
}

// An LSP setup: the node's only channel is a private one from its LSP.
// auto adds the hint; never does not; a node whose public channels can
// receive the amount gets none with auto, and one with always.
func TestRouteHints(t *testing.T) {
	lsp := lndtest.Start(t)
	lsp.SetChannels(lndtest.Channel{Private: true, LocalSat: 0, RemoteSat: 400_000})
	hints := invoiceHints(t, hintClient(t, lsp, "admin", ""), 1000)
	if len(hints) != 1 || len(hints[0]) != 1 || hex.EncodeToString(hints[0][0].NodeID.SerializeCompressed()) != lsp.PeerPubkey() {
		t.Errorf("auto, private channel only: hints %v, want one through the LSP", hints)
	}
	if hints := invoiceHints(t, hintClient(t, lsp, "admin", lnd.RouteHintsNever), 1000); len(hints) != 0 {
		t.Errorf("never: hints %v", hints)
	}

	mixed := lndtest.Start(t)
	mixed.SetChannels(lndtest.Channel{RemoteSat: 200_000}, lndtest.Channel{Private: true, RemoteSat: 400_000})
	auto := hintClient(t, mixed, "admin", lnd.RouteHintsAuto)
	if hints := invoiceHints(t, auto, 150_000); len(hints) != 0 {
		t.Errorf("auto, public inbound suffices: hints %v", hints)
	}
	if hints := invoiceHints(t, auto, 250_000); len(hints) != 1 {
		t.Errorf("auto, public inbound too small: hints %v, want the private channel", hints)
	}
	if got := mixed.Calls("ListChannels"); got != 1 {
		t.Errorf("ListChannels calls = %d, want 1 (the view is reused)", got)
	}
	if hints := invoiceHints(t, hintClient(t, mixed, "admin", lnd.RouteHintsAlways), 1000); len(hints) != 1 {
		t.Errorf("always: hints %v", hints)
	}

	if _, err := lnd.New(lnd.Config{Address: "x:1", TLSCert: lsp.TLSCertPEM(), Macaroon: []byte{1}, RouteHints: "sometimes"}); err == nil {
		t.Error("route hints mode \"sometimes\" accepted")
	}
}

// invoice.macaroon may not list channels: auto then asks for hints (lnd
// adds them only for private channels), and asks ListChannels only once.
func TestRouteHintsWithoutOffchainRead(t *testing.T) {
	node := lndtest.Start(t)
	node.SetChannels(lndtest.Channel{Private: true, RemoteSat: 400_000})
	c := hintClient(t, node, "invoice", lnd.RouteHintsAuto)
	for range 2 {
		if hints := invoiceHints(t, c, 1000); len(hints) != 1 {
			t.Errorf("hints %v, want the private channel", hints)
		}
	}
	if got := node.Calls("ListChannels"); got != 1 {
		t.Errorf("ListChannels calls = %d, want 1 (refused, then not asked again)", got)
	}
}
