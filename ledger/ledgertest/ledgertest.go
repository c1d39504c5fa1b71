// Package ledgertest is the conformance suite of ledger backends: every
// backend's tests call Run, so the memory and Redis ledgers are held to
// the same contract, concurrency included.
package ledgertest

import (
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lightningcaddy/caddy-lightning/ledger"
)

// Backend opens ledgers of one kind for Run.
type Backend struct {
	// Open opens one instance of the named store, ready for use. Every
	// call with the same name opens another instance over the same state
	// (another Redis client on the same keys, another memory ledger on the
	// same Storage); each name is a fresh, empty store the first time.
	// The backend releases what it opened when t ends.
	Open func(t *testing.T, store string) ledger.Ledger
	// Stop ends an instance as a server shutting down would (the memory
	// ledger's last flush), before the suite opens its store again.
	Stop func(t *testing.T, l ledger.Ledger)
	// Shared is true when instances over one store are exact together, as
	// Redis ledgers are and memory ledgers are not: Run then checks that
	// two instances drawing from one balance admit exactly what was paid.
	Shared bool
}

// Run runs the suite against b.
func Run(t *testing.T, b Backend) {
	cases := []struct {
		name string
		run  func(t *testing.T, b Backend)
	}{
		{"ClaimOnce", claimOnce},
		{"ClaimAgainstCredit", claimAgainstCredit},
		{"CreditOnce", creditOnce},
		{"Draw", draw},
		{"DrawRace", drawRace},
		{"ReserveSettle", reserveSettle},
		{"ReserveRace", reserveRace},
		{"TwoInstances", twoInstances},
		{"Restart", restart},
		{"Session", sessionLifecycle},
		{"CloseRace", closeRace},
		{"IdleSessions", idleSessions},
		{"Invalid", invalid},
		{"LargeAmounts", largeAmounts},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, b) })
	}
}

var ctx = context.Background()

// hash returns a payment hash unique to the test and label.
func hash(t *testing.T, label string) ledger.Hash {
	return sha256.Sum256([]byte(t.Name() + "/" + label))
}

// open opens an instance of the test's own store.
func open(t *testing.T, b Backend) ledger.Ledger { return b.Open(t, t.Name()) }

// run calls f n times at once and returns the results in call order.
func run[T any](n int, f func(i int) (T, error)) ([]T, []error) {
	vals := make([]T, n)
	errs := make([]error, n)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			vals[i], errs[i] = f(i)
		}()
	}
	start.Done()
	done.Wait()
	return vals, errs
}

// countTrue counts the calls of run that reported true, or returns the
// first error.
func countTrue(vals []bool, errs []error) (int, error) {
	n := 0
	for i, v := range vals {
		if errs[i] != nil {
			return 0, errs[i]
		}
		if v {
			n++
		}
	}
	return n, nil
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, what string, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("%s: got error %v, want %v", what, err, kind)
	}
}

func wantBalance(t *testing.T, l ledger.Ledger, account string, want int64) {
	t.Helper()
	got, err := l.Balance(ctx, account)
	must(t, err)
	if got != want {
		t.Fatalf("balance of %s = %d, want %d", account, got, want)
	}
}

func credit(t *testing.T, l ledger.Ledger, account, label string, sats int64) {
	t.Helper()
	ok, err := l.Credit(ctx, account, hash(t, label), sats)
	must(t, err)
	if !ok {
		t.Fatalf("credit %s of %s: not credited", label, account)
	}
}

// claimOnce: 64 concurrent presentations of one payment, one success.
func claimOnce(t *testing.T, b Backend) {
	l := open(t, b)
	h := hash(t, "p")
	until := time.Now().Add(time.Hour)
	wins, err := countTrue(run(64, func(int) (bool, error) { return l.Claim(ctx, h, until) }))
	must(t, err)
	if wins != 1 {
		t.Fatalf("64 concurrent claims of one payment: %d succeeded, want 1", wins)
	}
	if first, err := l.Claim(ctx, h, until.Add(time.Hour)); err != nil || first {
		t.Fatalf("claim again = %v, %v; want false", first, err)
	}
	if first, err := l.Claim(ctx, hash(t, "other"), until); err != nil || !first {
		t.Fatalf("claim of another payment = %v, %v; want true", first, err)
	}
}

