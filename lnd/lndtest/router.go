package lndtest

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/record"
	"github.com/lightningnetwork/lnd/zpay32"
	"google.golang.org/grpc"
)

// routerService implements the routerrpc.Router RPCs the fake supports.
type routerService struct {
	routerrpc.UnimplementedRouterServer
	n *Node
}

func registerRouter(srv *grpc.Server, n *Node) {
	routerrpc.RegisterRouterServer(srv, routerService{n: n})
}

// SendPaymentV2 validates the request as lnd does (errors arrive on the
// first Recv), records the payment IN_FLIGHT, then streams its updates.
func (s routerService) SendPaymentV2(req *routerrpc.SendPaymentRequest, stream routerrpc.Router_SendPaymentV2Server) error {
	intent, err := s.n.paymentIntent(req)
	if err != nil {
		return err
	}
	p, first, err := s.n.startPayment(stream.Context(), intent)
	if err != nil {
		return err
	}
	return s.n.trackPayment(stream.Context(), p, first, req.NoInflightUpdates, stream.Send)
}

// TrackPaymentV2 streams the state of an existing payment until it is final.
func (s routerService) TrackPaymentV2(req *routerrpc.TrackPaymentRequest, stream routerrpc.Router_TrackPaymentV2Server) error {
	hash, err := lntypes.MakeHash(req.PaymentHash)
	if err != nil {
		return err
	}
	n := s.n
	n.mu.Lock()
	p := n.payments[hash]
	var first *lnrpc.Payment
	if p != nil {
		first = p.rpc()
	}
	n.mu.Unlock()
	if p == nil {
		return statusNotFound(errPaymentNotInitiated)
	}
	return n.trackPayment(stream.Context(), p, first, req.NoInflightUpdates, stream.Send)
}

// payIntent is a validated SendPaymentV2 request.
type payIntent struct {
	hash         [32]byte
	target       []byte // compressed pubkey
	amtMsat      int64
	feeLimitMsat int64
	payReq       string
	keysend      []byte // dest_custom_records[5482373484], nil if absent
	cancelable   bool
	cltvLimit    uint32
}

// lnd's bounds on a payment's time lock: --max-cltv-expiry's default, and
// the blocks added to the final hop's delta.
const (
	maxCLTVExpiry = 2016
	blockPadding  = 3
)

// paymentIntent checks a SendPaymentV2 request like lnd's
// extractIntentFromSendRequest, in the same order and with the same texts.
func (n *Node) paymentIntent(req *routerrpc.SendPaymentRequest) (*payIntent, error) {
	if req.TimePref < -1 || req.TimePref > 1 {
		return nil, errors.New("time preference out of range")
	}
	if len(req.LastHopPubkey) > 0 && len(req.LastHopPubkey) != 33 {
		return nil, fmt.Errorf("invalid vertex length of %v, want %v", len(req.LastHopPubkey), 33)
	}
	feeLimit, err := lnrpc.UnmarshallAmt(req.FeeLimitSat, req.FeeLimitMsat)
	if err != nil {
		return nil, err
	}
	custom := record.CustomSet(req.DestCustomRecords)
	if err := custom.Validate(); err != nil {
		return nil, err
	}
	amt, err := lnrpc.UnmarshallAmt(req.Amt, req.AmtMsat)
	if err != nil {
		return nil, err
	}
	in := &payIntent{
		feeLimitMsat: int64(feeLimit),
		keysend:      custom[record.KeySendType],
		cancelable:   req.Cancelable,
		cltvLimit:    uint32(req.CltvLimit),
	}
	switch {
	case in.cltvLimit == 0:
		in.cltvLimit = maxCLTVExpiry
	case in.cltvLimit > maxCLTVExpiry:
		return nil, fmt.Errorf("total time lock of %v exceeds max allowed %v", in.cltvLimit, maxCLTVExpiry)
	}
	finalDelta := uint32(defaultCLTVDelta)

	if req.PaymentRequest != "" {
		switch {
		case len(req.Dest) > 0:
			return nil, errors.New("dest and payment_request cannot appear together")
		case len(req.PaymentHash) > 0:
			return nil, errors.New("payment_hash and payment_request cannot appear together")
		case req.FinalCltvDelta != 0:
			return nil, errors.New("final_cltv_delta and payment_request cannot appear together")
		}
		inv, err := zpay32.Decode(req.PaymentRequest, n.params)
		if err != nil {
			return nil, err
		}
		validUntil := inv.Timestamp.Add(inv.Expiry())
		if n.cfg.now().After(validUntil) {
			return nil, fmt.Errorf("invoice expired. Valid until %v", validUntil)
		}
		if inv.PaymentAddr.IsNone() && len(inv.BlindedPaymentPaths) == 0 {
			return nil, errors.New("payment request must contain either a payment address or blinded paths")
		}
		if inv.MilliSat == nil {
			if amt == 0 {
				return nil, errors.New("amount must be specified when paying a zero amount invoice")
			}
			in.amtMsat = int64(amt)
		} else {
			if amt != 0 {
				return nil, errors.New("amount must not be specified when paying a non-zero amount invoice")
			}
			in.amtMsat = int64(*inv.MilliSat)
		}
		if inv.PaymentHash == nil {
			return nil, errors.New("lndtest: payment request without payment hash")
		}
		in.hash = *inv.PaymentHash
		in.target = inv.Destination.SerializeCompressed()
		in.payReq = req.PaymentRequest
		finalDelta = uint32(inv.MinFinalCLTVExpiry())
	} else {
		if len(req.Dest) != 33 {
			return nil, fmt.Errorf("invalid vertex length of %v, want %v", len(req.Dest), 33)
		}
		in.target = append([]byte(nil), req.Dest...)
		if amt == 0 {
			return nil, errors.New("amount must be specified")
		}
		in.amtMsat = int64(amt)
		if req.Amp {
			return nil, errors.New("lndtest: AMP payments are not supported by the fake")
		}
		hash, err := lntypes.MakeHash(req.PaymentHash)
		if err != nil {
			return nil, err
		}
		in.hash = hash
	}

	if in.cltvLimit <= finalDelta+blockPadding {
		return nil, fmt.Errorf("cltv limit %v should be greater than %v", in.cltvLimit, finalDelta+blockPadding)
	}
	if !req.AllowSelfPayment && bytes.Equal(in.target, n.key.PubKey().SerializeCompressed()) {
		return nil, errors.New("self-payments not allowed")
	}
	return in, nil
}
