package ledger

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// MemoryOptions configures a Memory ledger. Zero values take the defaults.
type MemoryOptions struct {
	// Prefix is the storage key under which the ledger keeps its state.
	// Default: "lightning/ledger".
	Prefix string
	// FlushInterval is how often Run stores the claims and draws made
	// since the last flush. It bounds what a crash loses (see the package
	// doc). Default: 1s.
	FlushInterval time.Duration
	// MaxUnsaved caps the claims and draws not yet stored: at half of it
	// Run flushes early, and once it is reached Claim, Draw and Reserve fail
	// with ErrUnavailable until a flush succeeds, so a crash never loses
	// more even while the storage fails. Default: 100000.
	MaxUnsaved int
	// HoldTimeout is how long a hold of Reserve lasts if it is never
	// settled. Default: 1h.
	HoldTimeout time.Duration
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// OnFlushError is told of every failed flush of Run (Run goes on and
	// retries at the next interval). Default: none.
	OnFlushError func(error)
}

// Memory is the embedded ledger: every operation is one step under one
// mutex, so it is exact within one process. Its state lives in memory and
// is persisted to a Storage: credits and session changes before they
// return, claims and draws by the flusher (Run), so a crash loses at most
// what the last flush interval saw (see the package doc). Several Memory
// ledgers on one Storage are each durable but not exact together: exact
// across instances means Redis.
//
// Call Load once before use (operations fail with ErrUnavailable until
// then) and run Run for as long as the ledger is in use.
type Memory struct {
	store    Storage
	opt      MemoryOptions
	instance string // random, names this instance's claim batches

	flushMu  sync.Mutex    // one flush at a time
	writeMu  sync.Mutex    // account writes one at a time, never out of order
	flushNow chan struct{} // asks Run for an early flush

	mu       sync.Mutex
	loaded   bool
	claims   map[Hash]int64    // claimed payments: until, unix ms
	credits  map[Hash]*account // credited payments: the account
	accounts map[string]*account
	open     map[*account]struct{} // open sessions
	dirty    []*account            // accounts changed since their last write
	pending  []claimEntry          // claims not yet stored
	spare    []claimEntry          // the last flush's pending, emptied, for reuse
	batches  []claimBatch          // stored claims, kept for pruning
	ops      uint64                // claims and draws made
	savedOps uint64                // ops covered by the last successful flush
	batchSeq uint64
}

type account struct {
	id       string
	credited int64
	spent    int64
	held     int64
	payments []Hash // credited payment hashes
	holds    map[uint64]hold
	holdSeq  uint64
	session  *session // nil for a prepaid account

	version uint64 // changes made
	saved   uint64 // changes stored
	queued  bool   // in Memory.dirty
	removed bool   // its creating credit failed to store
}

type hold struct {
	sats    int64
	expires int64 // unix ms
}

type session struct {
	returnInvoice string
	closed        bool
	openedAt      int64 // unix ms
	lastActivity  int64
	closedAt      int64
	refund        int64
	refundStatus  RefundStatus
	refundPayment Hash
}