// claimAgainstCredit: a payment is redeemed once, as a claim or a credit.
func claimAgainstCredit(t *testing.T, b Backend) {
	l := open(t, b)
	until := time.Now().Add(time.Hour)
	credit(t, l, "acct", "credited", 10)
	if first, err := l.Claim(ctx, hash(t, "credited"), until); err != nil || first {
		t.Fatalf("claim of a credited payment = %v, %v; want false", first, err)
	}
	if first, err := l.Claim(ctx, hash(t, "claimed"), until); err != nil || !first {
		t.Fatalf("claim = %v, %v", first, err)
	}
	_, err := l.Credit(ctx, "acct", hash(t, "claimed"), 10)
	wantErr(t, "credit of a claimed payment", err, ledger.ErrPaymentUsed)
	_, err = l.OpenSession(ctx, hash(t, "claimed"), 10, "lnbcrt1return")
	wantErr(t, "session opened with a claimed payment", err, ledger.ErrPaymentUsed)
	wantBalance(t, l, "acct", 10)
}

// creditOnce: presenting one paid credential again, even concurrently,
// credits once; another account cannot take the same payment.
func creditOnce(t *testing.T, b Backend) {
	l := open(t, b)
	h := hash(t, "p")
	n, err := countTrue(run(16, func(int) (bool, error) { return l.Credit(ctx, "acct", h, 20) }))
	must(t, err)
	if n != 1 {
		t.Fatalf("16 concurrent credits of one payment: %d credited, want 1", n)
	}
	wantBalance(t, l, "acct", 20)
	if ok, err := l.Credit(ctx, "acct", h, 20); err != nil || ok {
		t.Fatalf("credit again = %v, %v; want false, nil", ok, err)
	}
	_, err = l.Credit(ctx, "other", h, 20)
	wantErr(t, "credit of another account with the same payment", err, ledger.ErrPaymentUsed)
	credit(t, l, "acct", "second", 5)
	wantBalance(t, l, "acct", 25)
	_, err = l.Balance(ctx, "other")
	wantErr(t, "balance of an account never credited", err, ledger.ErrNotFound)
}

// draw: a draw takes what the balance covers, never more.
func draw(t *testing.T, b Backend) {
	l := open(t, b)
	_, err := l.Draw(ctx, "acct", 1)
	wantErr(t, "draw from an unknown account", err, ledger.ErrNotFound)
	credit(t, l, "acct", "p", 20)
	left, err := l.Draw(ctx, "acct", 5)
	must(t, err)
	if left != 15 {
		t.Fatalf("draw 5 of 20 left %d", left)
	}
	_, err = l.Draw(ctx, "acct", 20)
	var short *ledger.InsufficientError
	if !errors.As(err, &short) || !errors.Is(err, ledger.ErrInsufficient) {
		t.Fatalf("draw 20 of 15: got %v, want an InsufficientError", err)
	}
	if short.Needed != 20 || short.Available != 15 || short.Shortfall() != 5 || short.Account != "acct" {
		t.Fatalf("insufficient: %+v", short)
	}
	wantBalance(t, l, "acct", 15)
	left, err = l.Draw(ctx, "acct", 15)
	must(t, err)
	if left != 0 {
		t.Fatalf("draw of everything left %d", left)
	}
}

// drawRace: a balance of 20 at 1 sat drawn by 40 goroutines admits 20.
func drawRace(t *testing.T, b Backend) {
	l := open(t, b)
	credit(t, l, "acct", "p", 20)
	lefts, errs := run(40, func(int) (int64, error) { return l.Draw(ctx, "acct", 1) })
	admitted := countAdmitted(t, errs)
	if admitted != 20 {
		t.Fatalf("40 concurrent draws of 1 from 20: %d admitted, want 20", admitted)
	}
	seen := map[int64]bool{}
	for i, left := range lefts {
		if errs[i] == nil {
			seen[left] = true
		}
	}
	if len(seen) != 20 {
		t.Fatalf("admitted draws saw %d distinct remainders, want 20 (0..19)", len(seen))
	}
	wantBalance(t, l, "acct", 0)
}

