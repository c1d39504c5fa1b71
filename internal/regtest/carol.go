package regtest

import (
	"context"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
)

// CarolInbound is the capacity of the private channel bob opens to carol:
// all of it is carol's inbound liquidity.
const CarolInbound = 500_000

// StartCarol starts a third node, carol, a merchant behind an LSP: her only
// channel is a private one that bob (the LSP) opens to her, CarolInbound
// satoshis, all on bob's side. Payers find her only through route hints
// in her invoices. It returns once alice has paid an invoice of carol's
// (made with route hints) through bob. Network.Stop stops carol too.
func (n *Network) StartCarol(ctx context.Context) (*Node, error) {
	if n.Carol != nil {
		return n.Carol, nil
	}
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	carol, err := startLnd(ctx, &n.Bin, "carol", filepath.Join(n.Dir, "carol"), n.backend)
	if err != nil {
		return nil, err
	}
	n.Carol = carol
	if err := n.openPrivateChannel(ctx); err != nil {
		return nil, fmt.Errorf("start carol (logs in %s): %w", carol.LndDir, err)
	}
	return carol, nil
}

// openPrivateChannel has bob open an unannounced channel to carol and waits
// until alice can pay carol through it.
func (n *Network) openPrivateChannel(ctx context.Context) error {
	bob, carol := n.Bob, n.Carol
	_, err := bob.ln.ConnectPeer(ctx, &lnrpc.ConnectPeerRequest{
		Addr: &lnrpc.LightningAddress{Pubkey: carol.Pubkey, Host: carol.P2PAddr},
	})
	if err != nil {
		return fmt.Errorf("bob: connect to carol: %w", err)
	}
	pub, err := hex.DecodeString(carol.Pubkey)
	if err != nil {
		return fmt.Errorf("carol pubkey: %w", err)
	}
	_, err = bob.ln.OpenChannelSync(ctx, &lnrpc.OpenChannelRequest{
		NodePubkey:         pub,
		LocalFundingAmount: CarolInbound,
		SatPerVbyte:        feeRate,
		Private:            true,
	})
	if err != nil {
		return fmt.Errorf("bob: open private channel to carol: %w", err)
	}
	if err := n.mine(ctx, 1); err != nil {
		return err
	}
	// lnd adds a route hint only for an active private channel whose peer
	// it knows as a public node: carol must have bob's announcement.
	err = waitFor(ctx, 30*time.Second, "carol's private channel active and bob known", []*process{carol.proc},
		func(ctx context.Context) error {
			resp, err := carol.ln.ListChannels(ctx, &lnrpc.ListChannelsRequest{ActiveOnly: true, PrivateOnly: true})
			if err == nil && len(resp.Channels) != 1 {
				err = fmt.Errorf("%d active private channels", len(resp.Channels))
			}
			if err == nil {
				_, err = carol.ln.GetNodeInfo(ctx, &lnrpc.NodeInfoRequest{PubKey: bob.Pubkey})
			}
			return err
		})
	if err != nil {
		return err
	}
	return waitFor(ctx, 30*time.Second, "payment alice -> carol through bob", []*process{n.Alice.proc, bob.proc, carol.proc},
		func(ctx context.Context) error {
			inv, err := carol.ln.AddInvoice(ctx, &lnrpc.Invoice{Value: 1000, Memo: "regtest probe", Private: true})
			if err != nil {
				return fmt.Errorf("carol: add invoice: %w", err)
			}
			_, err = n.Alice.PayInvoice(ctx, inv.PaymentRequest)
			return err
		})
}
