package lightning

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lightningcaddy/caddy-lightning/lnd"
)

// fakeNow sets the clock the ledger uses until the test ends and returns
// a function that moves it on.
func fakeNow(t *testing.T) func(time.Duration) {
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return clock
	}
	t.Cleanup(func() { now = time.Now })
	return func(d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		clock = clock.Add(d)
	}
}

// ledgerWith is a ledger on storage used by handlers with budgets.
func ledgerWith(storage certmagic.Storage, budgets ...*Budget) *paymentLedger {
	l := newPaymentLedger(storage)
	for _, b := range budgets {
		l.register(b)
	}
	return l
}

var paymentSeq atomic.Int64

// invoicePayment is a payment of amount + fee limit sats to a new hash.
func invoicePayment(amount, feeLimit int64) newPayment {
	hash := sha256.Sum256(fmt.Appendf(nil, "payment %d", paymentSeq.Add(1)))
	return newPayment{hash: hash, kind: kindInvoice, amountSat: amount, feeLimitSat: feeLimit}
}

func begin(t *testing.T, l *paymentLedger, p newPayment, b *Budget) (ledgerEntry, bool) {
	t.Helper()
	e, fresh, err := l.begin(context.Background(), p, b)
	if err != nil {
		t.Fatalf("begin %d+%d: %v", p.amountSat, p.feeLimitSat, err)
	}
	return e, fresh
}

func wantExhausted(t *testing.T, l *paymentLedger, p newPayment, b *Budget) {
	t.Helper()
	if _, _, err := l.begin(context.Background(), p, b); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("begin %d+%d: %v, want the budget exhausted", p.amountSat, p.feeLimitSat, err)
	}
}

func succeeded(p newPayment, amount, fee int64) lnd.Succeeded {
	return lnd.Succeeded{PaymentHash: p.hash, AmountSat: amount, FeeSat: fee, CreatedAt: now()}
}

func record(t *testing.T, l *paymentLedger, hash [32]byte, out lnd.Outcome) {
	t.Helper()
	if _, err := l.record(hash, out); err != nil {
		t.Fatal(err)
	}
}

// Two ledgers on one storage behave like two Caddy instances: together
// they never reserve more than the budget.
func TestBudgetSharedAcrossInstances(t *testing.T) {
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	budget := &Budget{Amount: 1000}
	a, b := ledgerWith(storage, budget), ledgerWith(storage, budget)
	var granted atomic.Int64
	var wg sync.WaitGroup
	for i := range 30 {
		ledger := a
		if i%2 == 1 {
			ledger = b
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			_, _, err := ledger.begin(ctx, invoicePayment(90, 10), budget)
			switch status.Code(err) {
			case codes.OK:
				granted.Add(1)
			case codes.ResourceExhausted:
			default:
				t.Errorf("begin: %v", err)
			}
		})
	}
	wg.Wait()
	if granted.Load() != 10 {
		t.Fatalf("granted %d reservations of 100 against a budget of 1000, want 10", granted.Load())
	}
}

func TestBudgetWindowSlides(t *testing.T) {
	advance := fakeNow(t)
	budget := &Budget{Amount: 100, Window: 3600e9}
	l := ledgerWith(&certmagic.FileStorage{Path: t.TempDir()}, budget)
	first := invoicePayment(90, 10)
	begin(t, l, first, budget)
	wantExhausted(t, l, invoicePayment(1, 0), budget)
	record(t, l, first.hash, succeeded(first, 55, 5)) // the payment cost less
	begin(t, l, invoicePayment(30, 10), budget)
	advance(61 * time.Minute)
	// The success left the window; the open reservation of 40 did not.
	wantExhausted(t, l, invoicePayment(55, 10), budget)
	begin(t, l, invoicePayment(50, 10), budget)
}

// A failure releases the reservation; an outcome left open keeps it, for
// as many windows as it stays open (the payee may hold the HTLC for days).
func TestOpenPaymentsStayReserved(t *testing.T) {
	advance := fakeNow(t)
	budget := &Budget{Amount: 220, Window: 3600e9}
	l := ledgerWith(&certmagic.FileStorage{Path: t.TempDir()}, budget)
	for _, reason := range []lnd.FailureReason{lnd.FailureTimeout, lnd.FailureError, lnd.FailureNoRoute} {
		p := invoicePayment(200, 10)
		begin(t, l, p, budget)
		record(t, l, p.hash, lnd.Failed{PaymentHash: p.hash, Reason: reason})
	}
	held := invoicePayment(200, 10)
	begin(t, l, held, budget) // the three failures left the whole budget
	record(t, l, held.hash, lnd.Unknown{PaymentHash: held.hash, InFlight: true})
	for range 3 {
		advance(time.Hour)
		wantExhausted(t, l, invoicePayment(11, 0), budget)
	}
	record(t, l, held.hash, succeeded(held, 200, 2))
	wantExhausted(t, l, invoicePayment(19, 0), budget) // booked at 202 when it ended
	begin(t, l, invoicePayment(18, 0), budget)
	st, err := l.load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if spent, reserved := st.usage(time.Hour, now()); spent != 202 || reserved != 18 {
		t.Errorf("spent %d, reserved %d; want 202 and 18", spent, reserved)
	}
}

