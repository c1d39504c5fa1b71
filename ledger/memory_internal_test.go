package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io/fs"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var bg = context.Background()

// mapStorage is a Storage in memory that can be made to fail and copied
// at an instant, to stand for the disk at a crash.
type mapStorage struct {
	mu    sync.Mutex
	blobs map[string][]byte
	fail  bool // every call fails while set
}

func newMapStorage() *mapStorage { return &mapStorage{blobs: map[string][]byte{}} }

var errStorageDown = errors.New("storage down")

func (s *mapStorage) Store(_ context.Context, key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return errStorageDown
	}
	s.blobs[key] = append([]byte(nil), value...)
	return nil
}

func (s *mapStorage) Load(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return nil, errStorageDown
	}
	v, ok := s.blobs[key]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return v, nil
}

func (s *mapStorage) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return errStorageDown
	}
	delete(s.blobs, key)
	return nil
}

func (s *mapStorage) List(_ context.Context, prefix string, _ bool) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return nil, errStorageDown
	}
	var keys []string
	for k := range s.blobs {
		if strings.HasPrefix(k, prefix+"/") {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

func (s *mapStorage) setFail(fail bool) {
	s.mu.Lock()
	s.fail = fail
	s.mu.Unlock()
}

// copy returns what the storage holds now: the disk after a crash.
func (s *mapStorage) copy() *mapStorage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &mapStorage{blobs: maps.Clone(s.blobs)}
}

func loaded(t testing.TB, store Storage, opt MemoryOptions) *Memory {
	t.Helper()
	m := NewMemory(store, opt)
	if err := m.Load(bg); err != nil {
		t.Fatal(err)
	}
	return m
}

func testHash(i int) Hash {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	return sha256.Sum256(b[:])
}

// TestCrashLosesUnflushed: a crash (no last flush) loses exactly the
// claims and draws since the last flush, and no credit or session change.
func TestCrashLosesUnflushed(t *testing.T) {
	store := newMapStorage()
	m := loaded(t, store, MemoryOptions{})
	until := time.Now().Add(time.Hour)
	if _, err := m.Credit(bg, "acct", testHash(0), 100); err != nil {
		t.Fatal(err)
	}
	if _, err := m.OpenSession(bg, testHash(1), 50, "lnbcrt1return"); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := m.Claim(bg, testHash(100+i), until); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Draw(bg, "acct", 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Flush(bg); err != nil {
		t.Fatal(err)
	}
	for i := range 7 { // the window a crash loses
		if _, err := m.Claim(bg, testHash(200+i), until); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Draw(bg, "acct", 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.CloseSession(bg, testHash(1).String()); err != nil { // stored at once
		t.Fatal(err)
	}
	if _, err := m.Credit(bg, "acct", testHash(2), 5); err != nil { // stored at once, with the draws so far
		t.Fatal(err)
	}
	if _, err := m.Draw(bg, "acct", 1); err != nil { // after the credit's write: lost
		t.Fatal(err)
	}

	after := loaded(t, store.copy(), MemoryOptions{}) // the crash: no last flush
	for i := range 10 {
		if first, _ := after.Claim(bg, testHash(100+i), until); first {
			t.Fatalf("flushed claim %d forgotten", i)
		}
	}
	replayable := 0
	for i := range 7 {
		if first, _ := after.Claim(bg, testHash(200+i), until); first {
			replayable++
		}
	}
	if replayable != 7 {
		t.Fatalf("%d of 7 unflushed claims replayable after the crash, want 7 (nothing flushed them)", replayable)
	}
	// 105 credited, 10 flushed draws, 7 more stored with the credit, 1 lost.
	if bal, err := after.Balance(bg, "acct"); err != nil || bal != 105-17 {
		t.Fatalf("balance after crash = %d, %v; want %d", bal, err, 105-17)
	}
	s, err := after.Session(bg, testHash(1).String())
	if err != nil || !s.Closed || s.Refund != 50 {
		t.Fatalf("session after crash: %+v, %v", s, err)
	}
}

// TestCrashLossBound runs claims and draws at a steady rate with the
// flusher on, takes the storage as it is at random instants (a crash), and
// counts what each crash loses: claims that can be redeemed again and
// draws no longer recorded. Each loss must be within the bound the ledger
// keeps (operations since the last completed flush, capped by MaxUnsaved)
// and is reported against rate × interval.
func TestCrashLossBound(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for a few seconds")
	}
	for _, interval := range []time.Duration{10 * time.Millisecond, 100 * time.Millisecond, 500 * time.Millisecond} {
		t.Run(interval.String(), func(t *testing.T) { crashLossBound(t, interval) })
	}
}

func crashLossBound(t *testing.T, interval time.Duration) {
	store := newMapStorage()
	m := loaded(t, store, MemoryOptions{FlushInterval: interval})
	if _, err := m.Credit(bg, "acct", testHash(-1), MaxSats); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	runDone := make(chan error, 1)
	go func() { runDone <- m.Run(ctx) }()

	// Four workers, each a claim and a draw per step, 25 steps per ms
	// paced: about 200,000 operations per second in all.
	var stop atomic.Bool
	var next atomic.Int64
	var wg sync.WaitGroup
	var workerErr atomic.Pointer[error]
	until := time.Now().Add(time.Hour)
	start := time.Now()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				for range 25 {
					if _, err := m.Claim(bg, testHash(int(next.Add(1))), until); err != nil {
						workerErr.Store(&err)
						return
					}
					if _, err := m.Draw(bg, "acct", 1); err != nil {
						workerErr.Store(&err)
						return
					}
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}

	type crash struct {
		disk          *mapStorage
		claims, spent int64 // in memory at the crash
		unsaved       uint64
	}
	var crashes []crash
	for i := range 8 {
		time.Sleep(interval/2 + time.Duration(i)*interval/7) // crashes all through a flush cycle
		// The disk and the ledger at one instant: no Store runs while the
		// storage's lock is held, and the ledger's lock is taken inside it.
		store.mu.Lock()
		m.mu.Lock()
		crashes = append(crashes, crash{
			disk:    &mapStorage{blobs: maps.Clone(store.blobs)},
			claims:  int64(len(m.claims)),
			spent:   m.accounts["acct"].spent,
			unsaved: m.ops - m.savedOps,
		})
		m.mu.Unlock()
		store.mu.Unlock()
	}
	elapsed := time.Since(start)
	stop.Store(true)
	wg.Wait()
	cancel()
	if err := <-runDone; err != nil {
		t.Fatal(err)
	}
	if p := workerErr.Load(); p != nil {
		t.Fatal(*p)
	}
	m.mu.Lock()
	rate := float64(m.ops) / elapsed.Seconds()
	m.mu.Unlock()

	worst := int64(0)
	for i, c := range crashes {
		after := loaded(t, c.disk, MemoryOptions{})
		lostClaims := c.claims - int64(len(after.claims))
		bal, err := after.Balance(bg, "acct")
		if err != nil {
			t.Fatal(err)
		}
		lostDraws := c.spent - (MaxSats - bal)
		lost := lostClaims + lostDraws
		if lostClaims < 0 || lostDraws < 0 || uint64(lost) > c.unsaved || lost > int64(m.opt.MaxUnsaved) {
			t.Fatalf("crash %d: lost %d claims and %d draws; the ledger had %d operations unsaved (cap %d)",
				i, lostClaims, lostDraws, c.unsaved, m.opt.MaxUnsaved)
		}
		worst = max(worst, lost)
	}
	t.Logf("flush every %s at %.0f ops/s: the worst of %d crashes lost %d operations (served twice or unbilled) = %.1f ms of traffic; rate × interval = %.0f",
		interval, rate, len(crashes), worst, float64(worst)/rate*1000, rate*interval.Seconds())
}

// TestStorageFailures: a credit or close that cannot be stored is undone
// and reported unavailable; a failed flush keeps its work for the next;
// at MaxUnsaved claims and draws fail closed until a flush succeeds.
func TestStorageFailures(t *testing.T) {
	store := newMapStorage()
	m := loaded(t, store, MemoryOptions{MaxUnsaved: 10})
	until := time.Now().Add(time.Hour)
	if _, err := m.Credit(bg, "acct", testHash(0), 100); err != nil {
		t.Fatal(err)
	}
	if _, err := m.OpenSession(bg, testHash(1), 50, "lnbcrt1return"); err != nil {
		t.Fatal(err)
	}
	store.setFail(true)
	if _, err := m.Credit(bg, "acct", testHash(2), 5); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("credit with storage down: %v", err)
	}
	if _, err := m.Credit(bg, "new", testHash(3), 5); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("credit of a new account with storage down: %v", err)
	}
	if _, err := m.CloseSession(bg, testHash(1).String()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("close with storage down: %v", err)
	}
	if bal, _ := m.Balance(bg, "acct"); bal != 100 {
		t.Fatalf("balance after a failed credit = %d, want 100", bal)
	}
	if _, err := m.Balance(bg, "new"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an account whose creating credit failed: %v", err)
	}
	if s, _ := m.Session(bg, testHash(1).String()); s.Closed {
		t.Fatal("a close that could not be stored left the session closed")
	}
	for i := range 5 {
		if _, err := m.Claim(bg, testHash(10+i), until); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Draw(bg, "acct", 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Flush(bg); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("flush with storage down: %v", err)
	}
	if _, err := m.Claim(bg, testHash(20), until); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("claim at MaxUnsaved: %v", err)
	}
	if _, err := m.Draw(bg, "acct", 1); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("draw at MaxUnsaved: %v", err)
	}
	if _, err := m.Reserve(bg, "acct", 1); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("reserve at MaxUnsaved: %v", err)
	}

	store.setFail(false)
	if err := m.Flush(bg); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Draw(bg, "acct", 1); err != nil {
		t.Fatalf("draw after a successful flush: %v", err)
	}
	// The payments of the failed credits are unused, so they can be retried.
	if ok, err := m.Credit(bg, "acct", testHash(2), 5); err != nil || !ok {
		t.Fatalf("credit retried = %v, %v", ok, err)
	}
	after := loaded(t, store.copy(), MemoryOptions{})
	if bal, _ := after.Balance(bg, "acct"); bal != 105-6 {
		t.Fatalf("stored balance = %d, want 99 (credits of 100 and 5; 5 draws flushed late, 1 stored with the credit)", bal)
	}
	for i := range 5 {
		if first, _ := after.Claim(bg, testHash(10+i), until); first {
			t.Fatalf("claim %d made while storage was down was lost although a later flush succeeded", i)
		}
	}
}

