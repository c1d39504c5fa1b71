package ledger

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"
)

// Ledger is what every backend implements: the atomic operations on
// single-use payments, prepaid balances and sessions. Every method that may
// do I/O takes a context; each operation is one atomic step of the backend,
// so concurrent callers (and, with a shared backend, other instances) never
// admit more than was paid. Errors match the sentinels of this package with
// errors.Is.
type Ledger interface {
	// Claim spends a single-use payment: it reports first=true for exactly
	// one call per payment hash, whatever the number of concurrent or later
	// presentations, and false once the hash was claimed or credited to an
	// account. The claim is remembered until until (which must be in the
	// future) and may be forgotten after it, so the caller must refuse the
	// credential from then on.
	Claim(ctx context.Context, payment Hash, until time.Time) (first bool, err error)

	// Credit adds sats to the prepaid account, creating it, once per
	// payment hash: credited is false, with no error, when this payment was
	// already credited to this account. A payment claimed or credited to
	// another account gives ErrPaymentUsed, a closed session ErrClosed.
	// Credits are durable when Credit returns.
	Credit(ctx context.Context, account string, payment Hash, sats int64) (credited bool, err error)
	// Draw takes sats from the account if its available balance covers
	// them, and returns what remains. Otherwise it takes nothing and fails
	// with an *InsufficientError (matching ErrInsufficient): a draw never
	// takes the balance below zero.
	Draw(ctx context.Context, account string, sats int64) (remaining int64, err error)
	// Reserve holds sats of the account for a request whose real cost is
	// known only when it ends, as Draw would take them, and returns the
	// hold. Settle it exactly once.
	Reserve(ctx context.Context, account string, sats int64) (Hold, error)
	// Settle ends a hold, charging cost instead of the held sats (0 releases
	// the hold), and returns what remains. A cost above the hold is charged
	// in full even if the balance then goes below zero: the overage is a
	// debt that the account's next credit pays first. On a closed session
	// the charge is capped at the hold (the rest was refunded). A hold that
	// is unknown (settled before, or expired: see the backends'
	// HoldTimeout) gives ErrNotFound and charges nothing.
	Settle(ctx context.Context, h Hold, cost int64) (remaining int64, err error)
	// Balance returns the available balance of an account: credited minus
	// spent minus held; 0 for a closed session.
	Balance(ctx context.Context, account string) (int64, error)

	// OpenSession opens the session of a deposit: its id is
	// deposit.String(), its balance the deposit's sats, and returnInvoice
	// the invoice its refund is paid to. Opening again with the same
	// deposit reports opened=false and changes nothing; a deposit claimed
	// or credited elsewhere gives ErrPaymentUsed. Durable on return.
	OpenSession(ctx context.Context, deposit Hash, sats int64, returnInvoice string) (opened bool, err error)
	// TopUp credits an open session once per payment hash, as Credit does
	// an account, but never creates one: ErrNotFound for an unknown
	// session, ErrClosed for a closed one. Durable on return.
	TopUp(ctx context.Context, session string, payment Hash, sats int64) (credited bool, err error)
	// CloseSession closes an open session and returns its refund, deposit
	// minus spent minus held (never below 0), exactly once: the session is
	// marked closed in the same step, and a later close gets ErrClosed. Pay
	// the refund only when err is nil, then record the outcome with
	// RecordRefund. Durable on return; closed sessions are kept.
	CloseSession(ctx context.Context, session string) (refund int64, err error)
	// RecordRefund records the outcome of a closed session's refund
	// payment. It is accepted while the refund is pending or unknown;
	// succeeded and failed are final (ErrInvalid after them). Durable on
	// return.
	RecordRefund(ctx context.Context, session string, r Refund) error
	// Session returns the state of a session (ErrNotFound if none).
	Session(ctx context.Context, session string) (Session, error)
	// IdleSessions returns the ids of up to limit open sessions whose last
	// activity (open, draw, reserve, settle, top-up) is at least idle ago by
	// the backend's clock, least recently active first.
	IdleSessions(ctx context.Context, idle time.Duration, limit int) ([]string, error)
}

// Hash is a Lightning payment hash.
type Hash [32]byte

// String returns the hash in lowercase hex, as lnd prints it; it is also
// the id of the session a deposit with this hash opens.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// ParseHash parses a payment hash from 64 hex digits.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return h, fmt.Errorf("%w: payment hash must be 64 hex digits", ErrInvalid)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("%w: payment hash must be 64 hex digits", ErrInvalid)
	}
	return h, nil
}

// Hold is sats reserved from an account by Reserve, to be settled once.
type Hold struct {
	// Account is the account or session the sats are held from.
	Account string
	// ID tells this hold from the account's others.
	ID uint64
	// Sats is the amount held.
	Sats int64
	// Remaining is the account's available balance once the hold was taken.
	Remaining int64
}

