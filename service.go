package lightning

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lightningcaddy/caddy-lightning/lightningpb"
	"github.com/lightningcaddy/caddy-lightning/lnd"
)

// maxSats is the bitcoin supply cap, the largest amount that makes sense.
const maxSats = 21_000_000 * 100_000_000

// apiService labels invoices made by generateinvoice in metrics and events.
const apiService = "lightning_api"

// service implements the Lightning API once, for gRPC and REST alike.
type service struct {
	lightningpb.UnimplementedLightningServer

	app            *App
	node           *lnd.Client
	invoiceExpiry  time.Duration
	maxPayment     int64
	maxFee         int64
	paymentTimeout time.Duration
	cltvLimit      uint32
	// followAfter is how long after it begins a payment's request has
	// certainly given up on it (see ledgerEntry.FollowAfter).
	followAfter   time.Duration
	ledger        *paymentLedger
	budget        *Budget       // nil: no budget
	keyScope      [32]byte      // the API key's digest: idempotency keys are per API key
	invoiceLimits *clientLimits // generateinvoice, per client
	ipv6Prefix    int
	logger        *zap.Logger
}

// GenerateInvoice creates an invoice on the node.
func (s *service) GenerateInvoice(ctx context.Context, req *lightningpb.GenerateInvoiceRequest) (*lightningpb.GenerateInvoiceResponse, error) {
	if req.Amount <= 0 || req.Amount > maxSats {
		return nil, status.Errorf(codes.InvalidArgument, "amount must be between 1 and %d satoshis", int64(maxSats))
	}
	if _, ok := s.invoiceLimits.allow(clientKey(ctx, s.ipv6Prefix)); !ok {
		return nil, status.Error(codes.ResourceExhausted, "too many invoices requested: retry later")
	}
	inv, err := s.node.CreateInvoice(ctx, req.Amount, req.Memo, s.invoiceExpiry)
	if err != nil {
		return nil, err
	}
	s.app.settlements().noteIssued(inv.PaymentHash, apiService)
	invoicesIssued.WithLabelValues(apiService).Inc()
	s.logger.Debug("invoice generated",
		zap.String("payment_hash", hex.EncodeToString(inv.PaymentHash[:])),
		zap.Int64("amount_sat", inv.AmountSat))
	return &lightningpb.GenerateInvoiceResponse{Invoice: inv.PaymentRequest}, nil
}

// PayInvoice pays an invoice within the configured limits. Paying an
// invoice again never pays twice: it returns the first payment's outcome.
func (s *service) PayInvoice(ctx context.Context, req *lightningpb.PayInvoiceRequest) (*lightningpb.PayInvoiceResponse, error) {
	if err := s.paymentsEnabled(); err != nil {
		return nil, s.refused(kindInvoice, err)
	}
	inv, err := s.node.DecodeInvoice(ctx, req.Invoice)
	if err != nil {
		return nil, beforeSending(err)
	}
	preimage, err := s.pay(ctx, payment{kind: kindInvoice, hash: inv.PaymentHash, amountSat: inv.AmountSat, invoice: inv})
	if err != nil {
		return nil, err
	}
	return &lightningpb.PayInvoiceResponse{Preimage: hex.EncodeToString(preimage[:])}, nil
}

// CheckInvoice reports whether one of the node's invoices was paid.
func (s *service) CheckInvoice(ctx context.Context, req *lightningpb.CheckInvoiceRequest) (*lightningpb.CheckInvoiceResponse, error) {
	paid, err := s.node.CheckInvoice(ctx, req.Invoice)
	if err != nil {
		return nil, err
	}
	return &lightningpb.CheckInvoiceResponse{Paid: paid}, nil
}

// Keysend pushes a payment to another node within the configured limits.
// With an idempotency key, repeating the call returns the first payment's
// outcome instead of paying again.
func (s *service) Keysend(ctx context.Context, req *lightningpb.KeysendRequest) (*lightningpb.KeysendResponse, error) {
	if err := s.paymentsEnabled(); err != nil {
		return nil, s.refused(kindKeysend, err)
	}
	if _, err := lnd.ParsePubkey(req.Pubkey); err != nil {
		return nil, err
	}
	p := payment{kind: kindKeysend, amountSat: req.Amount,
		keysend: lnd.Keysend{Dest: strings.ToLower(req.Pubkey), AmountSat: req.Amount}}
	if req.IdempotencyKey != "" {
		if err := checkIdempotencyKey(req.IdempotencyKey); err != nil {
			return nil, err
		}
		digest := sha256.Sum256(append(s.keyScope[:], req.IdempotencyKey...))
		p.key = hex.EncodeToString(digest[:])
	}
	if _, err := rand.Read(p.keysend.Preimage[:]); err != nil {
		return nil, status.Errorf(codes.Internal, "generate keysend preimage: %v", err)
	}
	p.hash = p.keysend.Hash()
	preimage, err := s.pay(ctx, p)
	if err != nil {
		return nil, err
	}
	return &lightningpb.KeysendResponse{Preimage: hex.EncodeToString(preimage[:])}, nil
}

