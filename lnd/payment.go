package lnd

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/lightningcaddy/caddy-lightning/lnd/lndrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"
)

// KeysendRecord is the custom record type that carries a keysend preimage.
const KeysendRecord = 5482373484

// Payment defaults; see PaymentOptions.
const (
	// DefaultPaymentTimeout bounds the node's search for a route.
	DefaultPaymentTimeout = 60 * time.Second
	// DefaultCLTVLimit bounds, in blocks, how long an outgoing HTLC may
	// stay locked if the payee (or a node on the route) holds it: about a
	// week. lnd's own bound, --max-cltv-expiry, defaults to 2016.
	DefaultCLTVLimit = 1008
)

// PaymentOptions limits a payment; see PayInvoice and Keysend.
type PaymentOptions struct {
	// FeeLimitSat is the most the node may pay in routing fees. It must be
	// set: lnd reads 0 as "zero-fee routes only".
	FeeLimitSat int64
	// Timeout bounds the node's search for a route, in whole seconds
	// (rounded up; at least one). Default: DefaultPaymentTimeout.
	Timeout time.Duration
	// CLTVLimit is the most blocks the payment's HTLCs may stay locked
	// (lnd's cltv_limit). Default: DefaultCLTVLimit.
	CLTVLimit uint32
}

// ErrPaymentNotFound is what TrackPayment returns for a payment hash the
// node never started a payment to.
var ErrPaymentNotFound = status.Error(codes.NotFound, "the node has no payment with this hash")

// PayInvoice pays a BOLT 11 invoice.
//
// A non-nil error means the node did not start the payment (the request
// was invalid, or the node refused it or could not be reached before
// anything was sent): no money moved and none will. Otherwise the Outcome
// says what the node knows: Succeeded, Failed or Unknown. If the node has
// paid (or is paying) this invoice already, nothing is sent and the
// outcome is that payment's, so the same invoice never moves money twice.
func (c *Client) PayInvoice(ctx context.Context, inv Invoice, opts PaymentOptions) (Outcome, error) {
	if inv.AmountSat <= 0 {
		return nil, status.Error(codes.InvalidArgument, "zero-amount invoices cannot be paid: ask the payee for an invoice with an amount")
	}
	return c.payRequest(ctx, inv, &lndrpc.SendPaymentRequest{PaymentRequest: inv.PaymentRequest}, opts)
}

// PayZeroAmountInvoice pays amountSat to a zero-amount BOLT 11 invoice, one
// that leaves the amount to the payer (such as a session's return
// invoice). Its results mean what PayInvoice's do.
func (c *Client) PayZeroAmountInvoice(ctx context.Context, inv Invoice, amountSat int64, opts PaymentOptions) (Outcome, error) {
	switch {
	case inv.AmountSat != 0:
		return nil, status.Error(codes.InvalidArgument, "the invoice has an amount: pay it with PayInvoice")
	case amountSat <= 0:
		return nil, status.Error(codes.InvalidArgument, "amount must be a positive number of satoshis")
	}
	return c.payRequest(ctx, inv, &lndrpc.SendPaymentRequest{PaymentRequest: inv.PaymentRequest, Amt: amountSat}, opts)
}

