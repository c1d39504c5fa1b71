package lnd

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningcaddy/caddy-lightning/lnd/lndrpc"
	"github.com/lightningnetwork/lnd/zpay32"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// MaxMemoBytes is the longest memo an invoice can carry: LND accepts 1024
// bytes, but a BOLT 11 description field holds at most 639.
const MaxMemoBytes = 639

// maxInvoiceLen bounds the BOLT 11 strings the client decodes.
const maxInvoiceLen = 7089

// now is the clock used for invoice expiry; tests replace it.
var now = time.Now

// Invoice is a BOLT 11 payment request, decoded.
type Invoice struct {
	// PaymentRequest is the BOLT 11 string.
	PaymentRequest string
	// PaymentHash is the hash the payer learns the preimage of.
	PaymentHash [32]byte
	// AmountSat is the amount asked for; 0 for a zero-amount invoice.
	AmountSat int64
	// Payee is the hex public key of the node to be paid.
	Payee string
	// ExpiresAt is when the invoice stops being payable.
	ExpiresAt time.Time
	// AddIndex orders the node's own invoices (set by CreateInvoice only).
	AddIndex uint64
}

// InvoiceState is what the node knows of one of its invoices.
type InvoiceState int

// Invoice states, as LND reports them.
const (
	InvoiceOpen InvoiceState = iota
	InvoiceSettled
	InvoiceCanceled
	InvoiceAccepted
)

// DefaultInvoiceExpiry is how long an invoice can be paid when
// CreateInvoice is given no expiry. lnd's own default (24 h) is never
// relied on: every invoice states its expiry.
const DefaultInvoiceExpiry = time.Hour

// CreateInvoice asks the node for an invoice of amountSat with memo,
// payable for expiry: whole seconds, rounded up, at least one (0 means
// DefaultInvoiceExpiry), with route hints as Config.RouteHints says.
func (c *Client) CreateInvoice(ctx context.Context, amountSat int64, memo string, expiry time.Duration) (Invoice, error) {
	if amountSat <= 0 {
		return Invoice{}, status.Error(codes.InvalidArgument, "amount must be a positive number of satoshis")
	}
	if len(memo) > MaxMemoBytes {
		return Invoice{}, status.Errorf(codes.InvalidArgument, "memo is %d bytes, the limit is %d", len(memo), MaxMemoBytes)
	}
	if expiry == 0 {
		expiry = DefaultInvoiceExpiry
	}
	if expiry < time.Second {
		return Invoice{}, status.Error(codes.InvalidArgument, "invoice expiry must be at least one second")
	}
	seconds := wholeSeconds(expiry)
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	created := now()
	resp, err := c.rpc.AddInvoice(ctx, &lndrpc.Invoice{
		Value:   amountSat,
		Memo:    memo,
		Expiry:  seconds,
		Private: c.routeHints(ctx, amountSat),
	})
	if err != nil {
		return Invoice{}, nodeError("add invoice", err)
	}
	inv := Invoice{
		PaymentRequest: resp.PaymentRequest,
		AmountSat:      amountSat,
		AddIndex:       resp.AddIndex,
		ExpiresAt:      created.Add(time.Duration(seconds) * time.Second),
	}
	if copy(inv.PaymentHash[:], resp.RHash) != len(inv.PaymentHash) {
		return Invoice{}, status.Errorf(codes.Internal, "node returned a %d-byte payment hash", len(resp.RHash))
	}
	c.learnNetwork(resp.PaymentRequest)
	return inv, nil
}

// DecodeInvoice parses a BOLT 11 invoice and checks that it is for the
// node's network. The network comes from GetInfo (asked once) or, when the
// macaroon may not call GetInfo, from the invoices the node made; until
// one is seen, the invoice is decoded for the network it names, and a
// lookup on the node is what tells whether it is the node's.
func (c *Client) DecodeInvoice(ctx context.Context, invoice string) (Invoice, error) {
	params, err := c.network(ctx)
	if err != nil {
		return Invoice{}, err
	}
	if inv := trimInvoice(invoice); params == nil && len(inv) <= maxInvoiceLen {
		params = networks[invoiceNetwork(inv, nil)]
	}
	if params == nil {
		params = &chaincfg.MainNetParams // the error will say what is wrong
	}
	return DecodeInvoice(invoice, params)
}