// TestLoad: operations wait for Load; corrupt state fails it.
func TestLoad(t *testing.T) {
	store := newMapStorage()
	m := NewMemory(store, MemoryOptions{})
	if _, err := m.Claim(bg, testHash(0), time.Now().Add(time.Hour)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("claim before Load: %v", err)
	}
	if _, err := m.Credit(bg, "acct", testHash(0), 1); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("credit before Load: %v", err)
	}
	if err := m.Load(bg); err != nil {
		t.Fatal(err)
	}
	if err := m.Load(bg); err == nil {
		t.Fatal("second Load succeeded")
	}

	for key, blob := range map[string]string{
		"lightning/ledger/accounts/acct.json":           `{"credited":-1}`,
		"lightning/ledger/accounts/a.b.json":            `{}`,
		"lightning/ledger/accounts/x.json":              `{"payments":["zz"]}`,
		"lightning/ledger/accounts/y.json":              `{"session":{"refund_status":"maybe"}}`,
		"lightning/ledger/accounts/z.json":              `not json`,
		"lightning/ledger/claims/9999999999999-x-1.bin": "LCL1short",
	} {
		bad := newMapStorage()
		bad.blobs[key] = []byte(blob)
		if err := NewMemory(bad, MemoryOptions{}).Load(bg); !errors.Is(err, ErrCorrupt) {
			t.Errorf("load of %s = %q: %v, want ErrCorrupt", key, blob, err)
		}
	}
	// A crash in the middle of a write leaves a temporary file of the
	// storage (certmagic's are named with digits); Load skips it.
	stray := newMapStorage()
	stray.blobs["lightning/ledger/accounts/123456789"] = []byte(`{"credited":`)
	stray.blobs["lightning/ledger/claims/987654321"] = []byte("LCL1")
	if err := NewMemory(stray, MemoryOptions{}).Load(bg); err != nil {
		t.Fatalf("load beside temporary files: %v", err)
	}
	down := newMapStorage()
	down.setFail(true)
	if err := NewMemory(down, MemoryOptions{}).Load(bg); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("load with storage down: %v", err)
	}
}