// maxIdempotencyKey bounds the length of a keysend's idempotency key.
const maxIdempotencyKey = 255

func checkIdempotencyKey(key string) error {
	if len(key) > maxIdempotencyKey {
		return status.Errorf(codes.InvalidArgument, "idempotency_key is longer than %d characters", maxIdempotencyKey)
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x21 || key[i] > 0x7e {
			return status.Error(codes.InvalidArgument, "idempotency_key may hold only visible ASCII characters (such as a UUID)")
		}
	}
	return nil
}

// Kinds of outgoing payment, for metrics, logs and events.
const (
	kindInvoice = "invoice"
	kindKeysend = "keysend"
)

// payment is an outgoing payment a call asks for.
type payment struct {
	kind      string
	hash      [32]byte
	amountSat int64
	key       string      // keysend idempotency key digest, or ""
	invoice   lnd.Invoice // kindInvoice
	keysend   lnd.Keysend // kindKeysend
}

// pay makes a payment within max_payment and the budget, exactly once:
//
//  1. The ledger gets the payment before it starts (see
//     paymentLedger.begin), reserving its amount plus fee limit. A
//     payment hash, or idempotency key, already there is not paid
//     again: the node is asked how that payment ended (and only if it
//     never reached the node is it sent now, identically).
//  2. The outcome is booked: a success at its real cost, a failure as
//     nothing. An outcome still open keeps its reservation, and the
//     follower books it once the node knows (paymentFollower).
//
// It returns the preimage, or an error that says whether the payment
// failed for certain (safe to retry) or may still complete.
func (s *service) pay(ctx context.Context, p payment) ([32]byte, error) {
	out, repeat, err := s.makePayment(ctx, p)
	if err != nil {
		return [32]byte{}, err
	}
	return answer(p, out, repeat)
}

// makePayment is pay's work: it returns the payment's outcome and whether
// an earlier call made it (repeat), or an error if nothing was sent.
func (s *service) makePayment(ctx context.Context, p payment) (out lnd.Outcome, repeat bool, err error) {
	if p.amountSat <= 0 {
		return nil, false, status.Error(codes.InvalidArgument, "amount must be a positive number of satoshis (zero-amount invoices cannot be paid)")
	}
	if p.amountSat > s.maxPayment {
		return nil, false, s.refused(p.kind, status.Errorf(codes.PermissionDenied,
			"amount of %d sat exceeds this server's max_payment of %d sat", p.amountSat, s.maxPayment))
	}
	opts := s.paymentOptions(p.amountSat)
	entry, fresh, err := s.ledger.begin(ctx, newPayment{
		hash: p.hash, kind: p.kind, key: p.key, dest: p.keysend.Dest, preimage: p.keysend.Preimage,
		amountSat: p.amountSat, feeLimitSat: opts.FeeLimitSat, followAfter: now().Add(s.followAfter),
	}, s.budget)
	if err != nil {
		return nil, false, s.refused(p.kind, err)
	}
	if !fresh && p.kind == kindKeysend {
		// The idempotency key names an earlier keysend: that one counts.
		p.keysend.Preimage = [32]byte{}
		if raw, err := hex.DecodeString(entry.Preimage); err == nil {
			copy(p.keysend.Preimage[:], raw)
		}
		if raw, err := hex.DecodeString(entry.Hash); err == nil {
			copy(p.hash[:], raw)
		}
	}
	defer s.ledger.paying(p.hash)()

	out, err = s.outcome(ctx, p, entry, fresh, opts)
	if err != nil {
		if fresh {
			s.conclude(p.hash, func() (bool, error) { return s.ledger.release(p.hash, "not sent: "+status.Convert(err).Message()) })
		}
		return nil, false, s.refused(p.kind, beforeSending(err))
	}
	booked := s.conclude(p.hash, func() (bool, error) { return s.ledger.record(p.hash, out) })
	s.report(p.kind, out, booked, !fresh)
	if _, open := out.(lnd.Unknown); open {
		s.ledger.wakeFollower()
	}
	return out, !fresh, nil
}

