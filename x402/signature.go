package x402

import (
	"strconv"

	"github.com/lightningcaddy/caddy-lightning/internal/errdetail"
)

// PaymentPayload is the object of a PAYMENT-SIGNATURE header (spec §5.2) as
// Alby sends it for a Lightning offer: built before paying, with the
// invoice and no preimage.
type PaymentPayload struct {
	// X402Version is 2.
	X402Version int `json:"x402Version"`
	// Scheme and Network repeat the accepted offer's (Alby sends them;
	// the v2 schema does not require them). When present they must match.
	Scheme  string `json:"scheme,omitempty"`
	Network string `json:"network,omitempty"`
	// Resource is optional in v2; Alby leaves it out.
	Resource *Resource `json:"resource,omitempty"`
	// Accepted is the offer as the client received it.
	Accepted Requirements `json:"accepted"`
	// Payload holds the paid invoice.
	Payload LightningPayload `json:"payload"`
}

// LightningPayload is the payload of a Lightning payment.
type LightningPayload struct {
	// Invoice is the BOLT 11 invoice the client paid.
	Invoice string `json:"invoice"`
}

// ParsePaymentSignature decodes a PAYMENT-SIGNATURE header value and checks
// its structure for this server's network (a CAIP-2 id such as
// NetworkRegtest): as DecodePaymentSignature does, and accepted.network
// equal to network. The invoice to look up is p.Payload.Invoice: the
// caller must find it among the invoices it minted for x402 on this route,
// compare p.Accepted.Amount with that record, see it settled on the node
// and consume it once. Errors: ErrMalformed (answer 400), ErrVersion,
// ErrScheme, ErrNetwork, ErrMismatch (answer 402); see ErrorReason.
func ParsePaymentSignature(value, network string) (PaymentPayload, error) {
	p, err := DecodePaymentSignature(value)
	if err == nil && p.Accepted.Network != network {
		return PaymentPayload{}, errdetail.New(ErrNetwork, "payment for "+errdetail.Quote(p.Accepted.Network))
	}
	return p, err
}

// DecodePaymentSignature decodes a PAYMENT-SIGNATURE header value and checks
// its structure, for a server that learns its network from the offer (and
// then proves the offer its own, with Extra.Binding): x402Version 2, an
// exact Lightning offer in BTC on a known network, network (if sent) equal
// to accepted.network, scheme (if sent) "exact", a decimal amount, and
// payload.invoice equal to accepted.extra.invoice. Errors as
// ParsePaymentSignature's.
func DecodePaymentSignature(value string) (PaymentPayload, error) {
	var p PaymentPayload
	if err := decodeHeader(value, &p); err != nil {
		return PaymentPayload{}, err
	}
	a := &p.Accepted
	switch {
	case p.X402Version != Version:
		return PaymentPayload{}, errdetail.New(ErrVersion, strconv.Itoa(p.X402Version))
	case p.Scheme != "" && p.Scheme != a.Scheme:
		return PaymentPayload{}, errdetail.New(ErrScheme, "scheme differs from the accepted offer's")
	case p.Network != "" && p.Network != a.Network:
		return PaymentPayload{}, errdetail.New(ErrNetwork, "network differs from the accepted offer's")
	}
	if err := a.checkLightning(); err != nil {
		return PaymentPayload{}, err
	}
	switch {
	case !isInvoiceText(p.Payload.Invoice):
		return PaymentPayload{}, errdetail.New(ErrMalformed, "payload.invoice is not BOLT 11 text")
	case p.Payload.Invoice != a.Extra.Invoice:
		return PaymentPayload{}, errdetail.New(ErrMismatch, "payload.invoice is not accepted.extra.invoice")
	}
	return p, nil
}

// Encode returns the PAYMENT-SIGNATURE header value for p, as a client
// (and the tests) send it. Errors are ErrInvalidParameter.
func (p PaymentPayload) Encode() (string, error) {
	if p.X402Version == 0 {
		p.X402Version = Version
	}
	if p.X402Version != Version || !isInvoiceText(p.Payload.Invoice) {
		return "", errdetail.New(ErrInvalidParameter, "x402Version 2 and a payload invoice are required")
	}
	return encodeHeader(p)
}
