package lightning

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/lightningcaddy/caddy-lightning/l402"
	mpp "github.com/lightningcaddy/caddy-lightning/payment"
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

// The challenge secret lives beside the root keys: made once, shared by
// every instance, rotated with the keys; the replaced secret verifies the
// challenges it bound until maxChallengeLife after the rotation, and
// drop_old drops it at once. A state stored before challenge secrets
// existed gets one when it is opened.
func TestChallengeSecrets(t *testing.T) {
	ctx := context.Background()
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	if err := storage.Store(ctx, tokenStateKey, []byte(`{"version":3,"keys":["`+strings.Repeat("ab", 32)+`"]}`)); err != nil {
		t.Fatal(err)
	}
	a := openTestTokenStore(t, storage)
	b := openTestTokenStore(t, storage)
	bind := func(s *tokenStore) mpp.Challenge {
		c := mpp.Challenge{Realm: "api", Method: mpp.MethodLightning, Intent: mpp.IntentCharge, Request: "e30", Expires: "2030-01-01T00:00:00Z"}
		if err := s.snap.Load().challenges.binder.Bind(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	verifies := func(s *tokenStore, c mpp.Challenge) bool { return s.snap.Load().challenges.binder.Verify(&c) }
	c := bind(a)
	if !verifies(b, c) || keyring(t, a) == nil {
		t.Fatal("the other instance does not verify the challenge, or the old state lost its key")
	}
	tag := a.snap.Load().challenges.tag("x402|api")
	if !b.snap.Load().challenges.verifyTag("x402|api", tag) || b.snap.Load().challenges.verifyTag("x402|other", tag) {
		t.Fatal("x402 tags")
	}

	if err := a.rotate(ctx, false); err != nil {
		t.Fatal(err)
	}
	if err := b.load(ctx); err != nil {
		t.Fatal(err)
	}
	fresh := bind(b)
	if !verifies(b, c) || !verifies(a, fresh) || fresh.ID == c.ID {
		t.Fatal("after a rotation, the old challenge or the new one does not verify")
	}

	// maxChallengeLife after the rotation, the next write drops the old secret.
	defer func() { now = time.Now }()
	now = func() time.Time { return time.Now().Add(maxChallengeLife + time.Minute) }
	if err := a.rotate(ctx, false); err != nil {
		t.Fatal(err)
	}
	if verifies(a, c) || !verifies(a, fresh) {
		t.Error("the secret retired maxChallengeLife ago still verifies, or the one retired now does not")
	}
	if err := a.rotate(ctx, true); err != nil {
		t.Fatal(err)
	}
	if verifies(a, fresh) || len(a.snap.Load().challenges.keys) != 1 {
		t.Error("drop_old kept an old challenge secret")
	}
	// An instance that keeps no challenge secret writes the state without
	// one: the next follow adds one back.
	if err := storage.Store(ctx, tokenStateKey, []byte(`{"version":99,"keys":["`+strings.Repeat("cd", 32)+`"]}`)); err != nil {
		t.Fatal(err)
	}
	followCtx, stop := context.WithCancel(ctx)
	go b.follow(followCtx, 10*time.Millisecond)
	for start := time.Now(); b.snap.Load().version < 100 && time.Since(start) < 10*time.Second; {
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	if b.snap.Load().challenges == nil {
		t.Fatal("follow left the state without a challenge secret")
	}
	var st tokenState
	raw, _ := storage.Load(ctx, tokenStateKey)
	if err := json.Unmarshal(raw, &st); err != nil || len(st.ChallengeSecrets) != 1 || st.ChallengeSecrets[0].RetiredAt != 0 {
		t.Errorf("stored secrets %+v, %v", st.ChallengeSecrets, err)
	}
}
