package payment

import "errors"

// Errors returned by this package. Wrapped errors carry a short, secret-free
// detail; test for the kind with errors.Is. ProblemFor maps each kind to the
// problem type a server answers with.
var (
	// ErrNoCredential means no Payment credential was offered (answer 402
	// with fresh challenges).
	ErrNoCredential = errors.New("payment: no Payment credential")
	// ErrMultipleCredentials means more than one Payment credential was
	// offered in one request (answer 400).
	ErrMultipleCredentials = errors.New("payment: more than one Payment credential")
	// ErrMalformed means a credential, request, receipt, base64url or JSON
	// text could not be decoded, misses a required member, or exceeds a
	// size limit.
	ErrMalformed = errors.New("payment: malformed message")
	// ErrInvalidParameter means a value cannot be formatted or bound: a
	// challenge parameter, request field or receipt field breaks the wire
	// rules (for example a '"' in an auth-param or a '|' in a realm).
	ErrInvalidParameter = errors.New("payment: invalid parameter")
	// ErrUnsupported means the credential answers a method or intent (or a
	// digest-bound challenge) that the verifier does not handle.
	ErrUnsupported = errors.New("payment: unsupported method or intent")
	// ErrWrongRealm means the credential echoes a challenge of another realm.
	ErrWrongRealm = errors.New("payment: challenge of another realm")
	// ErrInvalidChallenge means the echoed challenge id is not the HMAC of
	// the echoed parameters under any of the verifier's secrets: the
	// challenge was not issued here or was altered.
	ErrInvalidChallenge = errors.New("payment: challenge id does not verify")
	// ErrExpired means the echoed challenge has no expiry or its expiry
	// has passed.
	ErrExpired = errors.New("payment: challenge expired")
	// ErrWrongAmount means the challenge's amount is not this route's price
	// (or a deposit does not cover one unit).
	ErrWrongAmount = errors.New("payment: amount does not match the price")
	// ErrInvalidPreimage means sha256(preimage) is not the payment hash the
	// credential must prove.
	ErrInvalidPreimage = errors.New("payment: preimage does not match the payment hash")
	// ErrInvalidReturnInvoice means a session open action carries a return
	// invoice that is not BOLT 11 text.
	ErrInvalidReturnInvoice = errors.New("payment: invalid return invoice")
)