// countAdmitted counts nil errors, and fails on errors other than
// ErrInsufficient.
func countAdmitted(t *testing.T, errs []error) int {
	t.Helper()
	n := 0
	for _, err := range errs {
		switch {
		case err == nil:
			n++
		case errors.Is(err, ledger.ErrInsufficient):
		default:
			t.Fatalf("draw: %v", err)
		}
	}
	return n
}

// reserveSettle: holds, settles at the real cost, releases, and an
// overage that takes the balance below zero until the next credit.
func reserveSettle(t *testing.T, b Backend) {
	l := open(t, b)
	credit(t, l, "acct", "p", 20)
	h, err := l.Reserve(ctx, "acct", 10)
	must(t, err)
	if h.Account != "acct" || h.Sats != 10 || h.Remaining != 10 {
		t.Fatalf("hold %+v", h)
	}
	wantBalance(t, l, "acct", 10)
	_, err = l.Draw(ctx, "acct", 11)
	wantErr(t, "draw beyond what a hold leaves", err, ledger.ErrInsufficient)
	left, err := l.Settle(ctx, h, 4)
	must(t, err)
	if left != 16 {
		t.Fatalf("settle 4 of a hold of 10 on 20: left %d, want 16", left)
	}
	_, err = l.Settle(ctx, h, 4)
	wantErr(t, "settle twice", err, ledger.ErrNotFound)
	wantBalance(t, l, "acct", 16)

	h, err = l.Reserve(ctx, "acct", 10)
	must(t, err)
	if left, err = l.Settle(ctx, h, 0); err != nil || left != 16 {
		t.Fatalf("release = %d, %v; want 16", left, err)
	}

	// The reported cost overruns the hold and the balance: charged in full.
	h, err = l.Reserve(ctx, "acct", 10)
	must(t, err)
	if left, err = l.Settle(ctx, h, 30); err != nil || left != -14 {
		t.Fatalf("settle 30 on a hold of 10 with 16: %d, %v; want -14", left, err)
	}
	_, err = l.Draw(ctx, "acct", 1)
	var short *ledger.InsufficientError
	if !errors.As(err, &short) || short.Available != -14 {
		t.Fatalf("draw in debt: %v", err)
	}
	_, err = l.Reserve(ctx, "acct", 1)
	wantErr(t, "reserve in debt", err, ledger.ErrInsufficient)
	credit(t, l, "acct", "topup", 20)
	wantBalance(t, l, "acct", 6)

	_, err = l.Reserve(ctx, "nobody", 1)
	wantErr(t, "reserve from an unknown account", err, ledger.ErrNotFound)
	_, err = l.Settle(ctx, ledger.Hold{Account: "acct", ID: 999, Sats: 1}, 1)
	wantErr(t, "settle of an unknown hold", err, ledger.ErrNotFound)
}

// reserveRace: 40 concurrent reservations of 1 on 20 hold 20.
func reserveRace(t *testing.T, b Backend) {
	l := open(t, b)
	credit(t, l, "acct", "p", 20)
	holds, errs := run(40, func(int) (ledger.Hold, error) { return l.Reserve(ctx, "acct", 1) })
	if n := countAdmitted(t, errs); n != 20 {
		t.Fatalf("40 concurrent reservations of 1 from 20: %d admitted, want 20", n)
	}
	ids := map[uint64]bool{}
	for i, h := range holds {
		if errs[i] == nil {
			ids[h.ID] = true
		}
	}
	if len(ids) != 20 {
		t.Fatalf("20 holds with %d distinct ids", len(ids))
	}
	wantBalance(t, l, "acct", 0)
	_, errs = run(40, func(i int) (int64, error) {
		if errs[i] != nil {
			return 0, nil
		}
		return l.Settle(ctx, holds[i], 1)
	})
	for _, err := range errs {
		must(t, err)
	}
	wantBalance(t, l, "acct", 0)
	_, err := l.Draw(ctx, "acct", 1)
	wantErr(t, "draw after every hold was charged", err, ledger.ErrInsufficient)
}