// The case: a 1 h budget and a 48 h one on one storage. The first
// must not drop what the second still counts.
func TestBudgetsWithDifferentWindows(t *testing.T) {
	advance := fakeNow(t)
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	hourly := &Budget{Amount: 100, Window: caddy1h}
	daily := &Budget{Amount: 100, Window: 2 * 24 * caddy1h}
	a, b := ledgerWith(storage, hourly), ledgerWith(storage, daily)

	p := invoicePayment(80, 0)
	begin(t, b, p, daily)
	record(t, b, p.hash, succeeded(p, 80, 0))
	advance(30 * time.Hour)
	q := invoicePayment(50, 0)
	begin(t, a, q, hourly) // the hourly budget sees nothing spent
	record(t, a, q.hash, succeeded(q, 50, 0))
	wantExhausted(t, b, invoicePayment(1, 0), daily) // 130 spent in 48 h
	advance(19 * time.Hour)
	begin(t, b, invoicePayment(50, 0), daily) // the first payment left the window
}

const caddy1h = 3600e9

// Paying a hash the ledger has makes no new entry and no new reservation;
// a failed invoice payment may be tried again; a success always counts.
func TestLedgerEntriesByHash(t *testing.T) {
	fakeNow(t)
	budget := &Budget{Amount: 150}
	l := ledgerWith(&certmagic.FileStorage{Path: t.TempDir()}, budget)
	p := invoicePayment(100, 10)
	if _, fresh := begin(t, l, p, budget); !fresh {
		t.Fatal("a new payment is not fresh")
	}
	if e, fresh := begin(t, l, p, budget); fresh || e.State != stateOpen {
		t.Fatalf("the same hash again: fresh %t, state %s; want the open entry", fresh, e.State)
	}
	record(t, l, p.hash, lnd.Failed{PaymentHash: p.hash, Reason: lnd.FailureNoRoute})
	if e, fresh := begin(t, l, p, budget); !fresh || e.State != stateOpen {
		t.Fatalf("after a failure: fresh %t, state %s; want a new attempt", fresh, e.State)
	}
	if changed, _ := l.release(p.hash, "not sent"); !changed {
		t.Fatal("release of an open payment changed nothing")
	}
	record(t, l, p.hash, succeeded(p, 100, 1)) // a success always counts
	wantExhausted(t, l, invoicePayment(50, 0), budget)

	// A payment the node had made long before the entry books nothing.
	old := invoicePayment(40, 0)
	begin(t, l, old, budget)
	earlier := succeeded(old, 40, 0)
	earlier.CreatedAt = now().Add(-time.Hour)
	record(t, l, old.hash, earlier)
	begin(t, l, invoicePayment(49, 0), budget)
}

// A keysend idempotency key names one payment: a repeat gets its entry,
// failed or not, and another destination or amount is refused.
func TestIdempotencyKeys(t *testing.T) {
	fakeNow(t)
	l := ledgerWith(&certmagic.FileStorage{Path: t.TempDir()})
	p := invoicePayment(10, 10)
	p.kind, p.key, p.dest, p.preimage = kindKeysend, "k1", "02ab", [32]byte{1}
	first, fresh := begin(t, l, p, nil)
	if !fresh || first.Preimage == "" {
		t.Fatalf("first keysend: fresh %t, entry %+v", fresh, first)
	}
	again := p
	again.hash, again.preimage = [32]byte{9}, [32]byte{9} // a repeat draws a new preimage
	if e, fresh := begin(t, l, again, nil); fresh || e.Hash != first.Hash || e.Preimage != first.Preimage {
		t.Fatalf("repeat: fresh %t, entry %+v; want the first", fresh, e)
	}
	record(t, l, p.hash, lnd.Failed{PaymentHash: p.hash, Reason: lnd.FailureNoRoute})
	if e, fresh := begin(t, l, again, nil); fresh || e.State != stateFailed || e.Preimage != "" {
		t.Fatalf("repeat after failure: fresh %t, entry %+v; want the failed first", fresh, e)
	}
	other := again
	other.amountSat = 11
	if _, _, err := l.begin(context.Background(), other, nil); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("key reused for another amount: %v", err)
	}
}

// BenchmarkLedgerPayment measures the ledger's cost per payment (begin and
// record, two locked read-modify-writes of the stored document) on file
// storage already holding n finished payments.
func BenchmarkLedgerPayment(b *testing.B) {
	for _, n := range []int{0, 1_000, 10_000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			budget := &Budget{Amount: maxSats}
			l := ledgerWith(&certmagic.FileStorage{Path: b.TempDir()}, budget)
			err := l.update(context.Background(), func(st *ledgerState) error {
				for range n {
					p := invoicePayment(100, 10)
					st.Payments = append(st.Payments, ledgerEntry{Hash: fmt.Sprintf("%x", p.hash), Kind: kindInvoice,
						AmountSat: 100, State: stateSucceeded, SpentSat: 101, StartedAt: now(), EndedAt: now()})
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				p := invoicePayment(100, 10)
				if _, _, err := l.begin(context.Background(), p, budget); err != nil {
					b.Fatal(err)
				}
				if _, err := l.record(p.hash, lnd.Succeeded{PaymentHash: p.hash, AmountSat: 100, FeeSat: 1, CreatedAt: now()}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
