package lnd

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/lightningcaddy/caddy-lightning/lnd/lndrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// KeysendRecord is the custom record type that carries a keysend preimage.
const KeysendRecord = 5482373484

// Payment limits; see PayInvoice and Keysend.
type PaymentOptions struct {
	// FeeLimitSat is the most the node may pay in routing fees. It must be
	// set: LND reads 0 as "zero-fee routes only".
	FeeLimitSat int64
	// Timeout bounds the node's search for a route. Default: 60 s.
	Timeout time.Duration
}

// Payment is a payment that succeeded.
type Payment struct {
	// Preimage proves the payment.
	Preimage [32]byte
	// PaymentHash is sha256(Preimage).
	PaymentHash [32]byte
	// AmountSat is what the payee received.
	AmountSat int64
	// FeeSat is what the routing cost.
	FeeSat int64
	// Earlier is true when the node had made (or was making) this payment
	// before the call: no money moved because of it.
	Earlier bool
}

// PayInvoice pays a BOLT 11 invoice. If the node has paid (or is paying)
// this invoice already, it sends nothing and returns that payment's
// outcome, so the same invoice never moves money twice.
func (c *Client) PayInvoice(ctx context.Context, inv Invoice, opts PaymentOptions) (Payment, error) {
	if inv.AmountSat <= 0 {
		return Payment{}, status.Error(codes.InvalidArgument, "zero-amount invoices cannot be paid: ask the payee for an invoice with an amount")
	}
	if err := c.notSelf(ctx, inv.Payee); err != nil {
		return Payment{}, err
	}
	if !inv.ExpiresAt.IsZero() && now().After(inv.ExpiresAt) {
		return Payment{}, status.Errorf(codes.FailedPrecondition, "invoice expired at %s", inv.ExpiresAt.UTC().Format(time.RFC3339))
	}
	req := &lndrpc.SendPaymentRequest{PaymentRequest: inv.PaymentRequest}
	return c.send(ctx, req, inv.PaymentHash, opts)
}

// Keysend pushes amountSat to the node with the hex public key dest,
// without an invoice. The receiving node must accept keysend.
func (c *Client) Keysend(ctx context.Context, dest string, amountSat int64, opts PaymentOptions) (Payment, error) {
	destKey, err := hex.DecodeString(dest)
	if err != nil || len(destKey) != 33 {
		return Payment{}, status.Error(codes.InvalidArgument, "destination must be a 33-byte public key in hex (66 characters)")
	}
	if _, err := btcec.ParsePubKey(destKey); err != nil {
		return Payment{}, status.Error(codes.InvalidArgument, "destination is not a valid public key")
	}
	if amountSat <= 0 {
		return Payment{}, status.Error(codes.InvalidArgument, "amount must be a positive number of satoshis")
	}
	if err := c.notSelf(ctx, strings.ToLower(dest)); err != nil {
		return Payment{}, err
	}
	var preimage [32]byte
	if _, err := rand.Read(preimage[:]); err != nil {
		return Payment{}, status.Errorf(codes.Internal, "generate keysend preimage: %v", err)
	}
	hash := sha256.Sum256(preimage[:])
	req := &lndrpc.SendPaymentRequest{
		Dest:              destKey,
		Amt:               amountSat,
		PaymentHash:       hash[:],
		DestCustomRecords: map[uint64][]byte{KeysendRecord: preimage[:]},
	}
	return c.send(ctx, req, hash, opts)
}

// notSelf refuses payments to the node itself, which LND cannot make.
func (c *Client) notSelf(ctx context.Context, payee string) error {
	self, err := c.identity(ctx)
	if err != nil {
		return err
	}
	if payee == self.pubkey {
		return status.Error(codes.InvalidArgument, "the payee is this node itself: a node cannot pay itself")
	}
	return nil
}