// TestHoldsAndClaimsExpire: an unsettled hold lapses after HoldTimeout;
// claims are forgotten, and their stored blobs deleted, after their until.
func TestHoldsAndClaimsExpire(t *testing.T) {
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	store := newMapStorage()
	m := loaded(t, store, MemoryOptions{HoldTimeout: time.Minute, Now: clock})
	if _, err := m.Credit(bg, "acct", testHash(0), 10); err != nil {
		t.Fatal(err)
	}
	h, err := m.Reserve(bg, "acct", 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Draw(bg, "acct", 1); !errors.Is(err, ErrInsufficient) {
		t.Fatalf("draw while held: %v", err)
	}
	advance(time.Minute)
	if bal, _ := m.Balance(bg, "acct"); bal != 10 {
		t.Fatalf("balance after the hold lapsed = %d, want 10", bal)
	}
	if _, err := m.Settle(bg, h, 10); !errors.Is(err, ErrNotFound) {
		t.Fatalf("settle of a lapsed hold: %v", err)
	}

	if _, err := m.Claim(bg, testHash(1), clock().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := m.Flush(bg); err != nil {
		t.Fatal(err)
	}
	claimKeys, _ := store.List(bg, "lightning/ledger/claims", false)
	if len(claimKeys) != 1 {
		t.Fatalf("stored claim blobs: %v", claimKeys)
	}
	reloaded := loaded(t, store.copy(), MemoryOptions{Now: clock})
	if first, _ := reloaded.Claim(bg, testHash(1), clock().Add(2*time.Hour)); first {
		t.Fatal("claim forgotten across a restart before its until")
	}
	advance(time.Hour)
	if err := m.Flush(bg); err != nil {
		t.Fatal(err)
	}
	if claimKeys, _ = store.List(bg, "lightning/ledger/claims", false); len(claimKeys) != 0 {
		t.Fatalf("claim blobs left after their until: %v", claimKeys)
	}
	m.mu.Lock()
	_, kept := m.claims[testHash(1)]
	_, credit := m.credits[testHash(0)]
	m.mu.Unlock()
	if kept || !credit {
		t.Fatalf("after until: claim kept %v (want false), credit kept %v (want true)", kept, credit)
	}
}

// TestRunFlushesOnStop: Run's last flush stores everything.
func TestRunFlushesOnStop(t *testing.T) {
	store := newMapStorage()
	m := loaded(t, store, MemoryOptions{FlushInterval: time.Hour})
	if _, err := m.Credit(bg, "acct", testHash(0), 10); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	if _, err := m.Draw(bg, "acct", 3); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if bal, _ := loaded(t, store.copy(), MemoryOptions{}).Balance(bg, "acct"); bal != 7 {
		t.Fatalf("balance after a clean stop = %d, want 7", bal)
	}
}
