package redisledger_test

import (
	"encoding/binary"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lightningcaddy/caddy-lightning/internal/redistest"
	"github.com/lightningcaddy/caddy-lightning/ledger"
	"github.com/lightningcaddy/caddy-lightning/ledger/ledgertest"
	"github.com/lightningcaddy/caddy-lightning/ledger/redisledger"
)

// benchLedger starts a redis-server on loopback and returns a ledger on
// it, with an account holding more than any benchmark draws and the
// scripts cached, and a client for the server's statistics.
func benchLedger(b *testing.B) (*redisledger.Ledger, *redis.Client) {
	srv := redistest.Start(b, redistest.Options{})
	stats := redis.NewClient(&redis.Options{Addr: srv.Addr})
	b.Cleanup(func() { _ = stats.Close() })
	l := open(b, redisledger.Options{URL: srv.URL})
	if _, err := l.Credit(ctx, "acct", ledger.Hash{0xff}, ledger.MaxSats); err != nil {
		b.Fatal(err)
	}
	if _, err := l.Draw(ctx, "acct", 1); err != nil {
		b.Fatal(err)
	}
	if _, err := l.Claim(ctx, ledger.Hash{0xfe}, time.Now().Add(time.Hour)); err != nil {
		b.Fatal(err)
	}
	return l, stats
}

func counterHash(i uint64) ledger.Hash {
	var h ledger.Hash
	binary.LittleEndian.PutUint64(h[:], i)
	h[31] = 1
	return h
}

// measure runs the benchmark body and reports Redis round trips per
// operation, counted by the server, and the client's CPU time per
// operation (Redis's own is not in it).
func measure(b *testing.B, stats *redis.Client, body func()) {
	before := clientCommands(b, stats)
	ledgertest.Bench(b, body)
	b.ReportMetric(float64(clientCommands(b, stats)-before)/float64(b.N), "roundtrips/op")
}

// BenchmarkRedisClaim: one per-request payment spent in Redis on loopback.
func BenchmarkRedisClaim(b *testing.B) {
	l, stats := benchLedger(b)
	until := time.Now().Add(time.Hour)
	measure(b, stats, func() {
		for i := range b.N {
			if first, err := l.Claim(ctx, counterHash(uint64(i)), until); err != nil || !first {
				b.Fatal(first, err)
			}
		}
	})
}

// BenchmarkRedisClaimParallel: claims from 32 goroutines at once.
func BenchmarkRedisClaimParallel(b *testing.B) {
	l, stats := benchLedger(b)
	until := time.Now().Add(time.Hour)
	var next atomic.Uint64
	b.SetParallelism(16) // 32 goroutines on 2 cores, as 32 clients
	measure(b, stats, func() {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if first, err := l.Claim(ctx, counterHash(next.Add(1)), until); err != nil || !first {
					b.Error(first, err)
					return
				}
			}
		})
	})
}

// BenchmarkRedisDraw: one prepaid request drawn from a balance in Redis.
func BenchmarkRedisDraw(b *testing.B) {
	l, stats := benchLedger(b)
	measure(b, stats, func() {
		for range b.N {
			if _, err := l.Draw(ctx, "acct", 1); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRedisDrawParallel: draws from one balance by 32 goroutines.
func BenchmarkRedisDrawParallel(b *testing.B) {
	l, stats := benchLedger(b)
	b.SetParallelism(16)
	measure(b, stats, func() {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := l.Draw(ctx, "acct", 1); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkRedisReserveSettle: one request at a reported cost.
func BenchmarkRedisReserveSettle(b *testing.B) {
	l, stats := benchLedger(b)
	if h, err := l.Reserve(ctx, "acct", 10); err != nil {
		b.Fatal(err)
	} else if _, err := l.Settle(ctx, h, 3); err != nil {
		b.Fatal(err)
	}
	measure(b, stats, func() {
		for range b.N {
			h, err := l.Reserve(ctx, "acct", 10)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := l.Settle(ctx, h, 3); err != nil {
				b.Fatal(err)
			}
		}
	})
}
