package lightning

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lightningcaddy/caddy-lightning/lnd"
)

// paymentsStorageKey holds the ledger of outgoing payments in Caddy's
// storage: every lightning handler, on every instance sharing the storage,
// records its payments there and checks its budget against it.
const paymentsStorageKey = "lightning/payments.json"

// minRetention is how long the ledger keeps a finished payment at least:
// the default budget window, and how long a keysend idempotency key is
// remembered.
const minRetention = 24 * time.Hour

// earlierSlack is how much older than its ledger entry a payment the node
// reports must be to count as made before the entry (so not booked
// against it): clocks of the node and of Caddy may differ a little.
const earlierSlack = time.Minute

// Budget caps what outgoing payments may spend over a sliding window.
type Budget struct {
	// Amount is the most that payments may spend in Window, fees
	// included, in satoshis. Required.
	Amount int64 `json:"amount"`
	// Window is the sliding period the budget covers, at least one
	// second. Default: 24h.
	Window caddy.Duration `json:"window,omitempty"`
}

func (b *Budget) validate() error {
	if b == nil {
		return nil
	}
	if b.Amount <= 0 || b.Amount > maxSats {
		return fmt.Errorf("budget: the amount must be between 1 and %d satoshis", int64(maxSats))
	}
	if b.Window != 0 && time.Duration(b.Window) < time.Second {
		return fmt.Errorf("budget: the window must be at least one second")
	}
	return nil
}

func (b *Budget) window() time.Duration {
	if b.Window == 0 {
		return minRetention
	}
	return time.Duration(b.Window)
}

// States of a payment in the ledger.
const (
	// stateOpen: the money may still move. The payment counts against
	// every budget at its amount plus fee limit, however old it is,
	// until the node says how it ended.
	stateOpen = "open"
	// stateSucceeded: booked at its amount plus fee when it ended.
	stateSucceeded = "succeeded"
	// stateFailed: no money moved.
	stateFailed = "failed"
)

// ledgerEntry is one payment, by payment hash.
type ledgerEntry struct {
	Hash string `json:"hash"`
	Kind string `json:"kind"`
	// Key identifies a keysend's idempotency key: a digest of the key
	// and of the handler's API key.
	Key string `json:"key,omitempty"`
	// Dest is a keysend's destination.
	Dest string `json:"dest,omitempty"`
	// Preimage is a keysend's secret, kept while the payment is open so
	// that a repeat can send the very same payment.
	Preimage    string `json:"preimage,omitempty"`
	AmountSat   int64  `json:"amount_sat"`
	FeeLimitSat int64  `json:"fee_limit_sat"`
	State       string `json:"state"`
	// SpentSat is what a succeeded payment cost, fees included.
	SpentSat int64 `json:"spent_sat,omitempty"`
	// Reason says why a payment failed.
	Reason    string    `json:"reason,omitempty"`
	StartedAt time.Time `json:"started_at"`
	// FollowAfter is when the request that started the payment has
	// certainly given up on it: before, a payment the node does not know
	// (or knows as failed from an earlier attempt) may still be on its
	// way, so only that request concludes it.
	FollowAfter time.Time `json:"follow_after"`
	EndedAt     time.Time `json:"ended_at,omitzero"`
}

// reservedSat is what an open payment holds of a budget.
func (e *ledgerEntry) reservedSat() int64 { return e.AmountSat + e.FeeLimitSat }

// ledgerState is the stored ledger.
type ledgerState struct {
	// Retention is how long finished payments are kept: the longest
	// budget window any instance sharing the storage has used, and at
	// least minRetention. It only grows, so that no instance drops the
	// entries another's longer window still counts.
	Retention caddy.Duration `json:"retention"`
	Payments  []ledgerEntry  `json:"payments"`
}

// usage is what a budget with window sees at time at: booked spending
// that ended within the window, and open reservations whatever their age.
func (st *ledgerState) usage(window time.Duration, at time.Time) (spent, reserved int64) {
	cutoff := at.Add(-window)
	for i := range st.Payments {
		e := &st.Payments[i]
		switch {
		case e.State == stateOpen:
			reserved += e.reservedSat()
		case e.State == stateSucceeded && !e.EndedAt.Before(cutoff):
			spent += e.SpentSat
		}
	}
	return spent, reserved
}

func (st *ledgerState) find(match func(*ledgerEntry) bool) *ledgerEntry {
	i := slices.IndexFunc(st.Payments, func(e ledgerEntry) bool { return match(&e) })
	if i < 0 {
		return nil
	}
	return &st.Payments[i]
}

func (st *ledgerState) byHash(hash [32]byte) *ledgerEntry {
	h := hex.EncodeToString(hash[:])
	return st.find(func(e *ledgerEntry) bool { return e.Hash == h })
}

