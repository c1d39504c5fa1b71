package lightning

import (
	"context"
	"encoding/hex"
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
	budget         *spendLedger
	invoiceLimits  *clientLimits // generateinvoice, per client
	ipv6Prefix     int
	logger         *zap.Logger
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

// PayInvoice pays an invoice within the configured limits.
func (s *service) PayInvoice(ctx context.Context, req *lightningpb.PayInvoiceRequest) (*lightningpb.PayInvoiceResponse, error) {
	if err := s.paymentsEnabled(); err != nil {
		return nil, s.refused(kindInvoice, err)
	}
	inv, err := s.node.DecodeInvoice(ctx, req.Invoice)
	if err != nil {
		return nil, err
	}
	pay, err := s.spend(ctx, kindInvoice, inv.AmountSat, func(opts lnd.PaymentOptions) (lnd.Payment, error) {
		return s.node.PayInvoice(ctx, inv, opts)
	})
	if err != nil {
		return nil, err
	}
	return &lightningpb.PayInvoiceResponse{Preimage: hex.EncodeToString(pay.Preimage[:])}, nil
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
func (s *service) Keysend(ctx context.Context, req *lightningpb.KeysendRequest) (*lightningpb.KeysendResponse, error) {
	if err := s.paymentsEnabled(); err != nil {
		return nil, s.refused(kindKeysend, err)
	}
	pay, err := s.spend(ctx, kindKeysend, req.Amount, func(opts lnd.PaymentOptions) (lnd.Payment, error) {
		return s.node.Keysend(ctx, req.Pubkey, req.Amount, opts)
	})
	if err != nil {
		return nil, err
	}
	return &lightningpb.KeysendResponse{Preimage: hex.EncodeToString(pay.Preimage[:])}, nil
}

// Kinds of outgoing payment, for metrics, logs and events.
const (
	kindInvoice = "invoice"
	kindKeysend = "keysend"
)

// spend runs a payment of amountSat within max_payment and the budget: it
// reserves the amount plus the fee limit, then books what the payment
// really cost. A payment whose outcome is unknown (the node stopped
// answering) keeps its reservation. Every outcome is counted, logged and
// sent as an event.
func (s *service) spend(ctx context.Context, kind string, amountSat int64, pay func(lnd.PaymentOptions) (lnd.Payment, error)) (lnd.Payment, error) {
	if amountSat <= 0 {
		return lnd.Payment{}, status.Error(codes.InvalidArgument, "amount must be a positive number of satoshis (zero-amount invoices cannot be paid)")
	}
	if amountSat > s.maxPayment {
		return lnd.Payment{}, s.refused(kind, status.Errorf(codes.PermissionDenied,
			"amount of %d sat exceeds this server's max_payment of %d sat", amountSat, s.maxPayment))
	}
	opts := s.paymentOptions(amountSat)
	reservation, err := s.budget.reserve(ctx, amountSat+opts.FeeLimitSat)
	if err != nil {
		return lnd.Payment{}, s.refused(kind, err)
	}
	p, err := pay(opts)
	switch {
	case err == nil && p.Earlier:
		s.settleBudget(reservation, 0)
		payments.WithLabelValues(kind, "repeated").Inc()
		s.logger.Info("payment already made: returned its preimage, moved no money",
			zap.String("kind", kind), zap.String("payment_hash", hex.EncodeToString(p.PaymentHash[:])))
	case err == nil:
		s.settleBudget(reservation, p.AmountSat+p.FeeSat)
		s.recordPayment(kind, "succeeded", amountSat+p.FeeSat)
		hash := hex.EncodeToString(p.PaymentHash[:])
		s.logger.Info("payment sent", zap.String("kind", kind), zap.String("payment_hash", hash),
			zap.Int64("amount_sat", p.AmountSat), zap.Int64("fee_sat", p.FeeSat))
		s.app.emit("lightning_payment_sent", map[string]any{
			"kind": kind, "payment_hash": hash, "amount_sat": p.AmountSat, "fee_sat": p.FeeSat,
		})
	default:
		if !outcomeUnknown(err) {
			s.settleBudget(reservation, 0)
		}
		s.recordPayment(kind, "failed", amountSat)
		s.logger.Info("payment failed", zap.String("kind", kind), zap.Int64("amount_sat", amountSat), zap.Error(err))
		s.app.emit("lightning_payment_failed", map[string]any{
			"kind": kind, "amount_sat": amountSat, "error": status.Convert(err).Message(),
		})
	}
	return p, err
}

// settleBudget books what a payment really spent; on failure the
// reservation stays, which errs on the side of spending less.
func (s *service) settleBudget(reservation string, sats int64) {
	if err := s.budget.settle(reservation, sats); err != nil {
		s.logger.Error("cannot correct the spending budget; the reservation stays", zap.Error(err))
	}
}

func (s *service) recordPayment(kind, result string, sats int64) {
	payments.WithLabelValues(kind, result).Inc()
	paymentSats.WithLabelValues(kind, result).Add(float64(sats))
}

// refused counts a payment the limits did not allow, and returns err.
func (s *service) refused(kind string, err error) error {
	payments.WithLabelValues(kind, "refused").Inc()
	return err
}

// outcomeUnknown reports whether a payment that returned err may still
// have moved money.
func outcomeUnknown(err error) bool {
	switch status.Code(err) {
	case codes.DeadlineExceeded, codes.Unavailable, codes.Canceled, codes.Unknown, codes.Internal:
		return true
	}
	return false
}

func (s *service) paymentsEnabled() error {
	if s.maxPayment <= 0 {
		return status.Error(codes.PermissionDenied, "outgoing payments are disabled on this server: the operator must set max_payment")
	}
	return nil
}

// paymentOptions gives the fee limit (MaxFee, or 1% of the amount and at
// least 10 sat) and timeout for a payment of amountSat.
func (s *service) paymentOptions(amountSat int64) lnd.PaymentOptions {
	fee := s.maxFee
	if fee == 0 {
		fee = max(10, amountSat/100)
	}
	return lnd.PaymentOptions{FeeLimitSat: fee, Timeout: s.paymentTimeout}
}
