package redisledger_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lightningcaddy/caddy-lightning/internal/redistest"
	"github.com/lightningcaddy/caddy-lightning/ledger"
	"github.com/lightningcaddy/caddy-lightning/ledger/ledgertest"
	"github.com/lightningcaddy/caddy-lightning/ledger/redisledger"
)

var ctx = context.Background()

func open(t testing.TB, opt redisledger.Options) *redisledger.Ledger {
	t.Helper()
	l, err := redisledger.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// TestRedis runs the conformance suite on one redis-server: each store is
// a key prefix, each instance a client of its own.
func TestRedis(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	var mu sync.Mutex
	prefixes := map[string]string{}
	ledgertest.Run(t, ledgertest.Backend{
		Open: func(t *testing.T, store string) ledger.Ledger {
			mu.Lock()
			prefix, ok := prefixes[store]
			if !ok {
				prefix = "test" + strconv.Itoa(len(prefixes))
				prefixes[store] = prefix
			}
			mu.Unlock()
			return open(t, redisledger.Options{URL: srv.URL, Prefix: prefix})
		},
		Stop: func(t *testing.T, l ledger.Ledger) {
			if err := l.(*redisledger.Ledger).Close(); err != nil {
				t.Fatal(err)
			}
		},
		Shared: true,
	})
}

// TestTLSAndPassword connects over TLS (Debian's redis-server is built
// with it) to a server that requires a password.
func TestTLSAndPassword(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{TLS: true, Password: "s3cret"})
	if !strings.HasPrefix(srv.URL, "rediss://") {
		t.Fatalf("URL %s", srv.URL)
	}
	l := open(t, redisledger.Options{URL: srv.URL, Password: "s3cret", TLS: srv.TLS})
	if ok, err := l.Credit(ctx, "acct", ledger.Hash{1}, 10); err != nil || !ok {
		t.Fatalf("credit over TLS = %v, %v", ok, err)
	}
	if left, err := l.Draw(ctx, "acct", 3); err != nil || left != 7 {
		t.Fatalf("draw over TLS = %d, %v", left, err)
	}

	// The password in the URL works as well.
	withURL := open(t, redisledger.Options{URL: strings.Replace(srv.URL, "rediss://", "rediss://:s3cret@", 1), TLS: srv.TLS})
	if bal, err := withURL.Balance(ctx, "acct"); err != nil || bal != 7 {
		t.Fatalf("balance with the password in the URL = %d, %v", bal, err)
	}

	for name, opt := range map[string]redisledger.Options{
		"wrong password":        {URL: srv.URL, Password: "wrong", TLS: srv.TLS},
		"no password":           {URL: srv.URL, TLS: srv.TLS},
		"untrusted certificate": {URL: srv.URL, Password: "s3cret"},
		"plain text to TLS":     {URL: strings.Replace(srv.URL, "rediss://", "redis://", 1), Password: "s3cret"},
	} {
		_, err := open(t, opt).Balance(ctx, "acct")
		if !errors.Is(err, ledger.ErrUnavailable) {
			t.Errorf("%s: %v, want ErrUnavailable", name, err)
		}
	}
}

