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

// service implements the Lightning API once, for gRPC and REST alike.
type service struct {
	lightningpb.UnimplementedLightningServer

	node           *lnd.Client
	invoiceExpiry  time.Duration
	maxPayment     int64
	maxFee         int64
	paymentTimeout time.Duration
	budget         *spendLedger
	logger         *zap.Logger
}

// GenerateInvoice creates an invoice on the node.
func (s *service) GenerateInvoice(ctx context.Context, req *lightningpb.GenerateInvoiceRequest) (*lightningpb.GenerateInvoiceResponse, error) {
	if req.Amount <= 0 || req.Amount > maxSats {
		return nil, status.Errorf(codes.InvalidArgument, "amount must be between 1 and %d satoshis", int64(maxSats))
	}
	inv, err := s.node.CreateInvoice(ctx, req.Amount, req.Memo, s.invoiceExpiry)
	if err != nil {
		return nil, err
	}
	s.logger.Debug("invoice generated",
		zap.String("payment_hash", hex.EncodeToString(inv.PaymentHash[:])),
		zap.Int64("amount_sat", inv.AmountSat))
	return &lightningpb.GenerateInvoiceResponse{Invoice: inv.PaymentRequest}, nil
}

// PayInvoice pays an invoice within the configured limits.
func (s *service) PayInvoice(ctx context.Context, req *lightningpb.PayInvoiceRequest) (*lightningpb.PayInvoiceResponse, error) {
	if err := s.paymentsEnabled(); err != nil {
		return nil, err
	}
	inv, err := s.node.DecodeInvoice(ctx, req.Invoice)
	if err != nil {
		return nil, err
	}
	if err := s.checkLimit(inv.AmountSat); err != nil {
		return nil, err
	}
	pay, err := s.spend(inv.AmountSat, func(opts lnd.PaymentOptions) (lnd.Payment, error) {
		return s.node.PayInvoice(ctx, inv, opts)
	})
	if err != nil {
		s.logPaymentError("invoice payment failed", inv.PaymentHash, inv.AmountSat, err)
		return nil, err
	}
	s.logPayment("invoice paid", pay)
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
		return nil, err
	}
	if err := s.checkLimit(req.Amount); err != nil {
		return nil, err
	}
	pay, err := s.spend(req.Amount, func(opts lnd.PaymentOptions) (lnd.Payment, error) {
		return s.node.Keysend(ctx, req.Pubkey, req.Amount, opts)
	})
	if err != nil {
		s.logger.Info("keysend failed", zap.Int64("amount_sat", req.Amount), zap.Error(err))
		return nil, err
	}
	s.logPayment("keysend sent", pay)
	return &lightningpb.KeysendResponse{Preimage: hex.EncodeToString(pay.Preimage[:])}, nil
}

// spend runs a payment of amountSat within the budget: it reserves the
// amount plus the fee limit, then books what the payment really cost. A
// payment whose outcome is unknown (the node stopped answering) keeps its
// reservation.
func (s *service) spend(amountSat int64, pay func(lnd.PaymentOptions) (lnd.Payment, error)) (lnd.Payment, error) {
	opts := s.paymentOptions(amountSat)
	reservation, err := s.budget.reserve(amountSat + opts.FeeLimitSat)
	if err != nil {
		return lnd.Payment{}, err
	}
	p, err := pay(opts)
	switch {
	case err == nil && p.Earlier:
		s.budget.settle(reservation, 0)
	case err == nil:
		s.budget.settle(reservation, p.AmountSat+p.FeeSat)
	case !outcomeUnknown(err):
		s.budget.settle(reservation, 0)
	}
	return p, err
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

// checkLimit refuses payments above max_payment; the node client rejects
// amounts that are not positive.
func (s *service) checkLimit(amountSat int64) error {
	if amountSat > s.maxPayment {
		return status.Errorf(codes.PermissionDenied, "amount of %d sat exceeds this server's max_payment of %d sat", amountSat, s.maxPayment)
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

func (s *service) logPayment(msg string, pay lnd.Payment) {
	s.logger.Info(msg,
		zap.String("payment_hash", hex.EncodeToString(pay.PaymentHash[:])),
		zap.Int64("amount_sat", pay.AmountSat),
		zap.Int64("fee_sat", pay.FeeSat))
}

func (s *service) logPaymentError(msg string, hash [32]byte, amountSat int64, err error) {
	s.logger.Info(msg,
		zap.String("payment_hash", hex.EncodeToString(hash[:])),
		zap.Int64("amount_sat", amountSat),
		zap.Error(err))
}