// payRequest sends req, the payment of inv, unless inv expired or is the
// node's own.
func (c *Client) payRequest(ctx context.Context, inv Invoice, req *lndrpc.SendPaymentRequest, opts PaymentOptions) (Outcome, error) {
	if !inv.ExpiresAt.IsZero() && now().After(inv.ExpiresAt) {
		return nil, status.Errorf(codes.FailedPrecondition, "invoice expired at %s", inv.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if err := c.notSelf(ctx, inv.Payee); err != nil {
		return nil, err
	}
	return c.send(ctx, req, inv.PaymentHash, opts)
}

// Keysend is a payment without an invoice: the payer chooses the preimage
// and sends it to the payee inside the payment.
type Keysend struct {
	// Dest is the hex public key of the node to pay, which must accept
	// keysend.
	Dest string
	// AmountSat is what the payee receives.
	AmountSat int64
	// Preimage is the payment's secret, chosen at random by the caller;
	// its hash identifies the payment. Sending the same preimage again
	// never pays twice.
	Preimage [32]byte
}

// Keysend pushes k.AmountSat to k.Dest. Its results mean what PayInvoice's
// do.
func (c *Client) Keysend(ctx context.Context, k Keysend, opts PaymentOptions) (Outcome, error) {
	dest, err := ParsePubkey(k.Dest)
	if err != nil {
		return nil, err
	}
	if k.AmountSat <= 0 {
		return nil, status.Error(codes.InvalidArgument, "amount must be a positive number of satoshis")
	}
	if err := c.notSelf(ctx, strings.ToLower(k.Dest)); err != nil {
		return nil, err
	}
	hash := k.Hash()
	req := &lndrpc.SendPaymentRequest{
		Dest:              dest,
		Amt:               k.AmountSat,
		PaymentHash:       hash[:],
		DestCustomRecords: map[uint64][]byte{KeysendRecord: k.Preimage[:]},
	}
	return c.send(ctx, req, hash, opts)
}

// Hash is the keysend's payment hash, sha256(Preimage).
func (k Keysend) Hash() [32]byte { return hashOf(k.Preimage) }

// ParsePubkey checks that s is a node's public key, 33 bytes in hex, and
// returns its bytes.
func ParsePubkey(s string) ([]byte, error) {
	key, err := hex.DecodeString(s)
	if err != nil || len(key) != 33 {
		return nil, status.Error(codes.InvalidArgument, "destination must be a 33-byte public key in hex (66 characters)")
	}
	if _, err := btcec.ParsePubKey(key); err != nil {
		return nil, status.Error(codes.InvalidArgument, "destination is not a valid public key")
	}
	return key, nil
}

// notSelf refuses payments to the node itself, which lnd cannot make.
func (c *Client) notSelf(ctx context.Context, payee string) error {
	self, err := c.identity(ctx)
	if err != nil {
		return notSent(err)
	}
	if payee == self.pubkey {
		return status.Error(codes.InvalidArgument, "the payee is this node itself: a node cannot pay itself")
	}
	return nil
}

// send runs SendPaymentV2 to its final state. When the stream ends without
// one, the node is asked what became of the payment: a refusal is an
// error only if the node has no payment to this hash.
func (c *Client) send(ctx context.Context, req *lndrpc.SendPaymentRequest, hash [32]byte, opts PaymentOptions) (Outcome, error) {
	if opts.FeeLimitSat <= 0 {
		return nil, status.Error(codes.InvalidArgument, "a fee limit is required")
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = DefaultPaymentTimeout
	}
	if timeout < time.Second {
		return nil, status.Error(codes.InvalidArgument, "the payment timeout must be at least one second")
	}
	req.FeeLimitSat = opts.FeeLimitSat
	req.TimeoutSeconds = int32(wholeSeconds(timeout))
	req.CltvLimit = int32(DefaultCLTVLimit)
	if opts.CLTVLimit > 0 {
		req.CltvLimit = int32(opts.CLTVLimit)
	}
	req.NoInflightUpdates = true

	// A connection that is not up fails the call before anything is sent;
	// say so plainly rather than leave the outcome open.
	if c.conn.GetState() != connectivity.Ready {
		if err := c.Ready(ctx); err != nil {
			return nil, notSent(err)
		}
	}
	// The node gives up on its own after the timeout; allow it time to
	// say so.
	sendCtx, cancel := context.WithTimeout(ctx, time.Duration(req.TimeoutSeconds)*time.Second+c.callTimeout)
	defer cancel()
	stream, err := c.rpc.SendPaymentV2(sendCtx, req)
	var pay *lndrpc.Payment
	if err == nil {
		pay, err = finalPayment(stream)
	}
	switch {
	case err == nil:
		return outcomeOf(pay, hash)
	case isPermissionDenied(err):
		// lnd checks the macaroon before the call reaches its router.
		return nil, nodeError("send payment", err)
	case status.Code(err) == codes.AlreadyExists:
		// Paid or being paid already: that payment's outcome, within
		// the time this payment would have had.
		out, err := c.TrackPayment(sendCtx, hash)
		if s, ok := out.(Succeeded); ok {
			s.Earlier = true
			return s, nil
		}
		return out, err
	}
	return c.afterBrokenSend(hash, err)
}

// afterBrokenSend learns what became of a payment whose SendPaymentV2
// stream ended without a final state. lnd returns plain errors (code
// Unknown) both for requests it refuses before starting a payment and,
// when it shuts down, for payments whose HTLCs are on their way: only its
// payment record tells the two apart.
func (c *Client) afterBrokenSend(hash [32]byte, sendErr error) (Outcome, error) {
	// The request's context may be over: this question has its own.
	ctx, cancel := context.WithTimeout(context.Background(), c.callTimeout)
	defer cancel()
	out, err := c.track(ctx, hash, false)
	switch {
	case errors.Is(err, ErrPaymentNotFound) && nodeAnswered(sendErr):
		if status.Code(sendErr) == codes.Unknown {
			return nil, status.Errorf(codes.InvalidArgument, "send payment: the node refused the payment: %s", message(sendErr))
		}
		return nil, notSent(nodeError("send payment", sendErr))
	case errors.Is(err, ErrPaymentNotFound):
		// The request may still reach the node: only a later look can
		// tell that it never started.
		return Unknown{PaymentHash: hash, Cause: fmt.Errorf("%s; the node has no record of the payment yet", message(nodeError("send payment", sendErr)))}, nil
	}
	if u, ok := out.(Unknown); ok {
		u.Cause = fmt.Errorf("%s (%s)", message(nodeError("send payment", sendErr)), message(u.Cause))
		return u, nil
	}
	return out, nil
}

// nodeAnswered reports whether err, which ended a payment stream, came from
// lnd's handler rather than from the connection or the client: only then
// has the node finished with the request.
func nodeAnswered(err error) bool {
	if errors.Is(err, errStreamEnded) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.Internal:
		return false
	}
	return true
}

// TrackPayment waits for the node's payment to hash to succeed or fail. If
// ctx ends, or the node stops answering, first, the outcome is Unknown. A
// hash the node never started a payment to gives ErrPaymentNotFound.
func (c *Client) TrackPayment(ctx context.Context, hash [32]byte) (Outcome, error) {
	return c.track(ctx, hash, true)
}

// track asks the node for its payment to hash. With wait it reads until a
// final state; without, the current state is the answer.
func (c *Client) track(ctx context.Context, hash [32]byte, wait bool) (Outcome, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.rpc.TrackPaymentV2(ctx, &lndrpc.TrackPaymentRequest{PaymentHash: hash[:]})
	inFlight := false
	for err == nil {
		var pay *lndrpc.Payment
		if pay, err = stream.Recv(); err != nil {
			break
		}
		switch pay.Status {
		case lndrpc.Payment_SUCCEEDED, lndrpc.Payment_FAILED:
			return outcomeOf(pay, hash)
		}
		inFlight = true
		if !wait {
			return Unknown{PaymentHash: hash, InFlight: true, Cause: errors.New("the payment is in flight")}, nil
		}
	}
	if status.Code(err) == codes.NotFound {
		return nil, ErrPaymentNotFound
	}
	if errors.Is(err, io.EOF) {
		err = errStreamEnded
	}
	return Unknown{PaymentHash: hash, InFlight: inFlight, Cause: errors.New(message(nodeError("track payment", err)))}, nil
}

// message is an error's text without gRPC's "rpc error: code = ..." prefix.
func message(err error) string { return status.Convert(err).Message() }

// errStreamEnded is a payment stream that ended without a final state.
var errStreamEnded = status.Error(codes.Unavailable, "payment stream ended before a final state")

// finalPayment reads updates until the payment succeeds or fails.
func finalPayment(stream interface {
	Recv() (*lndrpc.Payment, error)
}) (*lndrpc.Payment, error) {
	for {
		pay, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil, errStreamEnded
		}
		if err != nil {
			return nil, err
		}
		switch pay.Status {
		case lndrpc.Payment_SUCCEEDED, lndrpc.Payment_FAILED:
			return pay, nil
		}
	}
}