// twoInstances: two instances over one store draw from one balance and
// claim one payment. Exact only for a shared backend.
func twoInstances(t *testing.T, b Backend) {
	if !b.Shared {
		t.Skip("instances of this backend are not exact together (one process only); exact across instances means Redis")
	}
	a, c := open(t, b), open(t, b)
	credit(t, a, "acct", "p", 20)
	instances := []ledger.Ledger{a, c}
	_, errs := run(40, func(i int) (int64, error) { return instances[i%2].Draw(ctx, "acct", 1) })
	if n := countAdmitted(t, errs); n != 20 {
		t.Fatalf("40 draws of 1 from 20 over two instances: %d admitted, want 20", n)
	}
	wantBalance(t, c, "acct", 0)

	until := time.Now().Add(time.Hour)
	h := hash(t, "single")
	wins, err := countTrue(run(64, func(i int) (bool, error) { return instances[i%2].Claim(ctx, h, until) }))
	must(t, err)
	if wins != 1 {
		t.Fatalf("64 claims of one payment over two instances: %d succeeded, want 1", wins)
	}

	n, err := countTrue(run(16, func(i int) (bool, error) { return instances[i%2].Credit(ctx, "other", hash(t, "p2"), 7) }))
	must(t, err)
	if n != 1 {
		t.Fatalf("16 credits of one payment over two instances: %d credited, want 1", n)
	}
	wantBalance(t, a, "other", 7)
}

