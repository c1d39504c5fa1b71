package lightning

import (
	"fmt"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Budget caps what outgoing payments may spend over a sliding window.
type Budget struct {
	// Amount is the most that payments may spend in Window, fees
	// included, in satoshis. Required.
	Amount int64 `json:"amount"`
	// Window is the sliding period the budget covers. Default: 24h.
	Window caddy.Duration `json:"window,omitempty"`
}

// spendLedger enforces a Budget across concurrent payments: a payment
// reserves its amount plus its fee limit before it starts, and the
// reservation is corrected to what was really spent once it ends.
type spendLedger struct {
	limit  int64
	window time.Duration

	mu      sync.Mutex
	entries []*spend // oldest first
	total   int64
}

type spend struct {
	at   time.Time
	sats int64
}

func newSpendLedger(b *Budget) *spendLedger {
	if b == nil {
		return nil
	}
	window := time.Duration(b.Window)
	if window <= 0 {
		window = 24 * time.Hour
	}
	return &spendLedger{limit: b.Amount, window: window}
}

// reserve books sats or refuses with ResourceExhausted. A nil ledger has no
// limit.
func (l *spendLedger) reserve(sats int64) (*spend, error) {
	if l == nil {
		return nil, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	t := now()
	l.pruneLocked(t)
	if l.total+sats > l.limit {
		return nil, status.Errorf(codes.ResourceExhausted,
			"spending budget exhausted: %d of %d sats spent or reserved in the last %s, this payment needs up to %d",
			l.total, l.limit, l.window, sats)
	}
	s := &spend{at: t, sats: sats}
	l.entries = append(l.entries, s)
	l.total += sats
	return s, nil
}

// settle corrects a reservation to what was really spent (0 releases it).
func (l *spendLedger) settle(s *spend, sats int64) {
	if l == nil || s == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if s.at.Before(now().Add(-l.window)) {
		return // already out of the window
	}
	l.total += sats - s.sats
	s.sats = sats
}

func (l *spendLedger) pruneLocked(t time.Time) {
	cutoff := t.Add(-l.window)
	i := 0
	for i < len(l.entries) && l.entries[i].at.Before(cutoff) {
		l.total -= l.entries[i].sats
		i++
	}
	l.entries = l.entries[i:]
}

func (b *Budget) validate() error {
	if b == nil {
		return nil
	}
	if b.Amount <= 0 || b.Window < 0 {
		return fmt.Errorf("budget needs a positive amount and window")
	}
	return nil
}
