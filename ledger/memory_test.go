package ledger_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/caddyserver/certmagic"

	"github.com/lightningcaddy/caddy-lightning/ledger"
	"github.com/lightningcaddy/caddy-lightning/ledger/ledgertest"
)

// Caddy's storage is a ledger.Storage as it is: the root package passes
// ctx.Storage() to NewMemory.
var _ ledger.Storage = certmagic.Storage(nil)

// fileStorage is Caddy's default storage in a directory of its own.
func fileStorage(t testing.TB) ledger.Storage {
	return &certmagic.FileStorage{Path: t.TempDir()}
}

// openMemory opens a loaded memory ledger over store that flushes when t
// ends.
func openMemory(t testing.TB, store ledger.Storage) *ledger.Memory {
	t.Helper()
	m := ledger.NewMemory(store, ledger.MemoryOptions{})
	if err := m.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestMemory runs the conformance suite on memory ledgers over Caddy's
// file storage (certmagic.FileStorage, used as a ledger.Storage as is).
func TestMemory(t *testing.T) {
	var mu sync.Mutex
	stores := map[string]ledger.Storage{}
	ledgertest.Run(t, ledgertest.Backend{
		Open: func(t *testing.T, name string) ledger.Ledger {
			mu.Lock()
			store, ok := stores[name]
			if !ok {
				store = fileStorage(t)
				stores[name] = store
			}
			mu.Unlock()
			return openMemory(t, store)
		},
		Stop: func(t *testing.T, l ledger.Ledger) {
			if err := l.(*ledger.Memory).Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
		},
	})
}

// TestMemoryInstancesNotExact pins the documented limit: two memory
// ledgers on one storage each admit what their own copy of a balance
// allows. Exact across instances means Redis.
func TestMemoryInstancesNotExact(t *testing.T) {
	ctx := context.Background()
	store := fileStorage(t)
	first := openMemory(t, store)
	if _, err := first.Credit(ctx, "acct", ledger.Hash{1}, 20); err != nil {
		t.Fatal(err)
	}
	second := openMemory(t, store) // loads the stored credit
	admitted := 0
	for _, l := range []*ledger.Memory{first, second} {
		for {
			_, err := l.Draw(ctx, "acct", 1)
			if errors.Is(err, ledger.ErrInsufficient) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			admitted++
		}
	}
	if admitted != 40 {
		t.Fatalf("two memory ledgers on one storage admitted %d of a balance of 20; the documented limit is 20 each", admitted)
	}
}