// paymentLedger records every outgoing payment of the lightning handlers
// in Caddy's storage, so that budgets hold across handlers, restarts and
// instances sharing the storage, and so that a payment whose outcome is
// open is followed until it ends (see paymentFollower). Each change is a
// read-modify-write under a storage lock; within this process a mutex
// makes them queue without polling the lock. Storage locks are advisory:
// instances sharing storage agree as well as its locks do.
type paymentLedger struct {
	storage certmagic.Storage

	mu sync.Mutex // queues this process's updates

	activeMu sync.Mutex
	active   map[[32]byte]int // payments a request of this process is making

	budgetsMu sync.Mutex
	handlers  int       // that make payments
	budgets   []*Budget // of those handlers

	wake chan struct{} // tells the follower that a payment's outcome is open
}

func newPaymentLedger(storage certmagic.Storage) *paymentLedger {
	return &paymentLedger{storage: storage, active: make(map[[32]byte]int), wake: make(chan struct{}, 1)}
}

// register counts a handler that makes payments, with its budget (nil:
// none).
func (l *paymentLedger) register(b *Budget) {
	l.budgetsMu.Lock()
	defer l.budgetsMu.Unlock()
	l.handlers++
	if b != nil {
		l.budgets = append(l.budgets, b)
	}
}

// payers is how many handlers make payments.
func (l *paymentLedger) payers() int {
	l.budgetsMu.Lock()
	defer l.budgetsMu.Unlock()
	return l.handlers
}

// budgetList is the handlers' budgets, without duplicates.
func (l *paymentLedger) budgetList() []Budget {
	l.budgetsMu.Lock()
	defer l.budgetsMu.Unlock()
	var list []Budget
	for _, b := range l.budgets {
		if !slices.ContainsFunc(list, func(o Budget) bool { return o.Amount == b.Amount && o.window() == b.window() }) {
			list = append(list, *b)
		}
	}
	return list
}

// newPayment is a payment about to be made.
type newPayment struct {
	hash        [32]byte
	kind        string
	key         string   // keysend idempotency key digest, or ""
	dest        string   // keysend destination
	preimage    [32]byte // keysend secret
	amountSat   int64
	feeLimitSat int64
	followAfter time.Time
}

// begin enters a payment in the ledger before it is made, checking budget
// (nil: no limit). One write decides, so concurrent requests and
// instances agree:
//
//   - a new payment hash (or idempotency key) gets an open entry, if the
//     budget allows its amount plus fee limit: fresh is true;
//   - a hash that failed before is a new attempt: its entry opens again,
//     within the budget, and fresh is true (a keysend's idempotency key
//     is not: it keeps the first payment's result);
//   - otherwise the existing entry is returned and fresh is false: the
//     caller asks the node about that payment rather than make another.
//
// An idempotency key used for another destination or amount is refused.
func (l *paymentLedger) begin(ctx context.Context, p newPayment, budget *Budget) (entry ledgerEntry, fresh bool, err error) {
	err = l.update(ctx, func(st *ledgerState) error {
		var e *ledgerEntry
		if p.key != "" {
			e = st.find(func(e *ledgerEntry) bool { return e.Key == p.key })
			if e != nil && (e.Dest != p.dest || e.AmountSat != p.amountSat) {
				return status.Error(codes.AlreadyExists, "this idempotency_key was used for a keysend to another destination or of another amount")
			}
		} else {
			e = st.byHash(p.hash)
		}
		if e != nil && (e.State != stateFailed || p.key != "") {
			entry = *e
			return nil
		}
		if err := checkBudget(st, budget, p.amountSat+p.feeLimitSat); err != nil {
			return err
		}
		fresh = true
		if e == nil {
			st.Payments = append(st.Payments, ledgerEntry{Hash: hex.EncodeToString(p.hash[:]), Kind: p.kind})
			e = &st.Payments[len(st.Payments)-1]
		}
		*e = ledgerEntry{
			Hash: e.Hash, Kind: p.kind, Key: p.key, Dest: p.dest,
			AmountSat: p.amountSat, FeeLimitSat: p.feeLimitSat, State: stateOpen,
			StartedAt: now(), FollowAfter: p.followAfter,
		}
		if p.kind == kindKeysend {
			e.Preimage = hex.EncodeToString(p.preimage[:])
		}
		entry = *e
		return nil
	})
	return entry, fresh, err
}

// checkBudget refuses a reservation of sats that budget does not allow.
func checkBudget(st *ledgerState, budget *Budget, sats int64) error {
	if budget == nil {
		return nil
	}
	spent, reserved := st.usage(budget.window(), now())
	if spent+reserved+sats > budget.Amount {
		return status.Errorf(codes.ResourceExhausted,
			"spending budget exhausted: %d of %d sats spent in the last %s and %d reserved by payments in flight; this payment needs up to %d",
			spent, budget.Amount, budget.window(), reserved, sats)
	}
	return nil
}

