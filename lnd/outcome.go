package lnd

import (
	"crypto/sha256"
	"time"

	"github.com/lightningcaddy/caddy-lightning/lnd/lndrpc"
)

// Outcome is what the node knows of a payment: Succeeded, Failed or
// Unknown. Only a Succeeded carries a preimage and only a Failed says that
// no money moved, so code that handles neither keeps treating the payment
// as one that may still complete.
type Outcome interface {
	// Hash is the payment hash.
	Hash() [32]byte
	outcome()
}

// Succeeded is a payment the payee settled: the money moved.
type Succeeded struct {
	PaymentHash [32]byte
	// Preimage proves the payment; sha256(Preimage) is PaymentHash.
	Preimage [32]byte
	// AmountSat is what the payee received.
	AmountSat int64
	// FeeSat is what the routing cost.
	FeeSat int64
	// CreatedAt is when the node started the payment.
	CreatedAt time.Time
	// Earlier is true when the node had made (or was making) this payment
	// before the call: the call itself moved no money.
	Earlier bool
}

// Failed is a payment that failed for certain: none of its HTLCs is left
// to settle, so no money moved and it is safe to try again.
type Failed struct {
	PaymentHash [32]byte
	// Reason is why, as lnd says it.
	Reason FailureReason
	// CreatedAt is when the node started the attempt that failed (a
	// payment that failed may be tried again).
	CreatedAt time.Time
}

// Unknown is a payment whose outcome is not known yet: in flight (the
// payee, or a node on the route, has not settled or failed it), or the
// node could not be asked. It may still succeed or fail; TrackPayment
// learns which.
type Unknown struct {
	PaymentHash [32]byte
	// InFlight is true when the node said the payment is in flight.
	InFlight bool
	// Cause says why the outcome is not known.
	Cause error
}

// Hash is the payment hash.
func (s Succeeded) Hash() [32]byte { return s.PaymentHash }

// Hash is the payment hash.
func (f Failed) Hash() [32]byte { return f.PaymentHash }

// Hash is the payment hash.
func (u Unknown) Hash() [32]byte { return u.PaymentHash }

func (Succeeded) outcome() {}
func (Failed) outcome()    {}
func (Unknown) outcome()   {}

// FailureReason is lnd's reason for a failed payment, by its lnd name
// (e.g. "FAILURE_REASON_NO_ROUTE").
type FailureReason string

// lnd's failure reasons.
const (
	FailureTimeout             FailureReason = "FAILURE_REASON_TIMEOUT"
	FailureNoRoute             FailureReason = "FAILURE_REASON_NO_ROUTE"
	FailureError               FailureReason = "FAILURE_REASON_ERROR"
	FailureIncorrectDetails    FailureReason = "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS"
	FailureInsufficientBalance FailureReason = "FAILURE_REASON_INSUFFICIENT_BALANCE"
	FailureCanceled            FailureReason = "FAILURE_REASON_CANCELED"
)

func failureReason(r lndrpc.PaymentFailureReason) FailureReason {
	return FailureReason(r.String())
}

// Describe says what the reason means, in a few words.
func (r FailureReason) Describe() string {
	switch r {
	case FailureTimeout:
		return "no route succeeded before the payment timeout"
	case FailureNoRoute:
		return "no route to the destination within the fee and time-lock limits"
	case FailureError:
		return "the node gave up after an error it cannot recover from"
	case FailureIncorrectDetails:
		return "the destination rejected the payment details (unknown or expired invoice, wrong amount)"
	case FailureInsufficientBalance:
		return "insufficient outbound balance"
	case FailureCanceled:
		return "canceled"
	}
	return string(r)
}

func hashOf(preimage [32]byte) [32]byte { return sha256.Sum256(preimage[:]) }
