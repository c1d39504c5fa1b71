package x402

import (
	"strconv"
	"time"

	"github.com/lightningcaddy/caddy-lightning/internal/errdetail"
)

// Protocol constants of x402 v2 with Lightning.
const (
	// Version is the x402 protocol version implemented.
	Version = 2
	// SchemeExact is the payment scheme: pay exactly the invoice.
	SchemeExact = "exact"
	// AssetBTC is the asset of Lightning offers.
	AssetBTC = "BTC"
	// PayToAnonymous is the payTo of an offer that names no node.
	PayToAnonymous = "anonymous"
	// PaymentMethodLightning marks a Lightning offer in extra.paymentMethod.
	PaymentMethodLightning = "lightning"
	// DefaultError is the error of a PAYMENT-REQUIRED answering a request
	// without payment.
	DefaultError = "PAYMENT-SIGNATURE header is required"
)

// HTTP header names (x402 transports-v2/http).
const (
	HeaderPaymentRequired  = "PAYMENT-REQUIRED"
	HeaderPaymentSignature = "PAYMENT-SIGNATURE"
	HeaderPaymentResponse  = "PAYMENT-RESPONSE"
)

// PaymentRequired is the object of a PAYMENT-REQUIRED header (spec §5.1).
type PaymentRequired struct {
	// X402Version is 2.
	X402Version int `json:"x402Version"`
	// Error says why payment is required (DefaultError, or why a payment
	// was refused).
	Error string `json:"error,omitempty"`
	// Resource is the protected resource; its URL is required.
	Resource Resource `json:"resource"`
	// Accepts lists the offers; Alby pays the first Lightning one.
	Accepts []Requirements `json:"accepts"`
}

// Resource describes the protected resource (spec §5.1.2 ResourceInfo).
type Resource struct {
	// URL of the resource, required.
	URL string `json:"url"`
	// Description is optional display text.
	Description string `json:"description,omitempty"`
	// MimeType is the type of the paid answer, optional.
	MimeType string `json:"mimeType,omitempty"`
}

// Requirements is one offer of the accepts list (spec §5.1.2
// PaymentRequirements), as the Lightning proposal fills it.
type Requirements struct {
	// Scheme is "exact".
	Scheme string `json:"scheme"`
	// Network is the CAIP-2 id of the invoice's network.
	Network string `json:"network"`
	// Amount is the invoice's amount in millisatoshis, a decimal string
	// ("0" for an amountless invoice); Alby refuses any other value.
	Amount string `json:"amount"`
	// Asset is "BTC".
	Asset string `json:"asset"`
	// PayTo is "anonymous" or the node's public key in hex.
	PayTo string `json:"payTo"`
	// MaxTimeoutSeconds is at most the invoice's expiry.
	MaxTimeoutSeconds int64 `json:"maxTimeoutSeconds"`
	// Extra carries the Lightning method and the invoice.
	Extra Extra `json:"extra"`
}

// Extra is the extra object of a Lightning offer.
type Extra struct {
	// PaymentMethod is "lightning".
	PaymentMethod string `json:"paymentMethod"`
	// Invoice is the BOLT 11 invoice to pay.
	Invoice string `json:"invoice"`
	// Binding is the server's proof that it made this offer (for
	// instance an HMAC over the invoice's payment hash, the amount and
	// the route), opaque to clients, which echo the offer as received;
	// omitted when empty.
	Binding string `json:"binding,omitempty"`
}

// Offer is what a server knows of an invoice it offers over x402.
type Offer struct {
	// Network is the invoice's network as lnd names it: "mainnet",
	// "testnet", "signet" or "regtest".
	Network string
	// Invoice is the BOLT 11 invoice.
	Invoice string
	// AmountMsat is the invoice's amount in millisatoshis (0 if it has
	// none).
	AmountMsat int64
	// Expiry is the invoice's expiry (from its creation), > 0.
	Expiry time.Duration
	// MaxTimeout is how long the client may take to pay; 0 means Expiry.
	// It must not exceed Expiry.
	MaxTimeout time.Duration
	// PayTo is the node's public key in hex (66 digits), or empty for
	// "anonymous" (which keeps node details from anonymous clients).
	PayTo string
	// Binding goes into extra.binding; see Extra.
	Binding string
}

