package lndtest

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/zpay32"
)

// defaultCLTVDelta is lnd's default final CLTV delta for new invoices.
const defaultCLTVDelta = 80

// bolt11Params describes an invoice to encode.
type bolt11Params struct {
	hash       [32]byte
	payAddr    [32]byte
	valueMsat  int64 // 0: no amount in the invoice
	memo       string
	descHash   []byte // 32 bytes: a description_hash field instead of memo
	created    time.Time
	expiry     time.Duration
	routeHints []zpay32.HopHint // one single-hop route hint each
}

// SignInvoice encodes inv as BOLT 11, signed by key as its payee node.
// Tests use it to make invoices that no fake node issued: for other
// networks, without a payment address, and so on.
func SignInvoice(inv *zpay32.Invoice, key *btcec.PrivateKey) (string, error) {
	return inv.Encode(zpay32.MessageSigner{
		SignCompact: func(msg []byte) ([]byte, error) {
			h := sha256.Sum256(msg)
			return ecdsa.SignCompact(key, h[:], true), nil
		},
	})
}

// encodeBolt11 builds and signs a BOLT11 payment request with key, for the
// given network, with the features lnd puts in its invoices. Errors are
// zpay32's, unwrapped, because lnd's AddInvoice returns them as they are
// (e.g. "data length too big to fit within 10 bits: 1639" for a memo over
// 639 bytes, which passes lnd's 1024-byte memo check but not BOLT11).
func encodeBolt11(net *chaincfg.Params, key *btcec.PrivateKey, p bolt11Params) (string, error) {
	features := lnwire.NewFeatureVector(lnwire.NewRawFeatureVector(
		lnwire.TLVOnionPayloadRequired,
		lnwire.PaymentAddrRequired,
		lnwire.MPPOptional,
	), lnwire.Features)
	opts := []func(*zpay32.Invoice){
		zpay32.Description(p.memo),
		zpay32.Expiry(p.expiry),
		zpay32.CLTVExpiry(defaultCLTVDelta),
		zpay32.PaymentAddr(p.payAddr),
		zpay32.Features(features),
	}
	if len(p.descHash) == 32 {
		opts[0] = zpay32.DescriptionHash([32]byte(p.descHash))
	}
	if p.valueMsat > 0 {
		opts = append(opts, zpay32.Amount(lnwire.MilliSatoshi(p.valueMsat)))
	}
	for _, hint := range p.routeHints {
		opts = append(opts, zpay32.RouteHint([]zpay32.HopHint{hint}))
	}
	inv, err := zpay32.NewInvoice(net, p.hash, p.created, opts...)
	if err != nil {
		return "", err
	}
	payReq, err := SignInvoice(inv, key)
	if err != nil {
		return "", err
	}
	return payReq, nil
}

// decodedToRPC converts a decoded invoice to lnd's DecodePayReq answer.
func decodedToRPC(inv *zpay32.Invoice) *lnrpc.PayReq {
	resp := &lnrpc.PayReq{
		Destination: hex.EncodeToString(inv.Destination.SerializeCompressed()),
		Timestamp:   inv.Timestamp.Unix(),
		Expiry:      int64(inv.Expiry().Seconds()),
		CltvExpiry:  int64(inv.MinFinalCLTVExpiry()),
	}
	if inv.PaymentHash != nil {
		resp.PaymentHash = hex.EncodeToString(inv.PaymentHash[:])
	}
	if inv.MilliSat != nil {
		resp.NumMsat = int64(*inv.MilliSat)
		resp.NumSatoshis = int64(inv.MilliSat.ToSatoshis())
	}
	if inv.Description != nil {
		resp.Description = *inv.Description
	}
	if inv.DescriptionHash != nil {
		resp.DescriptionHash = hex.EncodeToString(inv.DescriptionHash[:])
	}
	inv.PaymentAddr.WhenSome(func(a [32]byte) {
		resp.PaymentAddr = a[:]
	})
	if inv.Features != nil {
		resp.Features = make(map[uint32]*lnrpc.Feature)
		for bit := range inv.Features.Features() {
			resp.Features[uint32(bit)] = &lnrpc.Feature{
				Name:       inv.Features.Name(bit),
				IsRequired: bit.IsRequired(),
				IsKnown:    inv.Features.IsKnown(bit),
			}
		}
	}
	return resp
}
