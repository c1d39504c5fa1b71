package lightning

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/lightningcaddy/caddy-lightning/l402"
	mpp "github.com/lightningcaddy/caddy-lightning/payment"
)

// tokenStateKey is where the root keys and revocations live in Caddy's
// storage, shared by every instance that shares the storage.
const tokenStateKey = "lightning/l402/tokens.json"

// revocationDefault is how long a revocation by token id alone is kept
// when the token's expiry is unknown.
const revocationDefault = 366 * 24 * time.Hour

// tokenState is the stored form: what instances must agree on to honour
// each other's tokens.
type tokenState struct {
	// Version grows by one with every write, so instances notice every
	// change, however close together (modification times do not).
	Version uint64 `json:"version"`
	// Keys are hex root keys; the first mints new tokens, all verify.
	Keys []string `json:"keys"`
	// Revoked maps a revoked token's id (hex) to the unix time after which
	// the token has expired anyway and the entry can go.
	Revoked map[string]int64 `json:"revoked,omitempty"`
}

// tokenSnapshot is the state in the form requests use, swapped atomically.
type tokenSnapshot struct {
	version uint64
	keys    *l402.Keyring
	keyIDs  []string // a short public id per key, for status
	revoked map[[32]byte]struct{}
	// binder binds Payment challenge ids with secrets derived from the
	// root keys (see challengeSecret), so they are kept and rotated with
	// them.
	binder *mpp.Binder
}

// tokenStore keeps the paywalls' root keys and revocations in memory,
// loaded from storage, and follows changes other instances make: every
// interval it reads the stored state and applies it when its version
// changed. Requests never touch storage, except the first ones when they
// come before the app has started (Caddy starts its apps in no fixed
// order): whichever is first loads the state.
type tokenStore struct {
	storage certmagic.Storage
	logger  *zap.Logger

	snap atomic.Pointer[tokenSnapshot]

	openOnce sync.Once
	openErr  error

	mu sync.Mutex // serializes loads and writes in this process
}

// newTokenStore returns a store that has not read storage yet.
func newTokenStore(storage certmagic.Storage, logger *zap.Logger) *tokenStore {
	return &tokenStore{storage: storage, logger: logger}
}

// open loads the state, creating it with a new root key under a storage
// lock if no instance has yet. Only the first call does anything.
func (s *tokenStore) open(ctx context.Context) error {
	s.openOnce.Do(func() {
		err := s.load(ctx)
		if errors.Is(err, fs.ErrNotExist) {
			err = s.update(ctx, func(st *tokenState) error { return nil })
		}
		if err != nil {
			s.openErr = fmt.Errorf("load shared token state: %w", err)
		}
	})
	return s.openErr
}

// current returns the state requests use, opening the store if nobody has.
func (s *tokenStore) current(ctx context.Context) (*tokenSnapshot, error) {
	if snap := s.snap.Load(); snap != nil {
		return snap, nil
	}
	if err := s.open(ctx); err != nil {
		return nil, err
	}
	return s.snap.Load(), nil
}

// follow applies the changes other instances make, every interval until
// ctx ends.
func (s *tokenStore) follow(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.load(ctx); err != nil && ctx.Err() == nil {
			s.logger.Warn("cannot read shared token state", zap.String("key", tokenStateKey), zap.Error(err))
		}
	}
}

// load reads the stored state and makes it current if its version is not
// the current one.
func (s *tokenStore) load(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.read(ctx)
	if err != nil {
		return err
	}
	if cur := s.snap.Load(); cur != nil && cur.version == st.Version {
		return nil
	}
	return s.apply(st)
}

func (s *tokenStore) read(ctx context.Context) (tokenState, error) {
	var st tokenState
	data, err := s.storage.Load(ctx, tokenStateKey)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(data, &st); err != nil || len(st.Keys) == 0 {
		return st, fmt.Errorf("the token state in storage (%s) is corrupt", tokenStateKey)
	}
	return st, nil
}