// outcomeOf turns a final payment into Succeeded or Failed.
func outcomeOf(pay *lndrpc.Payment, hash [32]byte) (Outcome, error) {
	if pay.Status == lndrpc.Payment_FAILED {
		return Failed{PaymentHash: hash, Reason: failureReason(pay.FailureReason), CreatedAt: time.Unix(0, pay.CreationTimeNs)}, nil
	}
	s := Succeeded{PaymentHash: hash, AmountSat: pay.ValueSat, FeeSat: pay.FeeSat, CreatedAt: time.Unix(0, pay.CreationTimeNs)}
	preimage, err := hex.DecodeString(pay.PaymentPreimage)
	if err != nil || copy(s.Preimage[:], preimage) != 32 || hashOf(s.Preimage) != hash {
		// The node says the payment succeeded, so money moved, but its
		// proof is unusable: that is not a failure.
		return Unknown{PaymentHash: hash, Cause: errors.New("the node reports the payment succeeded but returned no valid preimage")}, nil
	}
	return s, nil
}

// notSent marks an error that stopped a payment before anything was sent:
// a node that did not answer in time is unavailable, which keeps a
// timeout's code for payments whose outcome is unknown.
func notSent(err error) error {
	if status.Code(err) == codes.DeadlineExceeded {
		return status.Errorf(codes.Unavailable, "%s; nothing was sent", message(err))
	}
	return err
}

// wholeSeconds rounds d up to whole seconds.
func wholeSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}
