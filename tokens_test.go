package lightning

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/lightningcaddy/caddy-lightning/l402"
)

// Two stores on one storage behave like two Caddy instances.
func TestTokenStoreSharedAcrossInstances(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	a := openTestTokenStore(t, storage)
	b := openTestTokenStore(t, storage)
	go b.follow(ctx, 50*time.Millisecond)

	// One key, created once: a token minted by A verifies on B.
	check := l402.Checker{Service: "s", Revoked: b.isRevoked}
	token, id, err := keyring(t, a).Mint([32]byte{1}, l402.ServicesCaveat(l402.Service{Name: "s"}),
		l402.ValidUntilCaveat("s", time.Now().Add(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keyring(t, b).VerifyToken(token, check); err != nil {
		t.Fatalf("B verifies A's token: %v", err)
	}

	// A revocation on A reaches B within the sync interval.
	if _, err := a.revoke(ctx, token, ""); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for !b.isRevoked(id) {
		if time.Since(start) > 5*time.Second {
			t.Fatal("B did not see A's revocation within 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("revocation reached the other instance in %s", time.Since(start).Round(time.Millisecond))

	// A rotation on B reaches A's store on its next load.
	if err := b.rotate(ctx, true); err != nil {
		t.Fatal(err)
	}
	if err := a.load(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := keyring(t, a).VerifyToken(token, l402.Checker{Service: "s"}); err == nil {
		t.Errorf("a token of a dropped key still verifies: %v", err)
	}
}

func TestTokenStoreRejectsCorruptState(t *testing.T) {
	ctx := context.Background()
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	if err := storage.Store(ctx, tokenStateKey, []byte(`{"keys": ["zz"]}`)); err != nil {
		t.Fatal(err)
	}
	if err := newTokenStore(storage, zap.NewNop()).open(ctx); err == nil || !strings.Contains(err.Error(), "malformed key") {
		t.Fatalf("corrupt state: %v", err)
	}
}

// openTestTokenStore opens a token store on storage.
func openTestTokenStore(t *testing.T, storage certmagic.Storage) *tokenStore {
	t.Helper()
	s := newTokenStore(storage, zap.NewNop())
	if err := s.open(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// keyring returns a store's current keys.
func keyring(t *testing.T, s *tokenStore) *l402.Keyring {
	t.Helper()
	snap, err := s.current(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return snap.keys
}