// apply builds the snapshot requests use from st.
func (s *tokenStore) apply(st tokenState) error {
	keys := make([][]byte, len(st.Keys))
	secrets := make([][]byte, len(st.Keys))
	ids := make([]string, len(st.Keys))
	for i, k := range st.Keys {
		key, err := hex.DecodeString(k)
		if err != nil || len(key) != 32 {
			return fmt.Errorf("the token state in storage (%s) holds a malformed key", tokenStateKey)
		}
		keys[i] = key
		secrets[i] = challengeSecret(key)
		ids[i] = l402.KeyID(key)
	}
	ring, err := l402.NewKeyring(keys...)
	if err != nil {
		return err
	}
	binder, err := mpp.NewBinder(secrets...)
	if err != nil {
		return err
	}
	revoked := make(map[[32]byte]struct{}, len(st.Revoked))
	for id := range st.Revoked {
		var tokenID [32]byte
		if raw, err := hex.DecodeString(id); err == nil && copy(tokenID[:], raw) == 32 {
			revoked[tokenID] = struct{}{}
		}
	}
	s.snap.Store(&tokenSnapshot{version: st.Version, keys: ring, keyIDs: ids, revoked: revoked, binder: binder})
	return nil
}

// challengeSecret derives the secret of Payment challenge ids from a root
// key: HMAC-SHA256(key, "caddy-lightning payment challenge id"). Tokens and
// challenges never share a secret, yet the challenge secrets live, rotate
// and are dropped with the root keys.
func challengeSecret(rootKey []byte) []byte {
	m := hmac.New(sha256.New, rootKey)
	m.Write([]byte("caddy-lightning payment challenge id"))
	return m.Sum(nil)
}

// update changes the stored state under a storage lock (so instances
// never lose each other's changes), with a new version, and makes the
// result current here at once. A missing state is created with a new root
// key first.
func (s *tokenStore) update(ctx context.Context, change func(*tokenState) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.storage.Lock(ctx, tokenStateKey); err != nil {
		return fmt.Errorf("lock %s: %w", tokenStateKey, err)
	}
	defer func() { _ = s.storage.Unlock(ctx, tokenStateKey) }()
	st, err := s.read(ctx)
	if errors.Is(err, fs.ErrNotExist) {
		st, err = tokenState{Keys: []string{hex.EncodeToString(l402.NewRootKey())}}, nil
	}
	if err != nil {
		return err
	}
	if err := change(&st); err != nil {
		return err
	}
	nowUnix := now().Unix()
	for id, until := range st.Revoked {
		if until < nowUnix {
			delete(st.Revoked, id)
		}
	}
	st.Version++
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := s.storage.Store(ctx, tokenStateKey, data); err != nil {
		return fmt.Errorf("store %s: %w", tokenStateKey, err)
	}
	return s.apply(st)
}

// isRevoked reports whether the token with id was revoked (false while
// the store is not open: nothing was verified then).
func (s *tokenStore) isRevoked(id l402.Identifier) bool {
	snap := s.snap.Load()
	if snap == nil {
		return false
	}
	_, ok := snap.revoked[id.TokenID]
	return ok
}

// revoke revokes a token on every instance, by its base64 form or its id
// (hex), and returns the id.
func (s *tokenStore) revoke(ctx context.Context, token, tokenID string) (string, error) {
	until := now().Add(revocationDefault)
	switch {
	case token != "":
		t, err := l402.DecodeToken(token)
		if err != nil {
			return "", err
		}
		tokenID = hex.EncodeToString(t.Identifier.TokenID[:])
		if _, latest, found, err := t.ValidUntil(""); err == nil && found {
			until = latest
		}
	case len(tokenID) == 64:
		if _, err := hex.DecodeString(tokenID); err != nil {
			return "", errors.New("token_id must be 64 hex characters")
		}
		tokenID = strings.ToLower(tokenID)
	default:
		return "", errors.New("give the token, or its token_id (64 hex characters)")
	}
	return tokenID, s.update(ctx, func(st *tokenState) error {
		if st.Revoked == nil {
			st.Revoked = map[string]int64{}
		}
		st.Revoked[tokenID] = until.Unix()
		return nil
	})
}

// rotate puts a new root key first, to mint every new token. The old keys
// keep verifying the tokens they signed unless dropOld, which revokes
// every token issued so far.
func (s *tokenStore) rotate(ctx context.Context, dropOld bool) error {
	return s.update(ctx, func(st *tokenState) error {
		key := hex.EncodeToString(l402.NewRootKey())
		if dropOld {
			st.Keys = []string{key}
		} else {
			st.Keys = append([]string{key}, st.Keys...)
		}
		return nil
	})
}
