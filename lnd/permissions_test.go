package lnd_test

import (
	"encoding/hex"
	"slices"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningnetwork/lnd/lnrpc"
	"google.golang.org/grpc/codes"
	"gopkg.in/macaroon.v2"

	"github.com/lightningcaddy/caddy-lightning/lnd"
	"github.com/lightningcaddy/caddy-lightning/lnd/lndtest"
)

// clientWith connects to node with a binary macaroon.
func clientWith(t *testing.T, node *lndtest.Node, mac []byte) *lnd.Client {
	t.Helper()
	c, err := lnd.New(lnd.Config{Address: node.Addr(), TLSCert: node.TLSCertPEM(), Macaroon: mac})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func macFor(t *testing.T, node *lndtest.Node, kind string) []byte {
	t.Helper()
	mac, err := hex.DecodeString(node.MacaroonHexFor(kind))
	if err != nil || len(mac) == 0 {
		t.Fatalf("no %s macaroon: %v", kind, err)
	}
	return mac
}

var allPermissions = []lnd.Permission{lnd.InfoRead, lnd.InvoicesRead, lnd.InvoicesWrite, lnd.OffchainRead, lnd.OffchainWrite}

// lnd's invoice.macaroon cannot call GetInfo: invoices, lookups, checks and
// settlements work without it, and the client asks GetInfo only once.
func TestInvoiceMacaroon(t *testing.T) {
	node := lndtest.Start(t)
	c := clientWith(t, node, macFor(t, node, "invoice"))

	// Before the client has seen an invoice of the node's: decoded for the
	// network the invoice names, then looked up.
	other := lndtest.Start(t, lndtest.WithNetwork("testnet"))
	foreign, err := clientWith(t, other, macFor(t, other, "admin")).CreateInvoice(ctx(t), 10, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CheckInvoice(ctx(t), foreign.PaymentRequest)
	wantCode(t, err, codes.NotFound, "no invoice")

	inv, err := c.CreateInvoice(ctx(t), 100, "memo", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Settle(inv.PaymentHash); err != nil {
		t.Fatal(err)
	}
	paid, err := c.CheckInvoice(ctx(t), inv.PaymentRequest)
	if err != nil || !paid {
		t.Fatalf("CheckInvoice = %v, %v; want paid", paid, err)
	}
	// Now the network is known, from the node's own invoice.
	_, err = c.CheckInvoice(ctx(t), foreign.PaymentRequest)
	wantCode(t, err, codes.InvalidArgument, "invoice is for testnet, the node is on regtest")

	if got := node.Calls("GetInfo"); got != 1 {
		t.Errorf("GetInfo calls = %d, want 1 (refused once, then not asked for the network)", got)
	}
	_, err = c.Info(ctx(t))
	wantCode(t, err, codes.PermissionDenied, "macaroon lacks its permission")
}

func TestGrants(t *testing.T) {
	node := lndtest.Start(t)
	for _, tc := range []struct {
		name     string
		mac      []byte
		fromNode bool
		missing  []lnd.Permission
	}{
		{"admin", macFor(t, node, "admin"), true, nil},
		{"readonly", macFor(t, node, "readonly"), true, []lnd.Permission{lnd.InvoicesWrite, lnd.OffchainWrite}},
		// invoice.macaroon lacks macaroon:read: read from its identifier.
		{"invoice", macFor(t, node, "invoice"), false, []lnd.Permission{lnd.InfoRead, lnd.OffchainRead, lnd.OffchainWrite}},
		{"router", macFor(t, node, "router"), false, []lnd.Permission{lnd.InfoRead, lnd.InvoicesRead, lnd.InvoicesWrite}},
		// Permissions for single RPCs (lncli bakemacaroon uri:...) count.
		{"uri", node.BakeMacaroon("macaroon:read", "uri:/lnrpc.Lightning/AddInvoice", "invoices:read"), true,
			[]lnd.Permission{lnd.InfoRead, lnd.OffchainRead, lnd.OffchainWrite}},
		{"uri, local", node.BakeMacaroon("uri:/lnrpc.Lightning/AddInvoice", "invoices:read"), false,
			[]lnd.Permission{lnd.InfoRead, lnd.OffchainRead, lnd.OffchainWrite}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := clientWith(t, node, tc.mac).Grants(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			if g.FromNode != tc.fromNode || (g.NodeError == nil) != tc.fromNode {
				t.Errorf("FromNode = %v (node error %v), want %v", g.FromNode, g.NodeError, tc.fromNode)
			}
			if got := g.Missing(allPermissions...); !slices.Equal(got, tc.missing) {
				t.Errorf("missing %v, want %v", got, tc.missing)
			}
		})
	}
}

// lnd rejects an expired macaroon, or one of another node, altogether.
func TestGrantsRejected(t *testing.T) {
	node := lndtest.Start(t)
	expired := new(macaroon.Macaroon)
	if err := expired.UnmarshalBinary(node.BakeMacaroon("macaroon:read", "invoices:read")); err != nil {
		t.Fatal(err)
	}
	if err := expired.AddFirstPartyCaveat([]byte("time-before " + time.Now().Add(-time.Minute).Format(time.RFC3339Nano))); err != nil {
		t.Fatal(err)
	}
	expiredMac, err := expired.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	_, err = clientWith(t, node, expiredMac).Grants(ctx(t))
	wantCode(t, err, codes.Unknown, "macaroon has expired")

	stranger := lndtest.Start(t)
	_, err = clientWith(t, node, macFor(t, stranger, "admin")).Grants(ctx(t))
	wantCode(t, err, codes.Unknown, "verification failed")
}

// With the node down, the permissions come from the macaroon itself.
func TestGrantsNodeDown(t *testing.T) {
	node := lndtest.Start(t)
	c := clientWith(t, node, macFor(t, node, "invoice"))
	node.Stop()
	g, err := c.Grants(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if g.FromNode || g.NodeError == nil {
		t.Errorf("FromNode = %v, node error %v; want read locally because the node is down", g.FromNode, g.NodeError)
	}
	if got := g.Missing(lnd.InvoicesRead, lnd.InvoicesWrite, lnd.OffchainWrite); !slices.Equal(got, []lnd.Permission{lnd.OffchainWrite}) {
		t.Errorf("missing %v", got)
	}

	// Likewise while lnd starts up and refuses calls.
	if err := node.Restart(); err != nil {
		t.Fatal(err)
	}
	node.SetState(lnrpc.WalletState_UNLOCKED)
	if g, err := c.Grants(ctx(t)); err != nil || g.FromNode || g.NodeError == nil {
		t.Errorf("Grants while lnd starts = %+v, %v; want read locally", g, err)
	}

	if _, err := clientWith(t, node, []byte("not a macaroon")).Grants(ctx(t)); err == nil {
		t.Error("Grants of a non-macaroon succeeded")
	}
}

// A payment the macaroon may not make is refused by lnd before it starts:
// PERMISSION_DENIED, no outcome to follow, however much else the macaroon
// lacks.
func TestPaymentPermissionDenied(t *testing.T) {
	node := lndtest.Start(t)
	for _, perms := range [][]string{
		{"info:read", "offchain:read"},
		{"info:read"},
	} {
		c := clientWith(t, node, node.BakeMacaroon(perms...))
		payreq, _ := node.NewPayableInvoice(10)
		inv, err := lnd.DecodeInvoice(payreq, &chaincfg.RegressionNetParams)
		if err != nil {
			t.Fatal(err)
		}
		opts := lnd.PaymentOptions{FeeLimitSat: 10, Timeout: 5 * time.Second}
		out, err := c.PayInvoice(ctx(t), inv, opts)
		if out != nil {
			t.Fatalf("%v: outcome %#v, want none", perms, out)
		}
		wantCode(t, err, codes.PermissionDenied, "macaroon lacks its permission")
		out, err = c.Keysend(ctx(t), lnd.Keysend{Dest: node.PeerPubkey(), AmountSat: 10, Preimage: [32]byte{1}}, opts)
		if out != nil {
			t.Fatalf("%v: keysend outcome %#v, want none", perms, out)
		}
		wantCode(t, err, codes.PermissionDenied, "macaroon lacks its permission")
	}
	if p := node.Payments(); len(p) != 0 {
		t.Errorf("the node made payments: %+v", p)
	}
}
