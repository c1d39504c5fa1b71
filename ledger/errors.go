package ledger

import (
	"errors"
	"fmt"
)

// Errors of every backend. Wrapped errors carry a short, secret-free
// detail; test for the kind with errors.Is.
var (
	// ErrUnavailable means the backend could not be reached or could not
	// store a change in time: the operation may or may not have taken
	// effect in Redis, and did not in memory. Fail closed (503 and
	// Retry-After); never admit on it.
	ErrUnavailable = errors.New("ledger: unavailable")
	// ErrInsufficient means the balance does not cover a draw or
	// reservation; the error is an *InsufficientError with the figures.
	ErrInsufficient = errors.New("ledger: insufficient balance")
	// ErrNotFound means no such account, session or hold.
	ErrNotFound = errors.New("ledger: not found")
	// ErrPaymentUsed means the payment hash was already claimed, or
	// credited to another account or session: one payment is redeemed once.
	ErrPaymentUsed = errors.New("ledger: payment already used")
	// ErrClosed means the session is closed: nothing more is drawn from,
	// credited to or refunded from it.
	ErrClosed = errors.New("ledger: session closed")
	// ErrInvalid means an argument is out of range (an amount, an id, a
	// claim's until) or the operation does not fit the state (recording
	// the refund of an open session).
	ErrInvalid = errors.New("ledger: invalid request")
	// ErrCorrupt means stored state or a backend's reply is not what this
	// package writes: a bug, or another program sharing the keys.
	ErrCorrupt = errors.New("ledger: corrupt state")
)

// InsufficientError is a refused draw or reservation. It matches
// ErrInsufficient.
type InsufficientError struct {
	// Account is the account or session drawn from.
	Account string
	// Needed is the amount asked for.
	Needed int64
	// Available is what the account had: below zero when a reported cost
	// overran its balance.
	Available int64
}

func (e *InsufficientError) Error() string {
	return fmt.Sprintf("%v: account %s needs %d sats, has %d", ErrInsufficient, e.Account, e.Needed, e.Available)
}

// Is makes the error match ErrInsufficient.
func (e *InsufficientError) Is(target error) bool { return target == ErrInsufficient }

// Shortfall is what the account lacks for the amount asked.
func (e *InsufficientError) Shortfall() int64 { return e.Needed - e.Available }
