package lndtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/zpay32"
)

// fakeBlockHeight is the chain height GetInfo reports.
const fakeBlockHeight = 1000

// lightningService implements the lnrpc.Lightning RPCs the fake supports.
type lightningService struct {
	lnrpc.UnimplementedLightningServer
	n *Node
}

// GetInfo reports the node's identity, network and sync state.
func (s lightningService) GetInfo(context.Context, *lnrpc.GetInfoRequest) (*lnrpc.GetInfoResponse, error) {
	n := s.n
	n.mu.Lock()
	synced := n.synced
	n.mu.Unlock()
	blockHash := sha256.Sum256([]byte(n.cfg.network))
	return &lnrpc.GetInfoResponse{
		Version:             "0.21.0-beta commit=v0.21.0-beta",
		CommitHash:          "lndtest",
		IdentityPubkey:      n.Pubkey(),
		Alias:               n.cfg.alias,
		Color:               "#3399ff",
		NumActiveChannels:   1,
		NumPeers:            1,
		BlockHeight:         fakeBlockHeight,
		BlockHash:           hex.EncodeToString(blockHash[:]),
		BestHeaderTimestamp: n.cfg.now().Unix(),
		SyncedToChain:       synced,
		SyncedToGraph:       synced,
		WalletSynced:        synced,
		Testnet:             n.cfg.network == "testnet",
		Chains:              []*lnrpc.Chain{{Chain: "bitcoin", Network: n.cfg.network}},
		Uris:                []string{n.Pubkey() + "@127.0.0.1:9735"},
	}, nil
}

// AddInvoice creates a BOLT11 invoice signed with the node key.
func (s lightningService) AddInvoice(_ context.Context, req *lnrpc.Invoice) (*lnrpc.AddInvoiceResponse, error) {
	return s.n.addInvoice(req)
}

// LookupInvoice reports one of the node's invoices.
func (s lightningService) LookupInvoice(_ context.Context, req *lnrpc.PaymentHash) (*lnrpc.Invoice, error) {
	return s.n.lookupInvoice(req)
}

// ListInvoices lists the node's invoices by add index.
func (s lightningService) ListInvoices(_ context.Context, req *lnrpc.ListInvoiceRequest) (*lnrpc.ListInvoiceResponse, error) {
	return s.n.listInvoices(req), nil
}

// SubscribeInvoices streams invoice additions and settlements.
func (s lightningService) SubscribeInvoices(req *lnrpc.InvoiceSubscription, stream lnrpc.Lightning_SubscribeInvoicesServer) error {
	return s.n.subscribeInvoices(stream.Context(), req, stream.Send)
}

// ListChannels lists the node's channels (see SetChannels).
func (s lightningService) ListChannels(_ context.Context, req *lnrpc.ListChannelsRequest) (*lnrpc.ListChannelsResponse, error) {
	return s.n.listChannels(req)
}

// CheckMacaroonPermissions checks a macaroon against permissions.
func (s lightningService) CheckMacaroonPermissions(ctx context.Context, req *lnrpc.CheckMacPermRequest) (*lnrpc.CheckMacPermResponse, error) {
	return s.n.checkMacaroonPermissions(ctx, req)
}

// DecodePayReq decodes a payment request for the node's network.
func (s lightningService) DecodePayReq(_ context.Context, req *lnrpc.PayReqString) (*lnrpc.PayReq, error) {
	inv, err := zpay32.Decode(req.PayReq, s.n.params)
	if err != nil {
		return nil, err
	}
	return decodedToRPC(inv), nil
}

// stateService implements lnrpc.State, which needs no macaroon.
type stateService struct {
	lnrpc.UnimplementedStateServer
	n *Node
}

// GetState reports the wallet state (SERVER_ACTIVE unless SetState).
func (s stateService) GetState(context.Context, *lnrpc.GetStateRequest) (*lnrpc.GetStateResponse, error) {
	s.n.mu.Lock()
	defer s.n.mu.Unlock()
	return &lnrpc.GetStateResponse{State: s.n.state}, nil
}

// SubscribeState streams the current state, then every change.
func (s stateService) SubscribeState(_ *lnrpc.SubscribeStateRequest, stream lnrpc.State_SubscribeStateServer) error {
	n := s.n
	stopping := n.stoppingCh()
	sent := lnrpc.WalletState(-1)
	for {
		n.mu.Lock()
		state, changed := n.state, n.stateCh
		n.mu.Unlock()
		if state != sent {
			if err := stream.Send(&lnrpc.SubscribeStateResponse{State: state}); err != nil {
				return err
			}
			sent = state
		}
		select {
		case <-changed:
		case <-stream.Context().Done():
			return nil
		case <-stopping:
			return nil
		}
	}
}
