// Package redisledger is the ledger in Redis, for several instances: every
// operation is one Lua script, so it is one atomic step across every
// client of the same Redis, and at most one round trip once Redis has
// cached the script (concurrent operations share round trips: batch.go).
// Redis's own clock (TIME) stamps sessions and expires holds and
// claims, so instances agree on it. Durability is Redis's: with AOF
// (appendfsync everysec) a Redis crash loses at most about a second of
// operations; without persistence, everything.
//
// All keys share one hash tag, {Prefix}, so a Redis Cluster keeps them in
// one slot and the scripts may touch several.
package redisledger

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lightningcaddy/caddy-lightning/ledger"
)

// Options configures the connection and the keys.
type Options struct {
	// URL locates Redis: redis://[[user]:password@]host[:port][/db], or
	// rediss:// for TLS. Required.
	URL string
	// Password authenticates to Redis; when set it replaces the URL's.
	Password string
	// TLS configures TLS for a rediss:// URL. Default: the system's roots,
	// and the URL's host as the server name.
	TLS *tls.Config
	// Prefix names the keys: each is "{Prefix}:...". Default: "lightning".
	Prefix string
	// DialTimeout bounds connecting. Default: 1s.
	DialTimeout time.Duration
	// ReadTimeout and WriteTimeout bound each reply and request. Default:
	// 1s each. An unreachable Redis fails an operation with
	// ledger.ErrUnavailable within about DialTimeout, a Redis that stopped
	// answering within about ReadTimeout.
	ReadTimeout, WriteTimeout time.Duration
	// HoldTimeout is how long a hold of Reserve lasts if it is never
	// settled (its instance crashed). Default: 1h.
	HoldTimeout time.Duration
}

// Ledger is a ledger.Ledger in Redis.
type Ledger struct {
	client      redis.Scripter
	batch       *batcher
	close       func() error
	prefix      string // "{Prefix}:"
	holdTimeout int64  // ms
}

// New returns a ledger for the Redis of opt.URL. It does no I/O: the
// client connects at the first operation.
//
// Operations are never retried by the client: a script whose reply was
// lost may have run, so a retry could draw twice. Such an operation fails
// with ledger.ErrUnavailable instead; it may or may not have taken effect.
func New(opt Options) (*Ledger, error) {
	o, err := redis.ParseURL(opt.URL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = errors.New("not a URL") // its text would hold the password
		}
		return nil, fmt.Errorf("redisledger: invalid Redis URL (redis://host:port or rediss://host:port): %w", err)
	}
	if opt.Password != "" {
		o.Password = opt.Password
	}
	if opt.TLS != nil {
		if o.TLSConfig == nil {
			return nil, errors.New("redisledger: TLS options need a rediss:// URL")
		}
		cfg := opt.TLS.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = o.TLSConfig.ServerName
		}
		o.TLSConfig = cfg
	}
	o.DialTimeout = or(opt.DialTimeout, time.Second)
	o.ReadTimeout = or(opt.ReadTimeout, time.Second)
	o.WriteTimeout = or(opt.WriteTimeout, time.Second)
	o.ContextTimeoutEnabled = true
	o.MaxRetries = -1
	o.DialerRetries = 1
	c := redis.NewClient(o)
	prefix := opt.Prefix
	if prefix == "" {
		prefix = "lightning"
	}
	return &Ledger{
		client:      c,
		batch:       &batcher{client: c},
		close:       c.Close,
		prefix:      "{" + prefix + "}:",
		holdTimeout: or(opt.HoldTimeout, time.Hour).Milliseconds(),
	}, nil
}

