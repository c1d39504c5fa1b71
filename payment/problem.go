package payment

import (
	"encoding/json"
	"errors"
	"net/http"
)

// Problem details (RFC 9457) of the Payment scheme.
const (
	// ProblemContentType is the media type of a Problem body.
	ProblemContentType = "application/problem+json"
	// ProblemBase is the base URI of the problem types
	// (draft-httpauth-payment-00 §8.1).
	ProblemBase = "https://paymentauth.org/problems/"
)

// ProblemType names a problem type: the part of its URI after ProblemBase.
type ProblemType string

// The problem types of draft-httpauth-payment-00 §8.2 and of the Lightning
// intents (draft-lightning-charge-00 §11, draft-lightning-session-00 §16).
const (
	ProblemPaymentRequired     ProblemType = "payment-required"
	ProblemPaymentInsufficient ProblemType = "payment-insufficient"
	ProblemPaymentExpired      ProblemType = "payment-expired"
	ProblemVerificationFailed  ProblemType = "verification-failed"
	ProblemMethodUnsupported   ProblemType = "method-unsupported"
	ProblemMalformedCredential ProblemType = "malformed-credential"
	ProblemInvalidChallenge    ProblemType = "invalid-challenge"

	ProblemLightningMalformedCredential  ProblemType = "lightning/malformed-credential"
	ProblemLightningUnknownChallenge     ProblemType = "lightning/unknown-challenge"
	ProblemLightningInvalidPreimage      ProblemType = "lightning/invalid-preimage"
	ProblemLightningExpiredInvoice       ProblemType = "lightning/expired-invoice"
	ProblemLightningSessionNotFound      ProblemType = "lightning/session-not-found"
	ProblemLightningSessionClosed        ProblemType = "lightning/session-closed"
	ProblemLightningInsufficientBalance  ProblemType = "lightning/insufficient-balance"
	ProblemLightningChallengeExpired     ProblemType = "lightning/challenge-expired"
	ProblemLightningInvalidReturnInvoice ProblemType = "lightning/invalid-return-invoice"
)

var problemTitles = map[ProblemType]string{
	ProblemPaymentRequired:     "Payment Required",
	ProblemPaymentInsufficient: "Insufficient Payment",
	ProblemPaymentExpired:      "Payment Expired",
	ProblemVerificationFailed:  "Payment Verification Failed",
	ProblemMethodUnsupported:   "Payment Method Unsupported",
	ProblemMalformedCredential: "Malformed Payment Credential",
	ProblemInvalidChallenge:    "Invalid Payment Challenge",

	ProblemLightningMalformedCredential:  "Malformed Credential",
	ProblemLightningUnknownChallenge:     "Unknown Challenge",
	ProblemLightningInvalidPreimage:      "Invalid Preimage",
	ProblemLightningExpiredInvoice:       "Expired Invoice",
	ProblemLightningSessionNotFound:      "Session Not Found",
	ProblemLightningSessionClosed:        "Session Closed",
	ProblemLightningInsufficientBalance:  "Insufficient Balance",
	ProblemLightningChallengeExpired:     "Challenge Expired",
	ProblemLightningInvalidReturnInvoice: "Invalid Return Invoice",
}

// URI returns the problem type's URI.
func (t ProblemType) URI() string { return ProblemBase + string(t) }

// Title returns the problem type's short summary.
func (t ProblemType) Title() string { return problemTitles[t] }

// Status returns the problem type's HTTP status: 400 for
// method-unsupported, 402 (with fresh challenges) for every other type, as
// draft-httpauth-payment-00 §4.2 and §8.2 and draft-lightning-session-00
// §16 say. draft-lightning-charge-00 §11 gives 400 and 401 for its types;
// this package follows the core draft there (see the divergence notes in
// testdata/README.md).
func (t ProblemType) Status() int {
	if t == ProblemMethodUnsupported {
		return http.StatusBadRequest
	}
	return http.StatusPaymentRequired
}

// Problem is an RFC 9457 problem details object of the Payment scheme
// (draft-httpauth-payment-00 §8.1), with the challengeId extension member.
type Problem struct {
	// Type is the problem type's URI.
	Type string `json:"type"`
	// Title is the type's short summary.
	Title string `json:"title"`
	// Status is the HTTP status code of the answer.
	Status int `json:"status"`
	// Detail explains this occurrence; never secret.
	Detail string `json:"detail,omitempty"`
	// ChallengeID is the id of the fresh challenge sent with the problem,
	// if any.
	ChallengeID string `json:"challengeId,omitempty"`
}

// NewProblem returns a Problem of type t with the type's title and status.
func NewProblem(t ProblemType, detail string) Problem {
	return Problem{Type: t.URI(), Title: t.Title(), Status: t.Status(), Detail: detail}
}

// JSON returns the problem's JSON body (of ProblemContentType).
func (p Problem) JSON() []byte {
	b, _ := json.Marshal(p) // strings and an int: cannot fail
	return b
}

// ProblemFor maps an error of this package to the Problem a server answers
// with, for a credential of the given intent ("charge" or "session"; it
// picks the expiry type): ErrNoCredential is payment-required;
// ErrMultipleCredentials is malformed-credential with status 400;
// ErrUnsupported is method-unsupported (400); ErrMalformed,
// ErrWrongRealm/ErrInvalidChallenge, ErrInvalidPreimage and
// ErrInvalidReturnInvoice are the lightning types; ErrExpired is
// lightning/expired-invoice (charge) or lightning/challenge-expired
// (session); anything else is verification-failed. The detail is the
// error's text, which this package keeps free of secrets.
func ProblemFor(err error, intent string) Problem {
	var t ProblemType
	status := 0
	switch {
	case errors.Is(err, ErrNoCredential):
		t = ProblemPaymentRequired
	case errors.Is(err, ErrMultipleCredentials):
		t, status = ProblemMalformedCredential, http.StatusBadRequest
	case errors.Is(err, ErrUnsupported):
		t = ProblemMethodUnsupported
	case errors.Is(err, ErrMalformed):
		t = ProblemLightningMalformedCredential
	case errors.Is(err, ErrWrongRealm), errors.Is(err, ErrInvalidChallenge):
		t = ProblemLightningUnknownChallenge
	case errors.Is(err, ErrExpired) && intent == IntentSession:
		t = ProblemLightningChallengeExpired
	case errors.Is(err, ErrExpired):
		t = ProblemLightningExpiredInvoice
	case errors.Is(err, ErrInvalidPreimage):
		t = ProblemLightningInvalidPreimage
	case errors.Is(err, ErrInvalidReturnInvoice):
		t = ProblemLightningInvalidReturnInvoice
	default:
		t = ProblemVerificationFailed
	}
	p := NewProblem(t, "")
	if err != nil {
		p.Detail = err.Error()
	}
	if status != 0 {
		p.Status = status
	}
	return p
}