// Requirements returns the accepts entry of the offer. Errors are
// ErrInvalidParameter.
func (o Offer) Requirements() (Requirements, error) {
	network, err := NetworkID(o.Network)
	if err != nil {
		return Requirements{}, err
	}
	timeout := o.MaxTimeout
	if timeout == 0 {
		timeout = o.Expiry
	}
	switch {
	case !isInvoiceText(o.Invoice):
		return Requirements{}, errdetail.New(ErrInvalidParameter, "invoice is not BOLT 11 text")
	case o.AmountMsat < 0:
		return Requirements{}, errdetail.New(ErrInvalidParameter, "negative amount")
	case o.Expiry <= 0 || timeout < time.Second || timeout > o.Expiry:
		return Requirements{}, errdetail.New(ErrInvalidParameter, "max timeout must be between 1 s and the invoice expiry")
	}
	payTo := PayToAnonymous
	if o.PayTo != "" {
		if !isPubKeyHex(o.PayTo) {
			return Requirements{}, errdetail.New(ErrInvalidParameter, "payTo is not a node public key in hex")
		}
		payTo = o.PayTo
	}
	return Requirements{
		Scheme:            SchemeExact,
		Network:           network,
		Amount:            strconv.FormatInt(o.AmountMsat, 10),
		Asset:             AssetBTC,
		PayTo:             payTo,
		MaxTimeoutSeconds: int64(timeout / time.Second),
		Extra:             Extra{PaymentMethod: PaymentMethodLightning, Invoice: o.Invoice, Binding: o.Binding},
	}, nil
}

func isPubKeyHex(s string) bool {
	if len(s) != 66 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// checkLightning checks a Lightning offer's structure.
func (r *Requirements) checkLightning() error {
	switch {
	case r.Scheme != SchemeExact || r.Extra.PaymentMethod != PaymentMethodLightning || r.Asset != AssetBTC:
		return errdetail.New(ErrScheme, "not an exact Lightning offer in BTC")
	case !knownNetwork(r.Network):
		return errdetail.New(ErrNetwork, "unknown network "+errdetail.Quote(r.Network))
	case !isDecimal(r.Amount):
		return errdetail.New(ErrMalformed, "amount is not a decimal msat string")
	case !isInvoiceText(r.Extra.Invoice):
		return errdetail.New(ErrMalformed, "invoice is not BOLT 11 text")
	case r.MaxTimeoutSeconds <= 0:
		return errdetail.New(ErrMalformed, "maxTimeoutSeconds must be positive")
	case r.PayTo != PayToAnonymous && !isPubKeyHex(r.PayTo):
		return errdetail.New(ErrMalformed, "payTo is neither anonymous nor a node public key")
	}
	return nil
}

// Encode returns the PAYMENT-REQUIRED header value: standard base64 of the
// JSON. X402Version 0 is written as 2; the resource URL and at least one
// offer are required, and every Lightning offer must be well formed.
// Errors are ErrInvalidParameter.
func (p PaymentRequired) Encode() (string, error) {
	if p.X402Version == 0 {
		p.X402Version = Version
	}
	switch {
	case p.X402Version != Version:
		return "", errdetail.New(ErrInvalidParameter, "x402Version must be 2")
	case p.Resource.URL == "":
		return "", errdetail.New(ErrInvalidParameter, "resource.url is required")
	case len(p.Accepts) == 0:
		return "", errdetail.New(ErrInvalidParameter, "no offer")
	}
	for i := range p.Accepts {
		if p.Accepts[i].Extra.PaymentMethod != PaymentMethodLightning {
			continue
		}
		if err := p.Accepts[i].checkLightning(); err != nil {
			return "", errdetail.New(ErrInvalidParameter, err.Error())
		}
	}
	return encodeHeader(p)
}

// DecodePaymentRequired decodes a PAYMENT-REQUIRED header value, for clients
// and tests. It requires x402Version 2, a resource URL and at least one
// offer. Errors are ErrMalformed or ErrVersion.
func DecodePaymentRequired(s string) (PaymentRequired, error) {
	var p PaymentRequired
	if err := decodeHeader(s, &p); err != nil {
		return PaymentRequired{}, err
	}
	switch {
	case p.X402Version != Version:
		return PaymentRequired{}, errdetail.New(ErrVersion, strconv.Itoa(p.X402Version))
	case p.Resource.URL == "" || len(p.Accepts) == 0:
		return PaymentRequired{}, errdetail.New(ErrMalformed, "resource.url and accepts are required")
	}
	return p, nil
}
