package lndtest

import (
	"context"
	"errors"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/zpay32"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Channel is one of the node's channels with its one peer (PeerPubkey).
type Channel struct {
	// Private channels are not announced; AddInvoice with private set
	// adds a route hint for each active one, as lnd does.
	Private bool
	// Inactive channels cannot carry payments and get no route hint.
	Inactive bool
	// LocalSat and RemoteSat are the two sides' balances.
	LocalSat, RemoteSat int64
}

// defaultChannels is what a fake node starts with: one active public
// channel, balanced.
var defaultChannels = []Channel{{LocalSat: 500_000, RemoteSat: 500_000}}

// SetChannels replaces the node's channels (what ListChannels reports and
// what route hints AddInvoice adds).
func (n *Node) SetChannels(channels ...Channel) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.channels = append([]Channel(nil), channels...)
}

// chanID is the short channel id of the node's channel i: block 100+i,
// transaction 1, output 0.
func chanID(i int) uint64 {
	return lnwire.ShortChannelID{BlockHeight: uint32(100 + i), TxIndex: 1}.ToUint64()
}

// listChannels does lnd's ListChannels with its filters (peer and alias
// lookup are ignored: the node has one peer).
func (n *Node) listChannels(req *lnrpc.ListChannelsRequest) (*lnrpc.ListChannelsResponse, error) {
	if req.ActiveOnly && req.InactiveOnly {
		return nil, errors.New("either `active_only` or `inactive_only` can be set, but not both")
	}
	if req.PublicOnly && req.PrivateOnly {
		return nil, errors.New("either `public_only` or `private_only` can be set, but not both")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	resp := &lnrpc.ListChannelsResponse{}
	for i, c := range n.channels {
		if req.ActiveOnly && c.Inactive || req.InactiveOnly && !c.Inactive ||
			req.PublicOnly && c.Private || req.PrivateOnly && !c.Private {
			continue
		}
		resp.Channels = append(resp.Channels, &lnrpc.Channel{
			Active:        !c.Inactive,
			RemotePubkey:  n.PeerPubkey(),
			ChanId:        chanID(i),
			Capacity:      c.LocalSat + c.RemoteSat,
			LocalBalance:  c.LocalSat,
			RemoteBalance: c.RemoteSat,
			Private:       c.Private,
			Initiator:     !c.Private, // private channels come from an LSP
		})
	}
	return resp, nil
}

// routeHints are the hints lnd's AddInvoice adds with private set: one per
// active private channel. n.mu must be held.
func (n *Node) routeHintsLocked() []zpay32.HopHint {
	var hints []zpay32.HopHint
	for i, c := range n.channels {
		if c.Private && !c.Inactive {
			hints = append(hints, zpay32.HopHint{
				NodeID:                    n.peerKey.PubKey(),
				ChannelID:                 chanID(i),
				FeeBaseMSat:               1000,
				FeeProportionalMillionths: 1,
				CLTVExpiryDelta:           40,
			})
		}
	}
	return hints
}

// checkMacaroonPermissions does lnd's CheckMacaroonPermissions: the
// macaroon must be the node's, its caveats must hold, and it must grant the
// permissions asked (or the default ones of full_method).
func (n *Node) checkMacaroonPermissions(_ context.Context, req *lnrpc.CheckMacPermRequest) (*lnrpc.CheckMacPermResponse, error) {
	switch {
	case len(req.Permissions) > 0 && req.CheckDefaultPermsFromFullMethod:
		return nil, errors.New("cannot check default permissions from full method and from provided permission list at the same time")
	case req.FullMethod == "" && req.CheckDefaultPermsFromFullMethod:
		return nil, errors.New("cannot check default permissions from full method without providing the full method name")
	}
	var need []string
	for _, p := range req.Permissions {
		need = append(need, p.Entity+":"+p.Action)
	}
	if req.CheckDefaultPermsFromFullMethod {
		p, ok := methodPermissions[req.FullMethod]
		if !ok {
			return nil, errors.New("no permissions found for full method " + req.FullMethod)
		}
		need = []string{p}
	}
	ops, err := verifyMacaroon(req.Macaroon, n.rootKey, n.cfg.now())
	if err == nil {
		err = allow(ops, req.FullMethod, need...)
	}
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return &lnrpc.CheckMacPermResponse{Valid: true}, nil
}
