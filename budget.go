package lightning

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// budgetStorageKey holds what outgoing payments spent, in Caddy's storage:
// every lightning handler with a budget, on every instance sharing the
// storage, counts against it.
const budgetStorageKey = "lightning/budget/spent.json"

// Budget caps what outgoing payments may spend over a sliding window.
type Budget struct {
	// Amount is the most that payments may spend in Window, fees
	// included, in satoshis. Required.
	Amount int64 `json:"amount"`
	// Window is the sliding period the budget covers. Default: 24h.
	Window caddy.Duration `json:"window,omitempty"`
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

// spendLedger enforces a Budget across concurrent payments and instances:
// a payment reserves its amount plus its fee limit before it starts, and
// the reservation is corrected to what was really spent once it ends.
// Each change is a read-modify-write of the stored ledger under a storage
// lock; within this process a mutex makes them queue without polling the
// lock.
type spendLedger struct {
	limit   int64
	window  time.Duration
	storage certmagic.Storage

	mu sync.Mutex
}

// spend is one payment's entry in the stored ledger.
type spend struct {
	ID   string `json:"id"`
	At   int64  `json:"at"` // unix nanoseconds
	Sats int64  `json:"sats"`
}

func newSpendLedger(b *Budget, storage certmagic.Storage) *spendLedger {
	if b == nil {
		return nil
	}
	window := time.Duration(b.Window)
	if window <= 0 {
		window = 24 * time.Hour
	}
	return &spendLedger{limit: b.Amount, window: window, storage: storage}
}

// reserve books sats or refuses with ResourceExhausted, and returns the
// reservation's id. A nil ledger has no limit.
func (l *spendLedger) reserve(ctx context.Context, sats int64) (string, error) {
	if l == nil {
		return "", nil
	}
	id := randomID()
	err := l.update(ctx, func(spends []spend) ([]spend, error) {
		var total int64
		for _, s := range spends {
			total += s.Sats
		}
		if total+sats > l.limit {
			return nil, status.Errorf(codes.ResourceExhausted,
				"spending budget exhausted: %d of %d sats spent or reserved in the last %s, this payment needs up to %d",
				total, l.limit, l.window, sats)
		}
		return append(spends, spend{ID: id, At: now().UnixNano(), Sats: sats}), nil
	})
	return id, err
}

// settle corrects a reservation to what was really spent (0 releases it).
// It runs after the payment, so it does not depend on the request's
// context.
func (l *spendLedger) settle(id string, sats int64) error {
	if l == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return l.update(ctx, func(spends []spend) ([]spend, error) {
		for i := range spends {
			if spends[i].ID == id {
				spends[i].Sats = sats
			}
		}
		return spends, nil
	})
}

// update applies change to the stored spends of the window.
func (l *spendLedger) update(ctx context.Context, change func([]spend) ([]spend, error)) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.storage.Lock(ctx, budgetStorageKey); err != nil {
		return status.Errorf(codes.Unavailable, "lock the spending budget: %v", err)
	}
	defer func() { _ = l.storage.Unlock(context.Background(), budgetStorageKey) }()

	var spends []spend
	data, err := l.storage.Load(ctx, budgetStorageKey)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return status.Errorf(codes.Unavailable, "read the spending budget: %v", err)
	default:
		if err := json.Unmarshal(data, &spends); err != nil {
			return status.Errorf(codes.Internal, "the spending budget in storage (%s) is corrupt", budgetStorageKey)
		}
	}
	cutoff := now().Add(-l.window).UnixNano()
	kept := spends[:0]
	for _, s := range spends {
		if s.At >= cutoff {
			kept = append(kept, s)
		}
	}
	spends, err = change(kept)
	if err != nil {
		return err
	}
	if data, err = json.Marshal(spends); err != nil {
		return status.Errorf(codes.Internal, "encode the spending budget: %v", err)
	}
	if err := l.storage.Store(ctx, budgetStorageKey, data); err != nil {
		return status.Errorf(codes.Unavailable, "store the spending budget: %v", err)
	}
	return nil
}

func randomID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