// send runs SendPaymentV2 to its final state, falling back to the existing
// payment when the node says this hash was paid or is being paid.
func (c *Client) send(ctx context.Context, req *lndrpc.SendPaymentRequest, hash [32]byte, opts PaymentOptions) (Payment, error) {
	if opts.FeeLimitSat <= 0 {
		return Payment{}, status.Error(codes.InvalidArgument, "a fee limit is required")
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	req.FeeLimitSat = opts.FeeLimitSat
	req.TimeoutSeconds = int32(timeout / time.Second)
	req.NoInflightUpdates = true

	// The node gives up on its own after timeout; allow it time to say so.
	ctx, cancel := context.WithTimeout(ctx, timeout+c.callTimeout)
	defer cancel()
	stream, err := c.rpc.SendPaymentV2(ctx, req)
	if err != nil {
		return Payment{}, nodeError("send payment", err)
	}
	pay, err := finalPayment(stream)
	switch status.Code(err) {
	case codes.OK:
		return paymentResult(pay)
	case codes.AlreadyExists:
		return c.trackPayment(ctx, hash)
	case codes.Unknown:
		// LND refuses invalid payments with plain errors on the first
		// answer, before any money moves.
		return Payment{}, status.Errorf(codes.InvalidArgument, "send payment: the node refused the payment: %s", status.Convert(err).Message())
	default:
		return Payment{}, nodeError("send payment", err)
	}
}

// trackPayment waits for the final state of the node's payment to hash.
func (c *Client) trackPayment(ctx context.Context, hash [32]byte) (Payment, error) {
	stream, err := c.rpc.TrackPaymentV2(ctx, &lndrpc.TrackPaymentRequest{
		PaymentHash:       hash[:],
		NoInflightUpdates: true,
	})
	if err != nil {
		return Payment{}, nodeError("track payment", err)
	}
	pay, err := finalPayment(stream)
	if err != nil {
		return Payment{}, nodeError("track payment", err)
	}
	p, err := paymentResult(pay)
	p.Earlier = true
	return p, err
}

// paymentStream is what SendPaymentV2 and TrackPaymentV2 return.
type paymentStream interface {
	Recv() (*lndrpc.Payment, error)
}

// finalPayment reads updates until the payment succeeds or fails.
func finalPayment(stream paymentStream) (*lndrpc.Payment, error) {
	for {
		pay, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil, status.Error(codes.Unavailable, "payment stream ended before a final state")
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

// paymentResult turns a final payment into a Payment or an error whose code
// says why it failed.
func paymentResult(pay *lndrpc.Payment) (Payment, error) {
	if pay.Status == lndrpc.Payment_FAILED {
		return Payment{}, failureError(pay.FailureReason)
	}
	var p Payment
	preimage, err := hex.DecodeString(pay.PaymentPreimage)
	if err != nil || copy(p.Preimage[:], preimage) != 32 {
		return Payment{}, status.Error(codes.Internal, "node returned a malformed preimage")
	}
	hash, err := hex.DecodeString(pay.PaymentHash)
	if err != nil || copy(p.PaymentHash[:], hash) != 32 {
		return Payment{}, status.Error(codes.Internal, "node returned a malformed payment hash")
	}
	if sha256.Sum256(p.Preimage[:]) != p.PaymentHash {
		return Payment{}, status.Error(codes.Internal, "node returned a preimage that does not match the payment hash")
	}
	p.AmountSat = pay.ValueSat
	p.FeeSat = pay.FeeSat
	return p, nil
}

// failureError maps LND's failure reasons to status errors.
func failureError(reason lndrpc.PaymentFailureReason) error {
	switch reason {
	case lndrpc.PaymentFailureReason_FAILURE_REASON_TIMEOUT:
		return status.Error(codes.DeadlineExceeded, "payment failed: no route found before the payment timeout")
	case lndrpc.PaymentFailureReason_FAILURE_REASON_NO_ROUTE:
		return status.Error(codes.FailedPrecondition, "payment failed: no route to the destination within the fee limit")
	case lndrpc.PaymentFailureReason_FAILURE_REASON_INSUFFICIENT_BALANCE:
		return status.Error(codes.FailedPrecondition, "payment failed: insufficient outbound balance")
	case lndrpc.PaymentFailureReason_FAILURE_REASON_INCORRECT_PAYMENT_DETAILS:
		return status.Error(codes.InvalidArgument, "payment failed: the destination rejected the payment details (unknown or expired invoice, wrong amount)")
	case lndrpc.PaymentFailureReason_FAILURE_REASON_CANCELED:
		return status.Error(codes.Aborted, "payment failed: canceled")
	default:
		return status.Errorf(codes.Unknown, "payment failed: %s", reason)
	}
}