// Session is the state of a Lightning session (draft-lightning-session).
type Session struct {
	// ID is the hex payment hash of the opening deposit.
	ID string
	// Deposit is every sat credited: the opening deposit and the top-ups.
	Deposit int64
	// Spent is what draws and settled holds took.
	Spent int64
	// Held is what requests in flight hold.
	Held int64
	// Closed reports whether the session was closed.
	Closed bool
	// ReturnInvoice is the invoice the refund is paid to.
	ReturnInvoice string
	// OpenedAt, LastActivity and ClosedAt (zero while open) are in
	// milliseconds.
	OpenedAt, LastActivity, ClosedAt time.Time
	// Refund is what closing the session owed the client.
	Refund int64
	// RefundStatus is empty while open.
	RefundStatus RefundStatus
	// RefundPayment is the payment hash of the refund, once recorded.
	RefundPayment Hash
}

// Available is what the session can still spend (0 once closed).
func (s Session) Available() int64 {
	if s.Closed {
		return 0
	}
	return s.Deposit - s.Spent - s.Held
}

// RefundStatus is where a closed session's refund stands.
type RefundStatus string

// Refund statuses. A refund is pending from the close until an outcome is
// recorded; a pending refund after a restart means the payment may or may
// not have started: look it up by the return invoice's payment hash, never
// pay it again blindly.
const (
	RefundPending   RefundStatus = "pending"
	RefundSkipped   RefundStatus = "skipped" // nothing to refund
	RefundSucceeded RefundStatus = "succeeded"
	RefundFailed    RefundStatus = "failed"
	RefundUnknown   RefundStatus = "unknown" // the payment's outcome is not known yet
)

// Refund is the outcome of a refund payment, for RecordRefund.
type Refund struct {
	// Status is RefundSucceeded, RefundFailed or RefundUnknown.
	Status RefundStatus
	// Payment is the refund payment's hash.
	Payment Hash
}

// MaxSats bounds every amount: 21 million bitcoin. Larger amounts are
// ErrInvalid, which also keeps sums exact in Redis's Lua numbers.
const MaxSats = 21_000_000 * 100_000_000

// maxIDLen and maxInvoiceLen bound what a backend stores per account.
const (
	maxIDLen      = 128
	maxInvoiceLen = 8192
)

// CheckAccount checks an account or session id: 1 to 128 of A-Z, a-z, 0-9,
// '-' and '_', so it is safe in storage keys and file names.
func CheckAccount(id string) error {
	if id == "" || len(id) > maxIDLen {
		return fmt.Errorf("%w: account id must be 1 to %d characters", ErrInvalid, maxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%w: account id may hold only A-Z, a-z, 0-9, '-' and '_'", ErrInvalid)
		}
	}
	return nil
}

// CheckSats checks an amount to credit, draw or reserve: 1 to MaxSats.
func CheckSats(sats int64) error {
	if sats <= 0 || sats > MaxSats {
		return fmt.Errorf("%w: amount must be 1 to %d sats, not %d", ErrInvalid, int64(MaxSats), sats)
	}
	return nil
}

// CheckCost checks a cost to settle: 0 to MaxSats.
func CheckCost(cost int64) error {
	if cost < 0 || cost > MaxSats {
		return fmt.Errorf("%w: cost must be 0 to %d sats, not %d", ErrInvalid, int64(MaxSats), cost)
	}
	return nil
}

// CheckInvoice checks a return invoice as far as the ledger cares: 1 to
// 8192 printable ASCII characters. Decoding it is the caller's job.
func CheckInvoice(inv string) error {
	if inv == "" || len(inv) > maxInvoiceLen {
		return fmt.Errorf("%w: return invoice must be 1 to %d characters", ErrInvalid, maxInvoiceLen)
	}
	for i := 0; i < len(inv); i++ {
		if inv[i] <= ' ' || inv[i] > '~' {
			return fmt.Errorf("%w: return invoice must be printable ASCII", ErrInvalid)
		}
	}
	return nil
}

// CheckRefund checks an outcome for RecordRefund.
func CheckRefund(r Refund) error {
	switch r.Status {
	case RefundSucceeded, RefundFailed, RefundUnknown:
		return nil
	}
	return fmt.Errorf("%w: refund status must be succeeded, failed or unknown, not %q", ErrInvalid, r.Status)
}

// CheckHold checks a hold handed to Settle.
func CheckHold(h Hold) error {
	if err := CheckAccount(h.Account); err != nil {
		return err
	}
	return CheckSats(h.Sats)
}

// CheckUntil checks a claim's until against now.
func CheckUntil(until, now time.Time) error {
	if !until.After(now) {
		return fmt.Errorf("%w: claim until %s has passed", ErrInvalid, until.UTC().Format(time.RFC3339))
	}
	return nil
}