// TestOptions: bad options are refused without I/O, and a URL's password
// never shows in the error.
func TestOptions(t *testing.T) {
	for _, opt := range []redisledger.Options{
		{URL: ""},
		{URL: "http://localhost:6379"},
		{URL: "redis://user:hunter2@local host:6379"},
		{URL: "redis://localhost:6379", TLS: &tls.Config{}},
	} {
		_, err := redisledger.New(opt)
		if err == nil {
			t.Errorf("New(%+v) succeeded", opt)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}

// TestUnavailable: with Redis gone, or hung, every operation fails with
// ErrUnavailable (never a wrong answer), within the timeouts.
func TestUnavailable(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	l := open(t, redisledger.Options{URL: srv.URL})
	if _, err := l.Credit(ctx, "acct", ledger.Hash{1}, 10); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	start := time.Now()
	checkUnavailable(t, "stopped", l)
	t.Logf("Redis stopped (connection refused): %d operations failed closed in %s", len(operations), time.Since(start))

	// A server that accepts connections and never answers.
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	var conns sync.WaitGroup
	var mu sync.Mutex
	var accepted []net.Conn
	conns.Add(1)
	go func() {
		defer conns.Done()
		for {
			c, err := hung.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			accepted = append(accepted, c)
			mu.Unlock()
		}
	}()
	defer func() {
		hung.Close()
		conns.Wait()
		for _, c := range accepted {
			c.Close()
		}
	}()
	timeout := 100 * time.Millisecond
	l = open(t, redisledger.Options{URL: "redis://" + hung.Addr().String(), ReadTimeout: timeout, WriteTimeout: timeout})
	start = time.Now()
	checkUnavailable(t, "hung", l)
	t.Logf("Redis hung (read timeout %s): %d operations failed closed in %s", timeout, len(operations), time.Since(start))
}

// operations calls every operation of the ledger once.
var operations = map[string]func(l ledger.Ledger) error{
	"Claim": func(l ledger.Ledger) error {
		_, err := l.Claim(ctx, ledger.Hash{2}, time.Now().Add(time.Hour))
		return err
	},
	"Credit": func(l ledger.Ledger) error {
		_, err := l.Credit(ctx, "acct", ledger.Hash{3}, 1)
		return err
	},
	"Draw":    func(l ledger.Ledger) error { _, err := l.Draw(ctx, "acct", 1); return err },
	"Reserve": func(l ledger.Ledger) error { _, err := l.Reserve(ctx, "acct", 1); return err },
	"Settle": func(l ledger.Ledger) error {
		_, err := l.Settle(ctx, ledger.Hold{Account: "acct", ID: 1, Sats: 1}, 1)
		return err
	},
	"Balance": func(l ledger.Ledger) error { _, err := l.Balance(ctx, "acct"); return err },
	"OpenSession": func(l ledger.Ledger) error {
		_, err := l.OpenSession(ctx, ledger.Hash{4}, 1, "lnbcrt1return")
		return err
	},
	"TopUp": func(l ledger.Ledger) error {
		_, err := l.TopUp(ctx, ledger.Hash{4}.String(), ledger.Hash{5}, 1)
		return err
	},
	"CloseSession": func(l ledger.Ledger) error { _, err := l.CloseSession(ctx, ledger.Hash{4}.String()); return err },
	"RecordRefund": func(l ledger.Ledger) error {
		return l.RecordRefund(ctx, ledger.Hash{4}.String(), ledger.Refund{Status: ledger.RefundSucceeded})
	},
	"Session":      func(l ledger.Ledger) error { _, err := l.Session(ctx, ledger.Hash{4}.String()); return err },
	"IdleSessions": func(l ledger.Ledger) error { _, err := l.IdleSessions(ctx, 0, 10); return err },
}

func checkUnavailable(t *testing.T, what string, l ledger.Ledger) {
	t.Helper()
	for name, op := range operations {
		if err := op(l); !errors.Is(err, ledger.ErrUnavailable) {
			t.Errorf("%s with Redis %s: %v, want ErrUnavailable", name, what, err)
		}
	}
}

// clientCommands returns how many commands clients sent the server (see
// redistest.Commands).
func clientCommands(t testing.TB, c *redis.Client) int64 {
	t.Helper()
	n, err := redistest.Commands(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// roundTrips runs f n times and returns the commands clients sent per run:
// the round trips, since the ledger pipelines nothing.
func roundTrips(t testing.TB, c *redis.Client, n int, f func(i int)) float64 {
	before := clientCommands(t, c)
	for i := range n {
		f(i)
	}
	return float64(clientCommands(t, c)-before) / float64(n)
}

// TestRoundTrips: every operation is one round trip once Redis has cached
// its script (the first use of a script costs one more: EVALSHA, then EVAL).
func TestRoundTrips(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	stats := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer stats.Close()
	l := open(t, redisledger.Options{URL: srv.URL})
	until := time.Now().Add(time.Hour)
	steps := []struct {
		name string
		f    func(i int) error
	}{
		{"Claim", func(i int) error { _, err := l.Claim(ctx, ledger.Hash{1, byte(i)}, until); return err }},
		{"Credit", func(i int) error { _, err := l.Credit(ctx, "acct", ledger.Hash{2, byte(i)}, 100); return err }},
		{"Draw", func(int) error { _, err := l.Draw(ctx, "acct", 1); return err }},
		{"Reserve+Settle", func(int) error {
			h, err := l.Reserve(ctx, "acct", 2)
			if err == nil {
				_, err = l.Settle(ctx, h, 1)
			}
			return err
		}},
		{"Balance", func(int) error { _, err := l.Balance(ctx, "acct"); return err }},
		{"OpenSession", func(i int) error { _, err := l.OpenSession(ctx, ledger.Hash{3, byte(i)}, 100, "lnbcrt1r"); return err }},
		{"TopUp", func(i int) error {
			_, err := l.TopUp(ctx, ledger.Hash{3}.String(), ledger.Hash{4, byte(i)}, 10)
			return err
		}},
		{"Session", func(int) error { _, err := l.Session(ctx, ledger.Hash{3}.String()); return err }},
		{"CloseSession", func(i int) error { _, err := l.CloseSession(ctx, ledger.Hash{3, byte(i)}.String()); return err }},
		{"RecordRefund", func(i int) error {
			return l.RecordRefund(ctx, ledger.Hash{3, byte(i)}.String(), ledger.Refund{Status: ledger.RefundUnknown})
		}},
		{"IdleSessions", func(int) error { _, err := l.IdleSessions(ctx, 0, 10); return err }},
	}
	const n = 10
	for _, s := range steps {
		s.f(100) // caches the script (index 100: outside the measured ones)
		var err error
		perOp := roundTrips(t, stats, n, func(i int) {
			if e := s.f(i); e != nil && err == nil {
				err = e
			}
		})
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		want := 1.0
		if s.name == "Reserve+Settle" {
			want = 2
		}
		if perOp != want {
			t.Errorf("%s: %.2f round trips, want %v", s.name, perOp, want)
		}
		t.Logf("%-15s %.0f round trip(s)", s.name, perOp)
	}
}

// TestSharedPipelines: concurrent operations share round trips (the
// server reads fewer times than it runs scripts), each still booked once;
// callers already gone send nothing and fail none of the others.
func TestSharedPipelines(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	stats := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer stats.Close()
	l := open(t, redisledger.Options{URL: srv.URL})
	if _, err := l.Credit(ctx, "acct", ledger.Hash{1}, 1000); err != nil {
		t.Fatal(err)
	}
	before, err := redistest.ReadEvents(ctx, stats)
	if err != nil {
		t.Fatal(err)
	}
	const n = 400
	gone, cancel := context.WithCancel(ctx)
	cancel()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			c := ctx
			if i%10 == 0 {
				c = gone // gone before the draw: nothing is sent
			}
			_, errs[i] = l.Draw(c, "acct", 1)
		})
	}
	wg.Wait()
	after, err := redistest.ReadEvents(ctx, stats)
	if err != nil {
		t.Fatal(err)
	}
	for i, err := range errs {
		if i%10 != 0 && err != nil || i%10 == 0 && !errors.Is(err, ledger.ErrUnavailable) {
			t.Fatalf("draw %d: %v", i, err)
		}
	}
	left, err := l.Balance(ctx, "acct")
	if err != nil {
		t.Fatal(err)
	}
	if drawn := 1000 - left; drawn != n-n/10 {
		t.Errorf("drawn %d sats by %d draws of 1 of which %d were gone before; want %d", drawn, n, n/10, n-n/10)
	}
	reads := after - before - 1 // less the INFO that ends the count
	t.Logf("%d concurrent draws in %d round trips", n, reads)
	if reads >= n {
		t.Errorf("%d concurrent draws took %d round trips: none shared", n, reads)
	}
}

// TestScriptCacheFlushed: after SCRIPT FLUSH (a Redis restart does the
// same) Script.Run falls back to EVAL and the ledger goes on.
func TestScriptCacheFlushed(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer admin.Close()
	l := open(t, redisledger.Options{URL: srv.URL})
	if _, err := l.Credit(ctx, "acct", ledger.Hash{1}, 10); err != nil {
		t.Fatal(err)
	}
	if err := admin.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	var err error
	var left int64
	trips := roundTrips(t, admin, 1, func(int) { left, err = l.Draw(ctx, "acct", 1) })
	if err != nil || left != 9 {
		t.Fatalf("draw after SCRIPT FLUSH = %d, %v", left, err)
	}
	if trips != 2 {
		t.Fatalf("draw after SCRIPT FLUSH took %v round trips, want 2 (EVALSHA refused, EVAL)", trips)
	}
}

// TestCorruptState: keys of the wrong type, or amounts that are not
// numbers, give ErrCorrupt, not a wrong answer.
func TestCorruptState(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer admin.Close()
	l := open(t, redisledger.Options{URL: srv.URL, Prefix: "c"})
	if err := admin.Set(ctx, "{c}:a:wrongtype", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Draw(ctx, "wrongtype", 1); !errors.Is(err, ledger.ErrCorrupt) {
		t.Errorf("draw from a key of the wrong type: %v", err)
	}
	if err := admin.HSet(ctx, "{c}:a:nan", "k", "p", "c", "lots", "s", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Draw(ctx, "nan", 1); !errors.Is(err, ledger.ErrCorrupt) {
		t.Errorf("draw from a balance that is not a number: %v", err)
	}
	if err := admin.HSet(ctx, "{c}:a:"+ledger.Hash{7}.String(), "k", "s", "c", "1", "s", "0", "o", "soon").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Session(ctx, ledger.Hash{7}.String()); !errors.Is(err, ledger.ErrCorrupt) {
		t.Errorf("session with a bad time: %v", err)
	}
	if _, err := l.OpenSession(ctx, ledger.Hash{7}, 1, "lnbcrt1r"); !errors.Is(err, ledger.ErrCorrupt) {
		t.Errorf("open over an account without its deposit: %v", err)
	}
}

// TestHoldTimeout: a hold never settled lapses after HoldTimeout, by
// Redis's clock.
func TestHoldTimeout(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	l := open(t, redisledger.Options{URL: srv.URL, HoldTimeout: 50 * time.Millisecond})
	if _, err := l.Credit(ctx, "acct", ledger.Hash{1}, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Reserve(ctx, "acct", 10); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Draw(ctx, "acct", 1); !errors.Is(err, ledger.ErrInsufficient) {
		t.Fatalf("draw while held: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	if left, err := l.Draw(ctx, "acct", 10); err != nil || left != 0 {
		t.Fatalf("draw after the hold lapsed = %d, %v", left, err)
	}
}

// quiet drops go-redis's own log lines (failed dials the tests cause on
// purpose).
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func init() { redis.SetLogger(quiet{}) }