// DecodeInvoice parses a BOLT 11 invoice for the network params. Errors have
// code InvalidArgument and say what is wrong, including which network an
// invoice for another network is for.
func DecodeInvoice(invoice string, params *chaincfg.Params) (Invoice, error) {
	invoice = trimInvoice(invoice)
	if invoice == "" {
		return Invoice{}, status.Error(codes.InvalidArgument, "invoice is required")
	}
	if len(invoice) > maxInvoiceLen {
		return Invoice{}, status.Errorf(codes.InvalidArgument, "invoice is longer than %d characters", maxInvoiceLen)
	}
	decoded, err := zpay32.Decode(invoice, params)
	if err != nil {
		if other := invoiceNetwork(invoice, params); other != "" {
			return Invoice{}, status.Errorf(codes.InvalidArgument,
				"invoice is for %s, the node is on %s", other, networkName(params))
		}
		return Invoice{}, status.Errorf(codes.InvalidArgument, "invalid invoice: %v", err)
	}
	if decoded.PaymentHash == nil {
		return Invoice{}, status.Error(codes.InvalidArgument, "invalid invoice: no payment hash")
	}
	if decoded.PaymentAddr.IsNone() && len(decoded.BlindedPaymentPaths) == 0 {
		return Invoice{}, status.Error(codes.InvalidArgument, "invalid invoice: it has no payment address, which LND requires")
	}
	inv := Invoice{
		PaymentRequest: invoice,
		PaymentHash:    *decoded.PaymentHash,
		ExpiresAt:      decoded.Timestamp.Add(decoded.Expiry()),
	}
	if decoded.MilliSat != nil {
		inv.AmountSat = int64(decoded.MilliSat.ToSatoshis())
	}
	if decoded.Destination != nil {
		inv.Payee = fmt.Sprintf("%x", decoded.Destination.SerializeCompressed())
	}
	return inv, nil
}

// trimInvoice removes spaces around an invoice and a "lightning:" prefix.
func trimInvoice(invoice string) string {
	invoice = strings.TrimSpace(invoice)
	if len(invoice) > 10 && strings.EqualFold(invoice[:10], "lightning:") {
		return invoice[10:]
	}
	return invoice
}

// invoiceNetwork names the network, other than params (nil: any), that
// invoice decodes for, or "" if none does.
func invoiceNetwork(invoice string, params *chaincfg.Params) string {
	for _, name := range networkOrder {
		other := networks[name]
		if params != nil && (other == params || other.Bech32HRPSegwit == params.Bech32HRPSegwit) {
			continue
		}
		if _, err := zpay32.Decode(invoice, other); err == nil {
			return name
		}
	}
	return ""
}

// InvoiceStatus is what the node says of one of its invoices.
type InvoiceStatus struct {
	// State is the invoice's state. A paid AMP invoice, which lnd keeps
	// open for further payments, is InvoiceSettled.
	State InvoiceState
	// Preimage is the payment's proof, known once the invoice is settled
	// (an AMP invoice has none: each of its payments has its own).
	Preimage [32]byte
	// AmountPaidSat is what was paid, once settled.
	AmountPaidSat int64
}

// LookupInvoice reports the status of the node's invoice with paymentHash:
// one indexed lookup, whatever the number of invoices. An unknown hash is a
// NotFound error.
func (c *Client) LookupInvoice(ctx context.Context, paymentHash [32]byte) (InvoiceStatus, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.rpc.LookupInvoice(ctx, &lndrpc.PaymentHash{RHash: paymentHash[:]})
	if err != nil {
		if status.Code(err) == codes.NotFound {
			return InvoiceStatus{}, status.Error(codes.NotFound, "no invoice with this payment hash on the node")
		}
		return InvoiceStatus{}, nodeError("lookup invoice", err)
	}
	c.learnNetwork(resp.PaymentRequest)
	var st InvoiceStatus
	switch {
	case resp.State == lndrpc.Invoice_SETTLED || ampSettled(resp):
		st.State = InvoiceSettled
		st.AmountPaidSat = resp.AmtPaidSat
		copy(st.Preimage[:], resp.RPreimage)
	case resp.State == lndrpc.Invoice_CANCELED:
		st.State = InvoiceCanceled
	case resp.State == lndrpc.Invoice_ACCEPTED:
		st.State = InvoiceAccepted
	default:
		st.State = InvoiceOpen
	}
	return st, nil
}

// ampSettled reports whether an AMP invoice was paid. lnd keeps such an
// invoice OPEN, as it may be paid again, and reports each payment as a
// settled HTLC set (when it lists them) and in amt_paid.
func ampSettled(inv *lndrpc.Invoice) bool {
	if !inv.IsAmp {
		return false
	}
	for _, set := range inv.AmpInvoiceState {
		if set.State == lndrpc.InvoiceHTLCState_SETTLED {
			return true
		}
	}
	return inv.AmtPaidSat > 0
}

// CheckInvoice reports whether the node's invoice was paid: it decodes the
// invoice locally, then looks it up by payment hash.
func (c *Client) CheckInvoice(ctx context.Context, invoice string) (bool, error) {
	inv, err := c.DecodeInvoice(ctx, invoice)
	if err != nil {
		return false, err
	}
	st, err := c.LookupInvoice(ctx, inv.PaymentHash)
	if err != nil {
		return false, err
	}
	return st.State == InvoiceSettled, nil
}