// restart: a clean stop and a new instance keep balances, claims and
// sessions.
func restart(t *testing.T, b Backend) {
	l := open(t, b)
	credit(t, l, "acct", "p", 20)
	if _, err := l.Draw(ctx, "acct", 5); err != nil {
		t.Fatal(err)
	}
	h, err := l.Reserve(ctx, "acct", 3)
	must(t, err)
	if _, err := l.Settle(ctx, h, 2); err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(time.Hour)
	if first, err := l.Claim(ctx, hash(t, "single"), until); err != nil || !first {
		t.Fatalf("claim = %v, %v", first, err)
	}
	deposit := hash(t, "deposit")
	if _, err := l.OpenSession(ctx, deposit, 50, "lnbcrt1return"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Draw(ctx, deposit.String(), 8); err != nil {
		t.Fatal(err)
	}
	closing := hash(t, "closing")
	if _, err := l.OpenSession(ctx, closing, 30, "lnbcrt1return"); err != nil {
		t.Fatal(err)
	}
	if refund, err := l.CloseSession(ctx, closing.String()); err != nil || refund != 30 {
		t.Fatalf("close = %d, %v", refund, err)
	}
	b.Stop(t, l)

	l = open(t, b)
	wantBalance(t, l, "acct", 13)
	if first, err := l.Claim(ctx, hash(t, "single"), until); err != nil || first {
		t.Fatalf("claim after restart = %v, %v; want false", first, err)
	}
	if ok, err := l.Credit(ctx, "acct", hash(t, "p"), 20); err != nil || ok {
		t.Fatalf("credit again after restart = %v, %v; want false", ok, err)
	}
	s, err := l.Session(ctx, deposit.String())
	must(t, err)
	if s.Deposit != 50 || s.Spent != 8 || s.Closed || s.ReturnInvoice != "lnbcrt1return" {
		t.Fatalf("session after restart: %+v", s)
	}
	_, err = l.CloseSession(ctx, closing.String())
	wantErr(t, "close after restart of a session closed before", err, ledger.ErrClosed)
}

// sessionLifecycle: open, draw, top up, close with the refund once, record
// its outcome.
func sessionLifecycle(t *testing.T, b Backend) {
	l := open(t, b)
	deposit := hash(t, "deposit")
	id := deposit.String()
	opened, err := l.OpenSession(ctx, deposit, 100, "lnbcrt1return")
	must(t, err)
	if !opened {
		t.Fatal("open: not opened")
	}
	if opened, err = l.OpenSession(ctx, deposit, 100, "lnbcrt1other"); err != nil || opened {
		t.Fatalf("open again = %v, %v; want false, nil", opened, err)
	}
	s, err := l.Session(ctx, id)
	must(t, err)
	if s.ID != id || s.Deposit != 100 || s.Spent != 0 || s.Closed || s.ReturnInvoice != "lnbcrt1return" ||
		s.OpenedAt.IsZero() || s.LastActivity.Before(s.OpenedAt) || s.RefundStatus != "" || s.Available() != 100 {
		t.Fatalf("opened session: %+v", s)
	}
	if left, err := l.Draw(ctx, id, 30); err != nil || left != 70 {
		t.Fatalf("draw 30 = %d, %v", left, err)
	}
	if ok, err := l.TopUp(ctx, id, hash(t, "topup"), 50); err != nil || !ok {
		t.Fatalf("top-up = %v, %v", ok, err)
	}
	if ok, err := l.TopUp(ctx, id, hash(t, "topup"), 50); err != nil || ok {
		t.Fatalf("top-up again = %v, %v; want false, nil", ok, err)
	}
	_, err = l.TopUp(ctx, hash(t, "nosuch").String(), hash(t, "topup2"), 50)
	wantErr(t, "top-up of an unknown session", err, ledger.ErrNotFound)
	_, err = l.TopUp(ctx, "prepaid", hash(t, "topup2"), 50)
	wantErr(t, "top-up of an account that is no session", err, ledger.ErrNotFound)
	wantBalance(t, l, id, 120)

	h, err := l.Reserve(ctx, id, 10)
	must(t, err)
	refund, err := l.CloseSession(ctx, id)
	must(t, err)
	if refund != 110 {
		t.Fatalf("refund = %d, want 150 - 30 - 10 held = 110", refund)
	}
	_, err = l.CloseSession(ctx, id)
	wantErr(t, "second close", err, ledger.ErrClosed)
	_, err = l.Draw(ctx, id, 1)
	wantErr(t, "draw from a closed session", err, ledger.ErrClosed)
	_, err = l.Reserve(ctx, id, 1)
	wantErr(t, "reserve from a closed session", err, ledger.ErrClosed)
	_, err = l.TopUp(ctx, id, hash(t, "late"), 10)
	wantErr(t, "top-up of a closed session", err, ledger.ErrClosed)
	if first, err := l.Claim(ctx, hash(t, "late"), time.Now().Add(time.Hour)); err != nil || !first {
		t.Fatalf("a payment refused by a closed session stays unused: claim = %v, %v", first, err)
	}
	// The hold in flight at the close settles within itself.
	if left, err := l.Settle(ctx, h, 25); err != nil || left != 0 {
		t.Fatalf("settle after close = %d, %v", left, err)
	}
	wantBalance(t, l, id, 0)

	s, err = l.Session(ctx, id)
	must(t, err)
	if !s.Closed || s.Spent != 40 || s.Held != 0 || s.Refund != 110 || s.RefundStatus != ledger.RefundPending ||
		s.ClosedAt.IsZero() || s.Available() != 0 {
		t.Fatalf("closed session: %+v", s)
	}
	refundHash := hash(t, "refund")
	must(t, l.RecordRefund(ctx, id, ledger.Refund{Status: ledger.RefundUnknown, Payment: refundHash}))
	must(t, l.RecordRefund(ctx, id, ledger.Refund{Status: ledger.RefundSucceeded, Payment: refundHash}))
	err = l.RecordRefund(ctx, id, ledger.Refund{Status: ledger.RefundFailed, Payment: refundHash})
	wantErr(t, "a refund recorded twice as final", err, ledger.ErrInvalid)
	s, err = l.Session(ctx, id)
	must(t, err)
	if s.RefundStatus != ledger.RefundSucceeded || s.RefundPayment != refundHash {
		t.Fatalf("refund outcome: %+v", s)
	}

	// Nothing left: nothing to pay, and no outcome to record.
	empty := hash(t, "empty")
	if _, err := l.OpenSession(ctx, empty, 5, "lnbcrt1return"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Draw(ctx, empty.String(), 5); err != nil {
		t.Fatal(err)
	}
	if refund, err := l.CloseSession(ctx, empty.String()); err != nil || refund != 0 {
		t.Fatalf("close of a spent session = %d, %v", refund, err)
	}
	s, err = l.Session(ctx, empty.String())
	must(t, err)
	if s.RefundStatus != ledger.RefundSkipped {
		t.Fatalf("refund status of a spent session = %q", s.RefundStatus)
	}
	err = l.RecordRefund(ctx, empty.String(), ledger.Refund{Status: ledger.RefundSucceeded})
	wantErr(t, "a refund recorded where none was owed", err, ledger.ErrInvalid)

	_, err = l.Session(ctx, "prepaid")
	wantErr(t, "session of an unknown id", err, ledger.ErrNotFound)
	_, err = l.CloseSession(ctx, hash(t, "nosuch").String())
	wantErr(t, "close of an unknown session", err, ledger.ErrNotFound)
	credit(t, l, "prepaid", "prepaid", 5)
	_, err = l.CloseSession(ctx, "prepaid")
	wantErr(t, "close of a prepaid account", err, ledger.ErrNotFound)
}

// closeRace: concurrent closes pay the refund once.
func closeRace(t *testing.T, b Backend) {
	l := open(t, b)
	deposit := hash(t, "deposit")
	if _, err := l.OpenSession(ctx, deposit, 100, "lnbcrt1return"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Draw(ctx, deposit.String(), 1); err != nil {
		t.Fatal(err)
	}
	refunds, errs := run(16, func(int) (int64, error) { return l.CloseSession(ctx, deposit.String()) })
	var paid []int64
	for i, err := range errs {
		switch {
		case err == nil:
			paid = append(paid, refunds[i])
		case errors.Is(err, ledger.ErrClosed):
			if refunds[i] != 0 {
				t.Fatalf("a refused close returned %d", refunds[i])
			}
		default:
			t.Fatal(err)
		}
	}
	if !slices.Equal(paid, []int64{99}) {
		t.Fatalf("16 concurrent closes returned refunds %v, want exactly [99]", paid)
	}
}

// idleSessions: open sessions least recently active first; closed ones
// never.
func idleSessions(t *testing.T, b Backend) {
	l := open(t, b)
	var ids []string
	for _, label := range []string{"s1", "s2", "s3"} {
		h := hash(t, label)
		if _, err := l.OpenSession(ctx, h, 10, "lnbcrt1return"); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, h.String())
		time.Sleep(3 * time.Millisecond) // distinct millisecond stamps
	}
	if _, err := l.CloseSession(ctx, ids[2]); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Draw(ctx, ids[0], 1); err != nil { // s1 is now the most recent
		t.Fatal(err)
	}
	got, err := l.IdleSessions(ctx, 0, 10)
	must(t, err)
	if !slices.Equal(got, []string{ids[1], ids[0]}) {
		t.Fatalf("idle sessions = %v, want [s2 s1] = %v", got, ids[:2])
	}
	got, err = l.IdleSessions(ctx, 0, 1)
	must(t, err)
	if !slices.Equal(got, []string{ids[1]}) {
		t.Fatalf("idle sessions, limit 1 = %v, want [s2]", got)
	}
	for _, limit := range []int{0, -1} {
		if got, err = l.IdleSessions(ctx, 0, limit); err != nil || len(got) != 0 {
			t.Fatalf("idle sessions, limit %d = %v, %v; want none", limit, got, err)
		}
	}
	got, err = l.IdleSessions(ctx, time.Hour, 10)
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("sessions idle for an hour = %v, want none", got)
	}
}

// invalid: bad arguments are refused before anything changes.
func invalid(t *testing.T, b Backend) {
	l := open(t, b)
	p := hash(t, "p")
	for _, sats := range []int64{0, -1, ledger.MaxSats + 1} {
		_, err := l.Credit(ctx, "acct", p, sats)
		wantErr(t, "credit of a bad amount", err, ledger.ErrInvalid)
		_, err = l.Draw(ctx, "acct", sats)
		wantErr(t, "draw of a bad amount", err, ledger.ErrInvalid)
		_, err = l.Reserve(ctx, "acct", sats)
		wantErr(t, "reserve of a bad amount", err, ledger.ErrInvalid)
	}
	for _, id := range []string{"", "../escape", "a/b", "a b", string(make([]byte, 129))} {
		_, err := l.Credit(ctx, id, p, 1)
		wantErr(t, "credit of a bad account id", err, ledger.ErrInvalid)
	}
	_, err := l.Claim(ctx, p, time.Now().Add(-time.Second))
	wantErr(t, "claim until the past", err, ledger.ErrInvalid)
	_, err = l.OpenSession(ctx, p, 10, "")
	wantErr(t, "open without return invoice", err, ledger.ErrInvalid)
	_, err = l.OpenSession(ctx, p, 10, "lnbc\n1")
	wantErr(t, "open with a bad return invoice", err, ledger.ErrInvalid)

	credit(t, l, "acct", "p", 10) // nothing above used p
	h, err := l.Reserve(ctx, "acct", 5)
	must(t, err)
	_, err = l.Settle(ctx, h, -1)
	wantErr(t, "settle at a negative cost", err, ledger.ErrInvalid)
	deposit := hash(t, "deposit")
	if _, err := l.OpenSession(ctx, deposit, 10, "lnbcrt1return"); err != nil {
		t.Fatal(err)
	}
	err = l.RecordRefund(ctx, deposit.String(), ledger.Refund{Status: ledger.RefundSucceeded})
	wantErr(t, "refund of an open session", err, ledger.ErrInvalid)
	if _, err := l.CloseSession(ctx, deposit.String()); err != nil {
		t.Fatal(err)
	}
	err = l.RecordRefund(ctx, deposit.String(), ledger.Refund{Status: ledger.RefundPending})
	wantErr(t, "refund recorded as pending", err, ledger.ErrInvalid)
	if _, err := ledger.ParseHash("zz"); !errors.Is(err, ledger.ErrInvalid) {
		t.Fatalf("ParseHash(zz): %v", err)
	}
	if got, err := ledger.ParseHash(deposit.String()); err != nil || got != deposit {
		t.Fatalf("ParseHash(String()) = %v, %v", got, err)
	}
}

// largeAmounts: sums stay exact up to MaxSats (Redis computes in Lua's
// doubles, exact to 2^53).
func largeAmounts(t *testing.T, b Backend) {
	l := open(t, b)
	credit(t, l, "acct", "p", ledger.MaxSats)
	if left, err := l.Draw(ctx, "acct", 1); err != nil || left != ledger.MaxSats-1 {
		t.Fatalf("draw 1 of MaxSats = %d, %v", left, err)
	}
	h, err := l.Reserve(ctx, "acct", ledger.MaxSats-1)
	must(t, err)
	if h.Remaining != 0 {
		t.Fatalf("hold of everything left %d", h.Remaining)
	}
	if left, err := l.Settle(ctx, h, ledger.MaxSats); err != nil || left != -1 {
		t.Fatalf("settle MaxSats = %d, %v; want -1", left, err)
	}
	credit(t, l, "acct", "p2", ledger.MaxSats)
	wantBalance(t, l, "acct", ledger.MaxSats-1)
	deposit := hash(t, "deposit")
	if _, err := l.OpenSession(ctx, deposit, ledger.MaxSats, "lnbcrt1return"); err != nil {
		t.Fatal(err)
	}
	if ok, err := l.TopUp(ctx, deposit.String(), hash(t, "topup"), ledger.MaxSats); err != nil || !ok {
		t.Fatalf("top-up = %v, %v", ok, err)
	}
	if refund, err := l.CloseSession(ctx, deposit.String()); err != nil || refund != 2*ledger.MaxSats {
		t.Fatalf("refund = %d, %v; want %d", refund, err, int64(2*ledger.MaxSats))
	}
}
