package x402

import "errors"

// Errors returned by this package. Wrapped errors carry a short detail;
// test for the kind with errors.Is. ErrMalformed answers 400; the others
// answer 402 with a fresh PAYMENT-REQUIRED (whose error says why).
var (
	// ErrMalformed means a header is not standard base64 of a JSON object
	// of the expected shape, misses a required member, or is too long.
	ErrMalformed = errors.New("x402: malformed header")
	// ErrInvalidParameter means a value cannot be encoded (an encoder's
	// input breaks the wire rules).
	ErrInvalidParameter = errors.New("x402: invalid parameter")
	// ErrVersion means the payment is for another x402 version than 2.
	ErrVersion = errors.New("x402: unsupported x402Version")
	// ErrScheme means the payment is not for the "exact" Lightning offer.
	ErrScheme = errors.New("x402: unsupported scheme or payment method")
	// ErrNetwork means the payment is for another network.
	ErrNetwork = errors.New("x402: payment for another network")
	// ErrMismatch means the paid invoice is not the invoice of the offer
	// the payment claims to accept.
	ErrMismatch = errors.New("x402: payload does not match the accepted offer")
)

// Error reasons of x402 v2 §9, for SettlementResponse.ErrorReason.
const (
	ReasonInvalidPayload     = "invalid_payload"
	ReasonInvalidNetwork     = "invalid_network"
	ReasonUnsupportedScheme  = "unsupported_scheme"
	ReasonInvalidVersion     = "invalid_x402_version"
	ReasonInvalidTransaction = "invalid_transaction_state"
	ReasonUnexpectedSettle   = "unexpected_settle_error"
)

// ErrorReason maps an error of ParsePaymentSignature to an x402 error
// reason: invalid_x402_version, unsupported_scheme, invalid_network, or
// invalid_payload for anything else.
func ErrorReason(err error) string {
	switch {
	case errors.Is(err, ErrVersion):
		return ReasonInvalidVersion
	case errors.Is(err, ErrScheme):
		return ReasonUnsupportedScheme
	case errors.Is(err, ErrNetwork):
		return ReasonInvalidNetwork
	}
	return ReasonInvalidPayload
}
