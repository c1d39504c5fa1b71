package ledger_test

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lightningcaddy/caddy-lightning/ledger"
	"github.com/lightningcaddy/caddy-lightning/ledger/ledgertest"
)

// benchLedger is a memory ledger over file storage with its flusher
// running every flush, as in a server, and an account holding more than
// any benchmark draws. A benchmark's loop runs millions of operations a
// second, far beyond what the default MaxUnsaved lets one flush interval
// take (that cap would fail them closed): it is lifted here, so the
// figures are the operations' own cost plus the flusher's.
func benchLedger(b *testing.B, flush time.Duration) *ledger.Memory {
	m := ledger.NewMemory(fileStorage(b), ledger.MemoryOptions{MaxUnsaved: math.MaxInt, FlushInterval: flush})
	if err := m.Load(context.Background()); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	})
	if _, err := m.Credit(ctx, "acct", ledger.Hash{0xff}, ledger.MaxSats); err != nil {
		b.Fatal(err)
	}
	return m
}

func counterHash(i uint64) ledger.Hash {
	var h ledger.Hash
	binary.LittleEndian.PutUint64(h[:], i)
	h[31] = 1 // never the credit's
	return h
}

// Claims last claimTTL and the flusher runs every claimFlush: the ledger
// forgets a claim at the first flush after its until, so its map and
// buffers reach a steady size, as in a server whose credentials expire.
// warmClaims gets there before the timer starts.
const (
	claimTTL   = 500 * time.Millisecond
	claimFlush = 250 * time.Millisecond
)

// claimer claims fresh payments, renewing their until every 64 claims.
type claimer struct {
	m     *ledger.Memory
	next  *atomic.Uint64
	until time.Time
	n     int
}

func (c *claimer) claim() error {
	if c.n%64 == 0 {
		c.until = time.Now().Add(claimTTL)
	}
	c.n++
	first, err := c.m.Claim(context.Background(), counterHash(c.next.Add(1)), c.until)
	if err == nil && !first {
		err = errors.New("a fresh payment was claimed before")
	}
	return err
}

// warmClaims claims for three flush intervals past claimTTL.
func warmClaims(b *testing.B, c *claimer) {
	for start := time.Now(); time.Since(start) < claimTTL+3*claimFlush; {
		if err := c.claim(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClaim: one per-request payment spent on the embedded ledger,
// in steady state.
func BenchmarkClaim(b *testing.B) {
	c := &claimer{m: benchLedger(b, claimFlush), next: new(atomic.Uint64)}
	warmClaims(b, c)
	ledgertest.Bench(b, func() {
		for range b.N {
			if err := c.claim(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkClaimParallel: claims from GOMAXPROCS goroutines at once.
func BenchmarkClaimParallel(b *testing.B) {
	m, next := benchLedger(b, claimFlush), new(atomic.Uint64)
	warmClaims(b, &claimer{m: m, next: next})
	ledgertest.Bench(b, func() {
		b.RunParallel(func(pb *testing.PB) {
			c := &claimer{m: m, next: next}
			for pb.Next() {
				if err := c.claim(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkDraw: one prepaid request drawn from a balance.
func BenchmarkDraw(b *testing.B) {
	m := benchLedger(b, time.Second)
	ctx := context.Background()
	ledgertest.Bench(b, func() {
		for range b.N {
			if _, err := m.Draw(ctx, "acct", 1); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDrawParallel: draws from one balance by GOMAXPROCS goroutines.
func BenchmarkDrawParallel(b *testing.B) {
	m := benchLedger(b, time.Second)
	ctx := context.Background()
	ledgertest.Bench(b, func() {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := m.Draw(ctx, "acct", 1); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkReserveSettle: one request at a reported cost: reserved at
// admission, settled when the response ends.
func BenchmarkReserveSettle(b *testing.B) {
	m := benchLedger(b, time.Second)
	ctx := context.Background()
	ledgertest.Bench(b, func() {
		for range b.N {
			h, err := m.Reserve(ctx, "acct", 10)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := m.Settle(ctx, h, 3); err != nil {
				b.Fatal(err)
			}
		}
	})
}