// outcome makes the payment, or learns the outcome of the one the ledger
// already has.
func (s *service) outcome(ctx context.Context, p payment, entry ledgerEntry, fresh bool, opts lnd.PaymentOptions) (lnd.Outcome, error) {
	send := func() (lnd.Outcome, error) {
		switch {
		case p.kind == kindKeysend:
			return s.node.Keysend(ctx, p.keysend, opts)
		case p.invoice.AmountSat == 0: // a session's refund (pay refuses them otherwise)
			return s.node.PayZeroAmountInvoice(ctx, p.invoice, p.amountSat, opts)
		}
		return s.node.PayInvoice(ctx, p.invoice, opts)
	}
	switch {
	case fresh:
		return send()
	case entry.State == stateFailed: // a keysend's idempotency key keeps its result
		return lnd.Failed{PaymentHash: p.hash, Reason: lnd.FailureReason(entry.Reason)}, nil
	}
	trackCtx, cancel := context.WithTimeout(ctx, s.paymentTimeout)
	defer cancel()
	out, err := s.node.TrackPayment(trackCtx, p.hash)
	if !errors.Is(err, lnd.ErrPaymentNotFound) {
		return out, err
	}
	// The ledger has the payment but the node has not seen it (the
	// request that began it ended before sending, or is sending now):
	// sending it, the same payment, cannot pay twice.
	if p.kind == kindKeysend && p.keysend.Preimage == [32]byte{} {
		return lnd.Unknown{PaymentHash: p.hash, Cause: errors.New("the node has no record of this keysend")}, nil
	}
	return send()
}

// conclude runs a ledger change after a payment, logging a failure to
// store it (the ledger then errs on the side of spending less: an open
// payment stays reserved), and reports whether the entry changed.
func (s *service) conclude(hash [32]byte, change func() (bool, error)) bool {
	changed, err := change()
	if err != nil {
		s.logger.Error("cannot record the payment's outcome in the ledger; it stays reserved until the node is asked again",
			zap.String("payment_hash", hex.EncodeToString(hash[:])), zap.Error(err))
	}
	return changed
}

// report counts, logs and emits an event for a payment's outcome. A
// success that this call did not make (a repeat, or a payment the node had
// made before) counts as "repeated".
func (s *service) report(kind string, out lnd.Outcome, booked, repeat bool) {
	hash := out.Hash()
	hashHex := hex.EncodeToString(hash[:])
	switch out := out.(type) {
	case lnd.Succeeded:
		if repeat || out.Earlier {
			payments.WithLabelValues(kind, "repeated").Inc()
			s.logger.Info("payment made before: returned its preimage, moved no money",
				zap.String("kind", kind), zap.String("payment_hash", hashHex), zap.Bool("booked_now", booked))
			return
		}
		s.recordPayment(kind, "succeeded", out.AmountSat+out.FeeSat)
		s.logger.Info("payment sent", zap.String("kind", kind), zap.String("payment_hash", hashHex),
			zap.Int64("amount_sat", out.AmountSat), zap.Int64("fee_sat", out.FeeSat))
		s.app.emit("lightning_payment_sent", map[string]any{
			"kind": kind, "payment_hash": hashHex, "amount_sat": out.AmountSat, "fee_sat": out.FeeSat,
		})
	case lnd.Failed:
		payments.WithLabelValues(kind, "failed").Inc()
		s.logger.Info("payment failed", zap.String("kind", kind), zap.String("payment_hash", hashHex),
			zap.String("reason", string(out.Reason)))
		s.app.emit("lightning_payment_failed", map[string]any{
			"kind": kind, "payment_hash": hashHex, "reason": string(out.Reason),
		})
	case lnd.Unknown:
		payments.WithLabelValues(kind, "unknown").Inc()
		s.logger.Warn("payment outcome unknown: it stays reserved and is followed until the node knows",
			zap.String("kind", kind), zap.String("payment_hash", hashHex), zap.Bool("in_flight", out.InFlight),
			zap.String("cause", out.Cause.Error()))
		s.app.emit("lightning_payment_unknown", map[string]any{"kind": kind, "payment_hash": hashHex})
	}
}

func (s *service) recordPayment(kind, result string, sats int64) {
	payments.WithLabelValues(kind, result).Inc()
	paymentSats.WithLabelValues(kind, result).Add(float64(sats))
}

// refused counts a payment that was not made, and returns err.
func (s *service) refused(kind string, err error) error {
	payments.WithLabelValues(kind, "refused").Inc()
	return err
}

func (s *service) paymentsEnabled() error {
	if s.maxPayment <= 0 {
		return status.Error(codes.PermissionDenied, "outgoing payments are disabled on this server: the operator must set max_payment")
	}
	return nil
}

// paymentOptions gives the fee limit (MaxFee, or 1% of the amount and at
// least 10 sat), timeout and CLTV limit for a payment of amountSat.
func (s *service) paymentOptions(amountSat int64) lnd.PaymentOptions {
	fee := s.maxFee
	if fee == 0 {
		fee = max(10, amountSat/100)
	}
	return lnd.PaymentOptions{FeeLimitSat: fee, Timeout: s.paymentTimeout, CLTVLimit: s.cltvLimit}
}
