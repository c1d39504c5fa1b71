package lightning

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"

	"github.com/lightningcaddy/caddy-lightning/l402"
)

// rootKeyStorageKey is where the generated root key lives in Caddy's
// storage.
const rootKeyStorageKey = "lightning/l402/root_key"

// rootKey returns the configured root key, or the one in Caddy's storage,
// creating it once (under a storage lock, so instances sharing storage
// agree on one key).
func (p *Paywall) rootKey(ctx caddy.Context) ([]byte, error) {
	if p.RootKey != "" {
		key, err := hex.DecodeString(strings.TrimSpace(caddy.NewReplacer().ReplaceAll(p.RootKey, "")))
		if err != nil || len(key) != 32 {
			return nil, errors.New("root_key must be 32 bytes in hex (64 characters)")
		}
		return key, nil
	}
	storage := ctx.Storage()
	if key, err := loadRootKey(ctx, storage); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := storage.Lock(ctx, rootKeyStorageKey); err != nil {
		return nil, fmt.Errorf("lock storage for the root key: %w", err)
	}
	defer func() { _ = storage.Unlock(ctx, rootKeyStorageKey) }()
	if key, err := loadRootKey(ctx, storage); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	key := l402.NewRootKey()
	if err := storage.Store(ctx, rootKeyStorageKey, []byte(hex.EncodeToString(key))); err != nil {
		return nil, fmt.Errorf("store the root key: %w", err)
	}
	return key, nil
}

func loadRootKey(ctx context.Context, storage certmagic.Storage) ([]byte, error) {
	data, err := storage.Load(ctx, rootKeyStorageKey)
	if err != nil {
		return nil, err
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("the root key in storage (%s) is corrupt", rootKeyStorageKey)
	}
	return key, nil
}