// NewMemory returns a ledger over store. It does no I/O: Load reads the
// state.
func NewMemory(store Storage, opt MemoryOptions) *Memory {
	if opt.Prefix == "" {
		opt.Prefix = "lightning/ledger"
	}
	if opt.FlushInterval <= 0 {
		opt.FlushInterval = time.Second
	}
	if opt.MaxUnsaved <= 0 {
		opt.MaxUnsaved = 100000
	}
	if opt.HoldTimeout <= 0 {
		opt.HoldTimeout = time.Hour
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	return &Memory{
		store:    store,
		opt:      opt,
		instance: hex.EncodeToString(id[:]),
		flushNow: make(chan struct{}, 1),
		claims:   make(map[Hash]int64),
		credits:  make(map[Hash]*account),
		accounts: make(map[string]*account),
		open:     make(map[*account]struct{}),
	}
}

// Claim implements Ledger. The claim is stored by the next flush.
func (m *Memory) Claim(_ context.Context, p Hash, until time.Time) (bool, error) {
	if err := CheckUntil(until, m.opt.Now()); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.admitting(); err != nil {
		return false, err
	}
	if _, claimed := m.claims[p]; claimed {
		return false, nil
	}
	if _, credited := m.credits[p]; credited {
		return false, nil
	}
	u := until.UnixMilli()
	m.claims[p] = u
	m.pending = append(m.pending, claimEntry{hash: p, until: u})
	m.counted(nil)
	return true, nil
}

// Credit implements Ledger.
func (m *Memory) Credit(ctx context.Context, id string, p Hash, sats int64) (bool, error) {
	return m.credit(ctx, creditAccount, id, p, sats, "")
}

// TopUp implements Ledger.
func (m *Memory) TopUp(ctx context.Context, id string, p Hash, sats int64) (bool, error) {
	return m.credit(ctx, topUpSession, id, p, sats, "")
}

// OpenSession implements Ledger.
func (m *Memory) OpenSession(ctx context.Context, deposit Hash, sats int64, returnInvoice string) (bool, error) {
	if err := CheckInvoice(returnInvoice); err != nil {
		return false, err
	}
	return m.credit(ctx, openSession, deposit.String(), deposit, sats, returnInvoice)
}

type creditMode int

const (
	creditAccount creditMode = iota // create the account if need be
	topUpSession                    // an open session only
	openSession                     // a new session
)

// credit credits p to account id once and stores the account before it
// returns; if storing fails the credit is undone.
func (m *Memory) credit(ctx context.Context, mode creditMode, id string, p Hash, sats int64, invoice string) (bool, error) {
	if err := CheckAccount(id); err != nil {
		return false, err
	}
	if err := CheckSats(sats); err != nil {
		return false, err
	}
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	now := m.opt.Now().UnixMilli()

	m.mu.Lock()
	if err := m.ready(); err != nil {
		m.mu.Unlock()
		return false, err
	}
	if to, credited := m.credits[p]; credited && to.id == id {
		m.mu.Unlock()
		return false, m.save(ctx, to) // credited before; it counts once it is stored
	} else if _, claimed := m.claims[p]; credited || claimed {
		m.mu.Unlock()
		return false, fmt.Errorf("%w: payment %s", ErrPaymentUsed, p)
	}
	a := m.accounts[id]
	created := false
	switch {
	case mode == openSession && a != nil:
		// The id is the deposit's hash, which no payment used: another
		// writer chose it.
		m.mu.Unlock()
		return false, fmt.Errorf("%w: account %s exists without its deposit", ErrCorrupt, id)
	case mode == openSession:
		a = &account{id: id, session: &session{returnInvoice: invoice, openedAt: now}}
		created = true
	case mode == topUpSession && (a == nil || a.session == nil):
		m.mu.Unlock()
		return false, fmt.Errorf("%w: session %s", ErrNotFound, id)
	case a == nil:
		a = &account{id: id}
		created = true
	}
	if a.session != nil && a.session.closed {
		m.mu.Unlock()
		return false, fmt.Errorf("%w: session %s", ErrClosed, id)
	}
	if created {
		m.accounts[id] = a
		if a.session != nil {
			m.open[a] = struct{}{}
		}
	}
	a.credited += sats
	a.payments = append(a.payments, p)
	m.credits[p] = a
	if a.session != nil {
		a.session.lastActivity = now
	}
	a.version++
	m.mu.Unlock()

	if err := m.save(ctx, a); err != nil {
		m.mu.Lock()
		a.credited -= sats
		a.payments = a.payments[:len(a.payments)-1] // writeMu kept it last
		delete(m.credits, p)
		if created {
			a.removed = true
			delete(m.accounts, id)
			delete(m.open, a)
		}
		a.version++
		m.mu.Unlock()
		return false, err
	}
	return true, nil
}

// Draw implements Ledger. The draw is stored by the next flush.
func (m *Memory) Draw(_ context.Context, id string, sats int64) (int64, error) {
	if err := CheckSats(sats); err != nil {
		return 0, err
	}
	now := m.opt.Now().UnixMilli()
	m.mu.Lock()
	defer m.mu.Unlock()
	a, err := m.spendable(id)
	if err != nil {
		return 0, err
	}
	avail := a.available(now)
	if avail < sats {
		return 0, &InsufficientError{Account: id, Needed: sats, Available: avail}
	}
	a.spent += sats
	a.touch(now)
	m.counted(a)
	return avail - sats, nil
}

// Reserve implements Ledger. Holds are not stored: a crash releases them.
func (m *Memory) Reserve(_ context.Context, id string, sats int64) (Hold, error) {
	if err := CheckSats(sats); err != nil {
		return Hold{}, err
	}
	now := m.opt.Now().UnixMilli()
	m.mu.Lock()
	defer m.mu.Unlock()
	a, err := m.spendable(id)
	if err != nil {
		return Hold{}, err
	}
	avail := a.available(now)
	if avail < sats {
		return Hold{}, &InsufficientError{Account: id, Needed: sats, Available: avail}
	}
	if a.holds == nil {
		a.holds = make(map[uint64]hold)
	}
	a.holdSeq++
	a.holds[a.holdSeq] = hold{sats: sats, expires: now + m.opt.HoldTimeout.Milliseconds()}
	a.held += sats
	a.touch(now)
	return Hold{Account: id, ID: a.holdSeq, Sats: sats, Remaining: avail - sats}, nil
}

// Settle implements Ledger. The charge is stored by the next flush; Settle
// works even when MaxUnsaved is reached, since its request was admitted.
func (m *Memory) Settle(_ context.Context, h Hold, cost int64) (int64, error) {
	if err := CheckHold(h); err != nil {
		return 0, err
	}
	if err := CheckCost(cost); err != nil {
		return 0, err
	}
	now := m.opt.Now().UnixMilli()
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ready(); err != nil {
		return 0, err
	}
	a := m.accounts[h.Account]
	if a == nil {
		return 0, fmt.Errorf("%w: account %s", ErrNotFound, h.Account)
	}
	held, ok := a.holds[h.ID]
	if !ok {
		return 0, fmt.Errorf("%w: hold %d of account %s", ErrNotFound, h.ID, h.Account)
	}
	delete(a.holds, h.ID)
	a.held -= held.sats
	closed := a.session != nil && a.session.closed
	if closed {
		cost = min(cost, held.sats)
	}
	if cost > 0 {
		a.spent += cost
		m.counted(a)
	}
	if closed {
		return 0, nil
	}
	a.touch(now)
	return a.available(now), nil
}

// Balance implements Ledger.
func (m *Memory) Balance(_ context.Context, id string) (int64, error) {
	now := m.opt.Now().UnixMilli()
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ready(); err != nil {
		return 0, err
	}
	a := m.accounts[id]
	if a == nil {
		return 0, fmt.Errorf("%w: account %s", ErrNotFound, id)
	}
	if a.session != nil && a.session.closed {
		return 0, nil
	}
	return a.available(now), nil
}

// CloseSession implements Ledger.
func (m *Memory) CloseSession(ctx context.Context, id string) (int64, error) {
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	now := m.opt.Now().UnixMilli()
	m.mu.Lock()
	a, err := m.openSession(id)
	if err != nil {
		m.mu.Unlock()
		return 0, err
	}
	s := a.session
	refund := max(a.available(now), 0)
	s.closed, s.closedAt, s.refund = true, now, refund
	s.refundStatus = RefundPending
	if refund == 0 {
		s.refundStatus = RefundSkipped
	}
	delete(m.open, a)
	a.version++
	m.mu.Unlock()

	if err := m.save(ctx, a); err != nil {
		m.mu.Lock()
		s.closed, s.closedAt, s.refund, s.refundStatus = false, 0, 0, ""
		m.open[a] = struct{}{}
		a.version++
		m.mu.Unlock()
		return 0, err
	}
	return refund, nil
}

// RecordRefund implements Ledger.
func (m *Memory) RecordRefund(ctx context.Context, id string, r Refund) error {
	if err := CheckRefund(r); err != nil {
		return err
	}
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	m.mu.Lock()
	if err := m.ready(); err != nil {
		m.mu.Unlock()
		return err
	}
	a := m.accounts[id]
	if a == nil || a.session == nil {
		m.mu.Unlock()
		return fmt.Errorf("%w: session %s", ErrNotFound, id)
	}
	s := a.session
	if s.refundStatus != RefundPending && s.refundStatus != RefundUnknown {
		m.mu.Unlock()
		return fmt.Errorf("%w: session %s has no refund awaiting an outcome (%s)", ErrInvalid, id, refundState(s))
	}
	oldStatus, oldPayment := s.refundStatus, s.refundPayment
	s.refundStatus, s.refundPayment = r.Status, r.Payment
	a.version++
	m.mu.Unlock()

	if err := m.save(ctx, a); err != nil {
		m.mu.Lock()
		s.refundStatus, s.refundPayment = oldStatus, oldPayment
		a.version++
		m.mu.Unlock()
		return err
	}
	return nil
}

func refundState(s *session) string {
	if !s.closed {
		return "open"
	}
	return string(s.refundStatus)
}

// Session implements Ledger.
func (m *Memory) Session(_ context.Context, id string) (Session, error) {
	now := m.opt.Now().UnixMilli()
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ready(); err != nil {
		return Session{}, err
	}
	a := m.accounts[id]
	if a == nil || a.session == nil {
		return Session{}, fmt.Errorf("%w: session %s", ErrNotFound, id)
	}
	a.available(now) // drops expired holds from Held
	s := a.session
	return Session{
		ID:            id,
		Deposit:       a.credited,
		Spent:         a.spent,
		Held:          a.held,
		Closed:        s.closed,
		ReturnInvoice: s.returnInvoice,
		OpenedAt:      msTime(s.openedAt),
		LastActivity:  msTime(s.lastActivity),
		ClosedAt:      msTime(s.closedAt),
		Refund:        s.refund,
		RefundStatus:  s.refundStatus,
		RefundPayment: s.refundPayment,
	}, nil
}

// IdleSessions implements Ledger.
func (m *Memory) IdleSessions(_ context.Context, idle time.Duration, limit int) ([]string, error) {
	cutoff := m.opt.Now().Add(-idle).UnixMilli()
	m.mu.Lock()
	if err := m.ready(); err != nil || limit <= 0 {
		m.mu.Unlock()
		return nil, err
	}
	var found []*account
	for a := range m.open {
		if a.session.lastActivity <= cutoff {
			found = append(found, a)
		}
	}
	slices.SortFunc(found, func(x, y *account) int {
		return cmp.Or(cmp.Compare(x.session.lastActivity, y.session.lastActivity), strings.Compare(x.id, y.id))
	})
	ids := make([]string, 0, min(limit, len(found)))
	for _, a := range found[:min(limit, len(found))] {
		ids = append(ids, a.id)
	}
	m.mu.Unlock()
	return ids, nil
}

// ready fails until Load has run. m.mu is held.
func (m *Memory) ready() error {
	if !m.loaded {
		return fmt.Errorf("%w: memory ledger not loaded yet", ErrUnavailable)
	}
	return nil
}

// admitting fails when a claim or draw may not be made: before Load, or
// while MaxUnsaved of them wait for a flush. m.mu is held.
func (m *Memory) admitting() error {
	if err := m.ready(); err != nil {
		return err
	}
	if m.ops-m.savedOps >= uint64(m.opt.MaxUnsaved) {
		return fmt.Errorf("%w: %d claims and draws wait to be stored", ErrUnavailable, m.ops-m.savedOps)
	}
	return nil
}

// spendable returns the account id if it may be drawn from. m.mu is held.
func (m *Memory) spendable(id string) (*account, error) {
	if err := m.admitting(); err != nil {
		return nil, err
	}
	a := m.accounts[id]
	if a == nil {
		return nil, fmt.Errorf("%w: account %s", ErrNotFound, id)
	}
	if a.session != nil && a.session.closed {
		return nil, fmt.Errorf("%w: session %s", ErrClosed, id)
	}
	return a, nil
}

// openSession returns session id if it is open. m.mu is held.
func (m *Memory) openSession(id string) (*account, error) {
	if err := m.ready(); err != nil {
		return nil, err
	}
	a := m.accounts[id]
	if a == nil || a.session == nil {
		return nil, fmt.Errorf("%w: session %s", ErrNotFound, id)
	}
	if a.session.closed {
		return nil, fmt.Errorf("%w: session %s", ErrClosed, id)
	}
	return a, nil
}

// counted notes one claim or draw (of account a, if not nil) for the next
// flush. m.mu is held.
func (m *Memory) counted(a *account) {
	m.ops++
	if a != nil {
		a.version++
		if !a.queued {
			a.queued = true
			m.dirty = append(m.dirty, a)
		}
	}
	if m.ops-m.savedOps >= uint64(m.opt.MaxUnsaved/2) {
		select {
		case m.flushNow <- struct{}{}:
		default:
		}
	}
}

// available is credited minus spent minus held, after dropping expired
// holds. m.mu is held.
func (a *account) available(now int64) int64 {
	for id, h := range a.holds {
		if h.expires <= now {
			delete(a.holds, id)
			a.held -= h.sats
		}
	}
	return a.credited - a.spent - a.held
}

// touch records activity on an open session.
func (a *account) touch(now int64) {
	if a.session != nil {
		a.session.lastActivity = now
	}
}

func msTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// Interface guard.
var _ Ledger = (*Memory)(nil)