// record books what the node says of a payment: a success at its amount
// plus fee (0 if the node made it before the entry began: no money moved
// for it), always, as money moved; a failure only while the payment is
// open; an unknown outcome reopens a payment thought failed, as its money
// may still move. It reports whether the entry changed.
func (l *paymentLedger) record(hash [32]byte, out lnd.Outcome) (bool, error) {
	return l.conclude(hash, func(e *ledgerEntry) bool {
		switch out := out.(type) {
		case lnd.Succeeded:
			spent := out.AmountSat + out.FeeSat
			if !out.CreatedAt.IsZero() && out.CreatedAt.Before(e.StartedAt.Add(-earlierSlack)) {
				spent = 0
			}
			if e.State == stateSucceeded && e.SpentSat >= spent {
				return false
			}
			e.State, e.SpentSat, e.Reason, e.EndedAt = stateSucceeded, spent, "", now()
		case lnd.Failed:
			if e.State != stateOpen {
				return false
			}
			e.State, e.Reason, e.EndedAt = stateFailed, string(out.Reason), now()
		default:
			if e.State != stateFailed {
				return false
			}
			e.State, e.Reason, e.EndedAt = stateOpen, "", time.Time{}
		}
		e.Preimage = ""
		return true
	})
}

// release ends an open payment that the node never started, for reason.
func (l *paymentLedger) release(hash [32]byte, reason string) (bool, error) {
	return l.conclude(hash, func(e *ledgerEntry) bool {
		if e.State != stateOpen {
			return false
		}
		e.State, e.Reason, e.EndedAt, e.Preimage = stateFailed, reason, now(), ""
		return true
	})
}

// conclude applies change to the entry of hash. It runs after the payment,
// so it does not depend on the request's context.
func (l *paymentLedger) conclude(hash [32]byte, change func(*ledgerEntry) bool) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	changed := false
	err := l.update(ctx, func(st *ledgerState) error {
		if e := st.byHash(hash); e != nil {
			changed = change(e)
		}
		return nil
	})
	return changed, err
}

// load reads the ledger.
func (l *paymentLedger) load(ctx context.Context) (ledgerState, error) {
	var st ledgerState
	data, err := l.storage.Load(ctx, paymentsStorageKey)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return st, nil
	case err != nil:
		return st, status.Errorf(codes.Unavailable, "read the payment ledger: %v", err)
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, status.Errorf(codes.Internal, "the payment ledger in storage (%s) is corrupt", paymentsStorageKey)
	}
	return st, nil
}

// retention is how long this process's budgets need finished payments
// kept: the longest window, at least minRetention.
func (l *paymentLedger) retention() time.Duration {
	l.budgetsMu.Lock()
	defer l.budgetsMu.Unlock()
	longest := minRetention
	for _, b := range l.budgets {
		longest = max(longest, b.window())
	}
	return longest
}

// update applies change to the stored ledger, after extending its
// retention to this process's and dropping finished payments older than
// that.
func (l *paymentLedger) update(ctx context.Context, change func(*ledgerState) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.storage.Lock(ctx, paymentsStorageKey); err != nil {
		return status.Errorf(codes.Unavailable, "lock the payment ledger: %v", err)
	}
	defer func() { _ = l.storage.Unlock(context.Background(), paymentsStorageKey) }()

	st, err := l.load(ctx)
	if err != nil {
		return err
	}
	st.Retention = caddy.Duration(max(time.Duration(st.Retention), l.retention()))
	cutoff := now().Add(-time.Duration(st.Retention))
	st.Payments = slices.DeleteFunc(st.Payments, func(e ledgerEntry) bool {
		return e.State != stateOpen && e.EndedAt.Before(cutoff)
	})
	if err := change(&st); err != nil {
		return err
	}
	data, err := json.Marshal(st)
	if err != nil {
		return status.Errorf(codes.Internal, "encode the payment ledger: %v", err)
	}
	if err := l.storage.Store(ctx, paymentsStorageKey, data); err != nil {
		return status.Errorf(codes.Unavailable, "store the payment ledger: %v", err)
	}
	return nil
}

// paying marks hash as being paid by a request of this process until the
// returned function is called.
func (l *paymentLedger) paying(hash [32]byte) (done func()) {
	l.activeMu.Lock()
	defer l.activeMu.Unlock()
	l.active[hash]++
	return func() {
		l.activeMu.Lock()
		defer l.activeMu.Unlock()
		if l.active[hash]--; l.active[hash] == 0 {
			delete(l.active, hash)
		}
	}
}

func (l *paymentLedger) isActive(hash [32]byte) bool {
	l.activeMu.Lock()
	defer l.activeMu.Unlock()
	return l.active[hash] > 0
}

// wakeFollower asks the follower to look at open payments now.
func (l *paymentLedger) wakeFollower() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}
