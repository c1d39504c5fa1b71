package lightning

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Two ledgers on one storage behave like two Caddy instances: together
// they never reserve more than the budget.
func TestBudgetSharedAcrossInstances(t *testing.T) {
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	budget := &Budget{Amount: 1000}
	a, b := newSpendLedger(budget, storage), newSpendLedger(budget, storage)
	var granted atomic.Int64
	var wg sync.WaitGroup
	for i := range 30 {
		ledger := a
		if i%2 == 1 {
			ledger = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			_, err := ledger.reserve(ctx, 100)
			switch status.Code(err) {
			case codes.OK:
				granted.Add(1)
			case codes.ResourceExhausted:
			default:
				t.Errorf("reserve: %v", err)
			}
		}()
	}
	wg.Wait()
	if granted.Load() != 10 {
		t.Fatalf("granted %d reservations of 100 against a budget of 1000, want 10", granted.Load())
	}
}

func TestBudgetWindowSlides(t *testing.T) {
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now = func() time.Time { return clock }
	t.Cleanup(func() { now = time.Now })
	ledger := newSpendLedger(&Budget{Amount: 100, Window: 3600e9}, &certmagic.FileStorage{Path: t.TempDir()})
	ctx := context.Background()
	id, err := ledger.reserve(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ledger.reserve(ctx, 1); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("over budget: %v", err)
	}
	if err := ledger.settle(id, 60); err != nil { // the payment cost less
		t.Fatal(err)
	}
	if _, err := ledger.reserve(ctx, 40); err != nil {
		t.Fatalf("after settling to the real cost: %v", err)
	}
	clock = clock.Add(61 * time.Minute)
	if _, err := ledger.reserve(ctx, 100); err != nil {
		t.Fatalf("after the window passed: %v", err)
	}
}