func or(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Close closes the connections.
func (l *Ledger) Close() error { return l.close() }

func (l *Ledger) paymentKey(p ledger.Hash) string { return l.prefix + "p:" + p.String() }

// accountKeys are the keys of an account's scripts: the account, its
// holds and the idle index.
func (l *Ledger) accountKeys(id string) []string {
	return []string{l.prefix + "a:" + id, l.prefix + "h:" + id, l.prefix + "idle"}
}

// Claim implements ledger.Ledger.
func (l *Ledger) Claim(ctx context.Context, p ledger.Hash, until time.Time) (bool, error) {
	if err := ledger.CheckUntil(until, time.Now()); err != nil {
		return false, err
	}
	code, _, err := l.integers(ctx, claimScript, 0, []string{l.paymentKey(p)}, until.UnixMilli())
	if err != nil {
		return false, err
	}
	switch code {
	case codeOK:
		return true, nil
	case codeDuplicate:
		return false, nil
	case codeInvalid:
		return false, fmt.Errorf("%w: claim until %s has passed by Redis's clock", ledger.ErrInvalid, until.UTC().Format(time.RFC3339))
	}
	return false, unexpected(code)
}

// Credit implements ledger.Ledger.
func (l *Ledger) Credit(ctx context.Context, id string, p ledger.Hash, sats int64) (bool, error) {
	return l.credit(ctx, "credit", id, p, sats, "")
}

// TopUp implements ledger.Ledger.
func (l *Ledger) TopUp(ctx context.Context, id string, p ledger.Hash, sats int64) (bool, error) {
	return l.credit(ctx, "topup", id, p, sats, "")
}

// OpenSession implements ledger.Ledger.
func (l *Ledger) OpenSession(ctx context.Context, deposit ledger.Hash, sats int64, returnInvoice string) (bool, error) {
	if err := ledger.CheckInvoice(returnInvoice); err != nil {
		return false, err
	}
	return l.credit(ctx, "open", deposit.String(), deposit, sats, returnInvoice)
}

func (l *Ledger) credit(ctx context.Context, mode, id string, p ledger.Hash, sats int64, invoice string) (bool, error) {
	if err := ledger.CheckAccount(id); err != nil {
		return false, err
	}
	if err := ledger.CheckSats(sats); err != nil {
		return false, err
	}
	keys := append(l.accountKeys(id), l.paymentKey(p))
	code, _, err := l.integers(ctx, creditScript, 0, keys, id, sats, mode, invoice)
	if err != nil {
		return false, err
	}
	switch code {
	case codeOK:
		return true, nil
	case codeDuplicate:
		return false, nil
	case codeUsed:
		return false, fmt.Errorf("%w: payment %s", ledger.ErrPaymentUsed, p)
	case codeNotFound:
		return false, fmt.Errorf("%w: session %s", ledger.ErrNotFound, id)
	case codeClosed:
		return false, fmt.Errorf("%w: session %s", ledger.ErrClosed, id)
	}
	return false, unexpected(code)
}

// Draw implements ledger.Ledger.
func (l *Ledger) Draw(ctx context.Context, id string, sats int64) (int64, error) {
	if err := ledger.CheckSats(sats); err != nil {
		return 0, err
	}
	code, v, err := l.integers(ctx, spendScript, 1, l.accountKeys(id), id, sats, 0)
	if err != nil {
		return 0, err
	}
	if code == codeOK {
		return v[0], nil
	}
	return 0, spendError(code, id, sats, v[0])
}

// Reserve implements ledger.Ledger.
func (l *Ledger) Reserve(ctx context.Context, id string, sats int64) (ledger.Hold, error) {
	if err := ledger.CheckSats(sats); err != nil {
		return ledger.Hold{}, err
	}
	code, v, err := l.integers(ctx, spendScript, 2, l.accountKeys(id), id, sats, l.holdTimeout)
	if err != nil {
		return ledger.Hold{}, err
	}
	if code == codeOK {
		if v[1] <= 0 {
			return ledger.Hold{}, fmt.Errorf("%w: hold id %d", ledger.ErrCorrupt, v[1])
		}
		return ledger.Hold{Account: id, ID: uint64(v[1]), Sats: sats, Remaining: v[0]}, nil
	}
	return ledger.Hold{}, spendError(code, id, sats, v[0])
}

// spendError is the error of a refused draw or reservation.
func spendError(code int64, id string, sats, available int64) error {
	switch code {
	case codeInsufficient:
		return &ledger.InsufficientError{Account: id, Needed: sats, Available: available}
	case codeNotFound:
		return fmt.Errorf("%w: account %s", ledger.ErrNotFound, id)
	case codeClosed:
		return fmt.Errorf("%w: session %s", ledger.ErrClosed, id)
	}
	return unexpected(code)
}

// Settle implements ledger.Ledger.
func (l *Ledger) Settle(ctx context.Context, h ledger.Hold, cost int64) (int64, error) {
	if err := ledger.CheckHold(h); err != nil {
		return 0, err
	}
	if err := ledger.CheckCost(cost); err != nil {
		return 0, err
	}
	code, v, err := l.integers(ctx, settleScript, 1, l.accountKeys(h.Account), h.Account, h.ID, cost)
	if err != nil {
		return 0, err
	}
	switch code {
	case codeOK:
		return v[0], nil
	case codeNotFound:
		return 0, fmt.Errorf("%w: hold %d of account %s", ledger.ErrNotFound, h.ID, h.Account)
	}
	return 0, unexpected(code)
}

// Balance implements ledger.Ledger.
func (l *Ledger) Balance(ctx context.Context, id string) (int64, error) {
	code, v, err := l.integers(ctx, balanceScript, 1, l.accountKeys(id)[:2], id)
	if err != nil {
		return 0, err
	}
	switch code {
	case codeOK:
		return v[0], nil
	case codeNotFound:
		return 0, fmt.Errorf("%w: account %s", ledger.ErrNotFound, id)
	}
	return 0, unexpected(code)
}

// CloseSession implements ledger.Ledger.
func (l *Ledger) CloseSession(ctx context.Context, id string) (int64, error) {
	code, v, err := l.integers(ctx, closeScript, 1, l.accountKeys(id), id)
	if err != nil {
		return 0, err
	}
	switch code {
	case codeOK:
		return v[0], nil
	case codeNotFound:
		return 0, fmt.Errorf("%w: session %s", ledger.ErrNotFound, id)
	case codeClosed:
		return 0, fmt.Errorf("%w: session %s", ledger.ErrClosed, id)
	}
	return 0, unexpected(code)
}

// RecordRefund implements ledger.Ledger.
func (l *Ledger) RecordRefund(ctx context.Context, id string, r ledger.Refund) error {
	if err := ledger.CheckRefund(r); err != nil {
		return err
	}
	code, _, err := l.integers(ctx, refundScript, 0, l.accountKeys(id)[:1], string(r.Status), r.Payment.String())
	if err != nil {
		return err
	}
	switch code {
	case codeOK:
		return nil
	case codeNotFound:
		return fmt.Errorf("%w: session %s", ledger.ErrNotFound, id)
	case codeInvalid:
		return fmt.Errorf("%w: session %s has no refund awaiting an outcome", ledger.ErrInvalid, id)
	}
	return unexpected(code)
}

// Session implements ledger.Ledger.
func (l *Ledger) Session(ctx context.Context, id string) (ledger.Session, error) {
	code, vals, err := l.reply(ctx, sessionScript, l.accountKeys(id)[:2], id)
	if err != nil {
		return ledger.Session{}, err
	}
	switch code {
	case codeOK:
	case codeNotFound:
		return ledger.Session{}, fmt.Errorf("%w: session %s", ledger.ErrNotFound, id)
	default:
		return ledger.Session{}, unexpected(code)
	}
	f, err := strs(vals, 11)
	if err != nil {
		return ledger.Session{}, err
	}
	p := fieldParser{}
	s := ledger.Session{
		ID:            id,
		Deposit:       p.int(f[0]),
		Spent:         p.int(f[1]),
		Closed:        f[2] == "closed",
		ReturnInvoice: f[3],
		OpenedAt:      p.time(f[4]),
		LastActivity:  p.time(f[5]),
		ClosedAt:      p.time(f[6]),
		Refund:        p.int(f[7]),
		RefundStatus:  ledger.RefundStatus(f[8]),
		Held:          p.int(f[10]),
	}
	if f[9] != "" {
		s.RefundPayment, p.err = ledger.ParseHash(f[9])
	}
	if p.err != nil {
		return ledger.Session{}, fmt.Errorf("%w: session %s: %v", ledger.ErrCorrupt, id, p.err)
	}
	return s, nil
}

// IdleSessions implements ledger.Ledger.
func (l *Ledger) IdleSessions(ctx context.Context, idle time.Duration, limit int) ([]string, error) {
	if limit <= 0 {
		return nil, nil
	}
	v, err := idleScript.Run(ctx, l.client, []string{l.prefix + "idle"}, idle.Milliseconds(), limit).Result()
	if err != nil {
		return nil, backendError(err)
	}
	a, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%w: redis replied %T, not an array", ledger.ErrCorrupt, v)
	}
	return strs(a, len(a))
}

// strs checks that vals are n strings.
func strs(vals []any, n int) ([]string, error) {
	if len(vals) != n {
		return nil, fmt.Errorf("%w: redis replied %d values, want %d", ledger.ErrCorrupt, len(vals), n)
	}
	out := make([]string, n)
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%w: redis replied %T, not a string", ledger.ErrCorrupt, v)
		}
		out[i] = s
	}
	return out, nil
}

// fieldParser parses stored numbers, keeping the first error.
type fieldParser struct{ err error }

func (p *fieldParser) int(s string) int64 {
	if s == "" {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil && p.err == nil {
		p.err = err
	}
	return n
}

func (p *fieldParser) time(s string) time.Time {
	if ms := p.int(s); ms != 0 {
		return time.UnixMilli(ms)
	}
	return time.Time{}
}

// Interface guard.
var _ ledger.Ledger = (*Ledger)(nil)
