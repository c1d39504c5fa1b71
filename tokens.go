package lightning

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
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
	// ChallengeSecrets bind the Payment scheme's challenge ids and the
	// x402 offers: the first binds new ones, all verify. They rotate with
	// the root keys; a replaced secret is kept until the challenges it
	// bound have expired (maxChallengeLife).
	ChallengeSecrets []challengeSecret `json:"challenge_secrets,omitempty"`
}

// challengeSecret is one stored challenge secret.
type challengeSecret struct {
	// Key is 32 random bytes in hex.
	Key string `json:"key"`
	// RetiredAt is the unix time a newer secret replaced this one; 0
	// while it is the newest.
	RetiredAt int64 `json:"retired_at,omitempty"`
}

// maxChallengeLife bounds how long a Payment or x402 challenge can be
// answered, so a replaced secret is dropped once it has passed: paywalls
// that offer them have an invoice_expiry of at most maxOfferInvoiceExpiry,
// and x402 offers and session deposits add lateGrace.
const maxChallengeLife = maxOfferInvoiceExpiry + lateGrace

// newChallengeSecret returns a new random challenge secret.
func newChallengeSecret() challengeSecret {
	return challengeSecret{Key: hex.EncodeToString(l402.NewRootKey())}
}

// tokenSnapshot is the state in the form requests use, swapped atomically.
type tokenSnapshot struct {
	version uint64
	keys    *l402.Keyring
	keyIDs  []string // a short public id per key, for status
	revoked map[[32]byte]struct{}
	// challenges binds and verifies Payment challenge ids and x402 offers.
	challenges *challengeKeys
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
		if errors.Is(err, fs.ErrNotExist) || err == nil && s.snap.Load().challenges == nil {
			// None yet, or written before challenge secrets were kept:
			// update adds what is missing.
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
		err := s.load(ctx)
		if snap := s.snap.Load(); err == nil && snap != nil && snap.challenges == nil {
			// Written by an instance that keeps no challenge secret.
			err = s.update(ctx, func(st *tokenState) error { return nil })
		}
		if err != nil && ctx.Err() == nil {
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
	ids := make([]string, len(st.Keys))
	for i, k := range st.Keys {
		key, err := hex.DecodeString(k)
		if err != nil || len(key) != 32 {
			return fmt.Errorf("the token state in storage (%s) holds a malformed key", tokenStateKey)
		}
		keys[i] = key
		ids[i] = l402.KeyID(key)
	}
	ring, err := l402.NewKeyring(keys...)
	if err != nil {
		return err
	}
	challenges, err := newChallengeKeys(st.ChallengeSecrets)
	if err != nil {
		return fmt.Errorf("the token state in storage (%s) holds a malformed challenge secret", tokenStateKey)
	}
	revoked := make(map[[32]byte]struct{}, len(st.Revoked))
	for id := range st.Revoked {
		var tokenID [32]byte
		if raw, err := hex.DecodeString(id); err == nil && copy(tokenID[:], raw) == 32 {
			revoked[tokenID] = struct{}{}
		}
	}
	s.snap.Store(&tokenSnapshot{version: st.Version, keys: ring, keyIDs: ids, revoked: revoked, challenges: challenges})
	return nil
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
	st.ChallengeSecrets = slices.DeleteFunc(st.ChallengeSecrets, func(c challengeSecret) bool {
		return c.RetiredAt != 0 && c.RetiredAt+int64(maxChallengeLife/time.Second) < nowUnix
	})
	if len(st.ChallengeSecrets) == 0 {
		st.ChallengeSecrets = []challengeSecret{newChallengeSecret()}
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

// rotate puts a new root key first, to mint every new token, and a new
// challenge secret, to bind every new Payment and x402 challenge. The old
// keys keep verifying the tokens they signed, and the old secret the
// challenges it bound until they expire, unless dropOld, which revokes
// every token and challenge issued so far.
func (s *tokenStore) rotate(ctx context.Context, dropOld bool) error {
	return s.update(ctx, func(st *tokenState) error {
		key := hex.EncodeToString(l402.NewRootKey())
		if dropOld {
			st.Keys = []string{key}
			st.ChallengeSecrets = []challengeSecret{newChallengeSecret()}
			return nil
		}
		st.Keys = append([]string{key}, st.Keys...)
		for i := range st.ChallengeSecrets {
			if st.ChallengeSecrets[i].RetiredAt == 0 {
				st.ChallengeSecrets[i].RetiredAt = now().Unix()
			}
		}
		st.ChallengeSecrets = append([]challengeSecret{newChallengeSecret()}, st.ChallengeSecrets...)
		return nil
	})
}

// challengeKeys are the challenge secrets in the form requests use: a
// Binder for Payment challenge ids, and the keys for x402 offer tags.
type challengeKeys struct {
	binder *mpp.Binder
	keys   [][]byte // newest first
}

// newChallengeKeys reads the stored secrets; none gives nil.
func newChallengeKeys(secrets []challengeSecret) (*challengeKeys, error) {
	if len(secrets) == 0 {
		return nil, nil
	}
	k := &challengeKeys{}
	for _, s := range secrets {
		key, err := hex.DecodeString(s.Key)
		if err != nil || len(key) != 32 {
			return nil, errors.New("malformed challenge secret")
		}
		k.keys = append(k.keys, key)
	}
	var err error
	k.binder, err = mpp.NewBinder(k.keys...)
	return k, err
}

// tag returns the HMAC of input under the newest secret, base64url.
func (k *challengeKeys) tag(input string) string {
	return tagWith(k.keys[0], input)
}

// verifyTag reports whether tag is the HMAC of input under any secret.
func (k *challengeKeys) verifyTag(input, tag string) bool {
	for _, key := range k.keys {
		if hmac.Equal([]byte(tagWith(key, input)), []byte(tag)) {
			return true
		}
	}
	return false
}

func tagWith(key []byte, input string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(input))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
