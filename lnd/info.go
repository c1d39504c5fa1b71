package lnd

import (
	"context"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningcaddy/caddy-lightning/lnd/lndrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Info describes the node.
type Info struct {
	// Pubkey is the node's identity key, hex.
	Pubkey string
	// Alias is the node's public alias.
	Alias string
	// Network is the bitcoin network: mainnet, testnet, testnet4, signet,
	// regtest or simnet.
	Network string
	// SyncedToChain reports whether the node has caught up with the chain.
	SyncedToChain bool
	// BlockHeight is the node's view of the chain tip.
	BlockHeight uint32
}

// Info asks the node who it is.
func (c *Client) Info(ctx context.Context) (Info, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.rpc.GetInfo(ctx, &lndrpc.GetInfoRequest{})
	if err != nil {
		if isPermissionDenied(err) {
			c.infoDenied.Store(true)
		}
		return Info{}, nodeError("get node info", err)
	}
	info := Info{
		Pubkey:        resp.IdentityPubkey,
		Alias:         resp.Alias,
		SyncedToChain: resp.SyncedToChain,
		BlockHeight:   resp.BlockHeight,
	}
	if len(resp.Chains) > 0 {
		info.Network = resp.Chains[0].Network
	}
	return info, nil
}

// Ready returns nil once the node's RPC server is fully active. It needs no
// macaroon permission.
func (c *Client) Ready(ctx context.Context) error {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.rpc.GetState(ctx, &lndrpc.GetStateRequest{})
	if err != nil {
		return nodeError("get node state", err)
	}
	if resp.State != lndrpc.WalletState_SERVER_ACTIVE {
		return status.Errorf(codes.Unavailable, "node is not ready: %s", resp.State)
	}
	return nil
}

// networks maps LND's network names to chain parameters.
var networks = map[string]*chaincfg.Params{
	"mainnet":  &chaincfg.MainNetParams,
	"testnet":  &chaincfg.TestNet3Params,
	"testnet4": &chaincfg.TestNet4Params,
	"signet":   &chaincfg.SigNetParams,
	"regtest":  &chaincfg.RegressionNetParams,
	"simnet":   &chaincfg.SimNetParams,
}

// networkOrder is the order networks are tried in when naming an invoice's
// network: testnet before testnet4, which shares its invoice prefix.
var networkOrder = []string{"mainnet", "testnet", "testnet4", "signet", "regtest", "simnet"}

// nodeIdentity is what never changes about a node: learned once.
type nodeIdentity struct {
	pubkey  string // "" if only the network is known
	network *chaincfg.Params
}

// identity returns the node's public key and network, asking the node
// (GetInfo, info:read) until it has answered once. No lock is held during
// the call: callers that race the first answer each ask and store the same
// identity.
func (c *Client) identity(ctx context.Context) (*nodeIdentity, error) {
	if self := c.self.Load(); self != nil && self.pubkey != "" {
		return self, nil
	}
	info, err := c.Info(ctx)
	if err != nil {
		return nil, err
	}
	params, ok := networks[info.Network]
	if !ok {
		return nil, status.Errorf(codes.Internal, "node reports unknown network %q", info.Network)
	}
	self := &nodeIdentity{pubkey: info.Pubkey, network: params}
	c.self.Store(self)
	return self, nil
}

// network returns the node's network: learned from GetInfo or from an
// invoice the node made, or nil if neither is known yet and the macaroon
// may not call GetInfo (lnd's invoice.macaroon, say).
func (c *Client) network(ctx context.Context) (*chaincfg.Params, error) {
	if self := c.self.Load(); self != nil {
		return self.network, nil
	}
	if c.infoDenied.Load() {
		return nil, nil
	}
	self, err := c.identity(ctx)
	switch {
	case err == nil:
		return self.network, nil
	case c.infoDenied.Load():
		return nil, nil
	default:
		return nil, err
	}
}

// learnNetwork notes the network of an invoice the node made, for when
// the macaroon may not call GetInfo.
func (c *Client) learnNetwork(paymentRequest string) {
	if c.self.Load() != nil {
		return
	}
	if name := invoiceNetwork(paymentRequest, nil); name != "" {
		c.self.CompareAndSwap(nil, &nodeIdentity{network: networks[name]})
	}
}

// networkName returns LND's name for params.
func networkName(params *chaincfg.Params) string {
	for _, name := range networkOrder {
		if networks[name] == params {
			return name
		}
	}
	return params.Name
}
