package redisledger

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/lightningcaddy/caddy-lightning/ledger"
)

//go:embed lua/*.lua
var luaFiles embed.FS

// The scripts, one per operation (Draw and Reserve share spend): every
// operation is one atomic step and, once Redis caches its script, one
// EVALSHA, sent in one round trip with those of concurrent operations
// (batch.go).
var (
	claimScript   = script("claim")
	creditScript  = script("credit")
	spendScript   = script("spend")
	settleScript  = script("settle")
	balanceScript = script("balance")
	closeScript   = script("close")
	refundScript  = script("refund")
	sessionScript = script("session")
	idleScript    = script("idle")
)

// Reply codes of the scripts (lua/common.lua).
const (
	codeOK = iota
	codeDuplicate
	codeUsed
	codeNotFound
	codeClosed
	codeInsufficient
	codeInvalid
	codeCorrupt
)

// script returns lua/<name>.lua with lua/common.lua before it.
func script(name string) *redis.Script {
	common, err := luaFiles.ReadFile("lua/common.lua")
	if err != nil {
		panic(err) // embedded: cannot happen
	}
	body, err := luaFiles.ReadFile("lua/" + name + ".lua")
	if err != nil {
		panic(err)
	}
	return redis.NewScript(string(common) + "\n" + string(body))
}

// reply runs s and returns its reply: the code, then the values.
func (l *Ledger) reply(ctx context.Context, s *redis.Script, keys []string, args ...any) (int64, []any, error) {
	v, err := l.batch.run(ctx, s, keys, args)
	if err != nil {
		return 0, nil, backendError(err)
	}
	a, ok := v.([]any)
	if !ok || len(a) == 0 {
		return 0, nil, fmt.Errorf("%w: redis replied %T, not an array", ledger.ErrCorrupt, v)
	}
	code, ok := a[0].(int64)
	if !ok {
		return 0, nil, fmt.Errorf("%w: redis replied code %T, not an integer", ledger.ErrCorrupt, a[0])
	}
	return code, a[1:], nil
}

// integers runs s and returns its code and n integer values, which every
// code but OK may omit.
func (l *Ledger) integers(ctx context.Context, s *redis.Script, n int, keys []string, args ...any) (int64, [2]int64, error) {
	var out [2]int64
	code, vals, err := l.reply(ctx, s, keys, args...)
	if err != nil {
		return 0, out, err
	}
	if code == codeOK && len(vals) != n || len(vals) > n {
		return 0, out, fmt.Errorf("%w: redis replied %d values to code %d, want %d", ledger.ErrCorrupt, len(vals), code, n)
	}
	for i, v := range vals {
		x, ok := v.(int64)
		if !ok {
			return 0, out, fmt.Errorf("%w: redis replied %T, not an integer", ledger.ErrCorrupt, v)
		}
		out[i] = x
	}
	return code, out, nil
}

// backendError maps an error of go-redis to the ledger's kinds: what
// Redis refuses because of the stored data is corrupt state, everything
// else (network, timeouts, authentication, a loading or read-only server)
// is unavailability.
func backendError(err error) error {
	var re redis.Error
	if errors.As(err, &re) {
		msg := re.Error()
		if strings.HasPrefix(msg, "WRONGTYPE") || strings.Contains(msg, "user_script") {
			return fmt.Errorf("%w: redis: %v", ledger.ErrCorrupt, err)
		}
	}
	return fmt.Errorf("%w: redis: %w", ledger.ErrUnavailable, err)
}

// unexpected is the error of a code a script does not return there.
func unexpected(code int64) error {
	if code == codeCorrupt {
		return fmt.Errorf("%w: an account exists without the payment that created it", ledger.ErrCorrupt)
	}
	return fmt.Errorf("%w: redis script replied code %d", ledger.ErrCorrupt, code)
}
