package lightning

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/lightningcaddy/caddy-lightning/ledger"
	"github.com/lightningcaddy/caddy-lightning/ledger/redisledger"
)

// LedgerConfig says where the paywalls count what must be counted: the
// single-use payments of mode per_request and the balances of mode
// prepaid. Passes never touch it.
type LedgerConfig struct {
	// Backend is "embedded" (in memory, persisted to storage: exact within
	// one Caddy instance) or "redis" (one Lua script per operation: exact
	// across every instance that shares the Redis). Default: embedded.
	Backend string `json:"backend,omitempty"`

	// FlushInterval (embedded) is how often claims and draws are written
	// to storage; a crash loses at most those made since the last write
	// (see the README). Credits are written before they count. Default: 1s.
	FlushInterval caddy.Duration `json:"flush_interval,omitempty"`
	// MaxUnsaved (embedded) caps the claims and draws waiting to be
	// written: at the cap, per_request and prepaid requests get 503 until
	// the storage takes them, so a failing storage cannot widen what a
	// crash loses. Default: 100000.
	MaxUnsaved int `json:"max_unsaved,omitempty"`
	// StorageRaw (embedded) is the storage module the ledger is written
	// to. Default: Caddy's configured storage.
	StorageRaw json.RawMessage `json:"storage,omitempty" caddy:"namespace=caddy.storage inline_key=module"`

	// URL (redis) locates Redis: redis://[[user]:password@]host[:port][/db],
	// or rediss:// for TLS. Placeholders such as {env.REDIS_URL} work.
	// Required with redis.
	URL string `json:"url,omitempty"`
	// Password (redis) authenticates to Redis, replacing the URL's.
	// Placeholders work; when set it must not resolve to nothing.
	Password string `json:"password,omitempty"`
	// CACert (redis, rediss:// only) is the certificate of the CA that
	// signed Redis's, as a PEM file path or inline PEM. Default: the
	// system's roots.
	CACert string `json:"ca_cert,omitempty"`
	// Timeout (redis) bounds connecting and each command: with Redis
	// unreachable, per_request and prepaid requests get 503 within about
	// this long. Default: 1s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// Prefix names the ledger's keys: storage keys under it (embedded),
	// or Redis keys "{<prefix>}:..." (redis). Default: "lightning/ledger"
	// (embedded), "lightning" (redis).
	Prefix string `json:"prefix,omitempty"`
}

// Ledger backends.
const (
	backendEmbedded = "embedded"
	backendRedis    = "redis"
)

// paywallLedger is what the paywalls need of a ledger; package ledger
// documents each operation and its errors.
type paywallLedger interface {
	Claim(ctx context.Context, payment ledger.Hash, until time.Time) (first bool, err error)
	Credit(ctx context.Context, account string, payment ledger.Hash, sats int64) (credited bool, err error)
	Draw(ctx context.Context, account string, sats int64) (remaining int64, err error)
	Reserve(ctx context.Context, account string, sats int64) (ledger.Hold, error)
	Settle(ctx context.Context, h ledger.Hold, cost int64) (remaining int64, err error)
}

// ledgers shares one ledger per backend configuration across config
// reloads: the old and the new config count in the same memory (or the
// same Redis client), and the embedded flusher runs on.
var ledgers = caddy.NewUsagePool()

// sharedLedger is a ledger with its lifecycle: the embedded one is loaded
// from storage once (at the app's Start, or by the first request if it
// comes before) and flushed by a goroutine that lives until the last
// config using it is cleaned up.
type sharedLedger struct {
	paywallLedger
	backend string
	memory  *ledger.Memory      // embedded
	redis   *redisledger.Ledger // redis

	loaded  atomic.Bool
	mu      sync.Mutex // loading and starting the flusher
	stopRun context.CancelFunc
	runDone chan struct{}
	logger  *zap.Logger
	trouble throttledLog
}

// ready loads the embedded ledger if it is not loaded yet.
func (s *sharedLedger) ready(ctx context.Context) error {
	if s.memory == nil || s.loaded.Load() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loaded.Load() {
		return nil
	}
	if err := s.memory.Load(ctx); err != nil {
		return fmt.Errorf("load the embedded ledger: %w", err)
	}
	s.loaded.Store(true)
	return nil
}

// start loads the embedded ledger and starts its flusher, once.
func (s *sharedLedger) start(ctx context.Context) error {
	if s.memory == nil {
		return nil
	}
	if err := s.ready(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopRun != nil {
		return nil
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s.stopRun, s.runDone = cancel, make(chan struct{})
	go func() {
		defer close(s.runDone)
		if err := s.memory.Run(runCtx); err != nil {
			s.logger.Error("ledger: the last flush failed: claims and draws since the one before are lost", zap.Error(err))
		}
	}()
	return nil
}

// flush writes the embedded ledger's pending claims and draws.
func (s *sharedLedger) flush(ctx context.Context) error {
	if s.memory == nil || !s.loaded.Load() {
		return nil
	}
	return s.memory.Flush(ctx)
}

// Destruct stops the flusher, which flushes a last time, or closes the
// Redis connections, once no config uses the ledger.
func (s *sharedLedger) Destruct() error {
	if s.redis != nil {
		return s.redis.Close()
	}
	s.mu.Lock()
	stop, done := s.stopRun, s.runDone
	s.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	return nil
}

// ledgerUse is an app's hold on a shared ledger: the pool key, and how to
// build the ledger the first time.
type ledgerUse struct {
	key     string
	backend string
	build   func() (*sharedLedger, error)

	mu     sync.Mutex
	shared *sharedLedger // once a paywall asked for it
}

// provisionLedger parses the ledger configuration and prepares to build
// the ledger when a paywall first needs it. No network or storage I/O.
func (a *App) provisionLedger(ctx caddy.Context) error {
	cfg := a.Ledger
	if cfg == nil {
		cfg = new(LedgerConfig)
	}
	repl := caddy.NewReplacer()
	switch cfg.Backend {
	case "", backendEmbedded:
		storage := ctx.Storage()
		if cfg.StorageRaw != nil {
			mod, err := ctx.LoadModule(cfg, "StorageRaw")
			if err != nil {
				return fmt.Errorf("ledger storage: %w", err)
			}
			if storage, err = mod.(caddy.StorageConverter).CertMagicStorage(); err != nil {
				return fmt.Errorf("ledger storage: %w", err)
			}
		}
		opt := ledger.MemoryOptions{
			Prefix:        cfg.Prefix,
			FlushInterval: time.Duration(cfg.FlushInterval),
			MaxUnsaved:    cfg.MaxUnsaved,
		}
		a.ledger = &ledgerUse{
			key:     "embedded\x00" + storageIdentity(storage) + "\x00" + cfg.Prefix,
			backend: backendEmbedded,
			build: func() (*sharedLedger, error) {
				s := &sharedLedger{backend: backendEmbedded, logger: a.logger}
				opt.OnFlushError = func(err error) {
					s.trouble.log(s.logger, "ledger: cannot write claims and draws to storage; retrying", err)
				}
				s.memory = ledger.NewMemory(storage, opt)
				s.paywallLedger = s.memory
				return s, nil
			},
		}
	case backendRedis:
		opt := redisledger.Options{
			URL:         repl.ReplaceAll(cfg.URL, ""),
			Password:    repl.ReplaceAll(cfg.Password, ""),
			Prefix:      cfg.Prefix,
			DialTimeout: time.Duration(cfg.Timeout),
			ReadTimeout: time.Duration(cfg.Timeout), WriteTimeout: time.Duration(cfg.Timeout),
		}
		switch {
		case strings.TrimSpace(opt.URL) == "":
			return errors.New("ledger redis: url is required (redis://host:port or rediss://host:port) and must not resolve to nothing")
		case cfg.Password != "" && opt.Password == "":
			return errors.New("ledger redis: password is set but resolves to nothing")
		}
		var caPEM []byte
		if cfg.CACert != "" {
			if !strings.HasPrefix(opt.URL, "rediss://") {
				return errors.New("ledger redis: ca_cert needs a rediss:// url")
			}
			var err error
			if caPEM, _, err = loadCert(repl.ReplaceAll(cfg.CACert, "")); err != nil {
				return fmt.Errorf("ledger redis ca_cert: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(caPEM) {
				return errors.New("ledger redis ca_cert: no PEM certificate in it")
			}
			opt.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		// Check the URL now: New does no I/O.
		probe, err := redisledger.New(opt)
		if err != nil {
			return fmt.Errorf("ledger: %w", err)
		}
		_ = probe.Close()
		h := sha256.New()
		fmt.Fprintf(h, "%s\x00%s\x00%x\x00%s\x00%d", opt.URL, opt.Password, caPEM, opt.Prefix, opt.DialTimeout)
		a.ledger = &ledgerUse{
			key:     "redis\x00" + hex.EncodeToString(h.Sum(nil)),
			backend: backendRedis,
			build: func() (*sharedLedger, error) {
				l, err := redisledger.New(opt)
				if err != nil {
					return nil, err
				}
				return &sharedLedger{paywallLedger: l, backend: backendRedis, redis: l, logger: a.logger}, nil
			},
		}
	default:
		return fmt.Errorf("ledger: backend %q: use embedded or redis", cfg.Backend)
	}
	return nil
}

// validate checks the ledger configuration.
func (c *LedgerConfig) validate() error {
	if c == nil {
		return nil
	}
	embeddedOnly := c.FlushInterval != 0 || c.MaxUnsaved != 0 || c.StorageRaw != nil
	redisOnly := c.URL != "" || c.Password != "" || c.CACert != "" || c.Timeout != 0
	switch {
	case c.FlushInterval < 0 || c.MaxUnsaved < 0 || c.Timeout < 0:
		return errors.New("ledger: flush_interval, max_unsaved and timeout must be positive")
	case c.Backend == backendRedis && embeddedOnly:
		return errors.New("ledger: flush_interval, max_unsaved and storage are options of the embedded ledger, not of redis")
	case c.Backend != backendRedis && redisOnly:
		return errors.New("ledger: url, password, ca_cert and timeout are options of the redis ledger: add `backend redis`")
	case c.Prefix != "" && strings.ContainsAny(c.Prefix, "{}\x00"):
		return errors.New("ledger: prefix may not hold '{', '}' or NUL")
	}
	return nil
}

// sharedLedger returns the ledger, building it (or joining the one a
// previous config built) the first time a paywall asks. No I/O.
func (a *App) sharedLedger() (*sharedLedger, error) {
	u := a.ledger
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.shared != nil {
		return u.shared, nil
	}
	v, _, err := ledgers.LoadOrNew(u.key, func() (caddy.Destructor, error) { return u.build() })
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	u.shared = v.(*sharedLedger)
	return u.shared, nil
}

// startLedger loads the embedded ledger and starts its flusher if a
// paywall uses it, and warns if Redis does not answer.
func (a *App) startLedger() error {
	s := a.usedLedger()
	switch {
	case s == nil:
		return nil
	case s.redis != nil:
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := s.redis.Balance(ctx, "startup-check"); errors.Is(err, ledger.ErrUnavailable) {
				a.logger.Error("ledger: Redis does not answer; per_request and prepaid requests fail with 503 until it does", zap.Error(err))
			}
		}()
		return nil
	}
	return s.start(a.ctx)
}

// stopLedger writes what the embedded ledger has not written yet.
func (a *App) stopLedger() {
	s := a.usedLedger()
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.flush(ctx); err != nil {
		a.logger.Error("ledger: cannot write claims and draws to storage at stop", zap.Error(err))
	}
}

// releaseLedger lets go of this config's hold on the shared ledger.
func (a *App) releaseLedger() error {
	if a.ledger == nil {
		return nil
	}
	u := a.ledger
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.shared == nil {
		return nil
	}
	u.shared = nil
	_, err := ledgers.Delete(u.key)
	return err
}

// usedLedger is the ledger if a paywall of this config uses it, else nil.
func (a *App) usedLedger() *sharedLedger {
	if a.ledger == nil {
		return nil
	}
	a.ledger.mu.Lock()
	defer a.ledger.mu.Unlock()
	return a.ledger.shared
}

// storageIdentity names a storage for the ledger pool: what it prints
// (Caddy's file system storage prints its path), else its type.
func storageIdentity(s certmagic.Storage) string {
	if str, ok := s.(fmt.Stringer); ok {
		return fmt.Sprintf("%T %s", s, str.String())
	}
	return fmt.Sprintf("%T", s)
}

// throttledLog logs a recurring failure at most once per throttleInterval,
// saying how many it left out.
type throttledLog struct {
	last    atomic.Int64 // unix nanoseconds of the last line
	skipped atomic.Int64
}

const throttleInterval = 5 * time.Second

func (t *throttledLog) log(logger *zap.Logger, msg string, err error, fields ...zap.Field) {
	now := time.Now().UnixNano()
	last := t.last.Load()
	if now-last < int64(throttleInterval) || !t.last.CompareAndSwap(last, now) {
		t.skipped.Add(1)
		return
	}
	fields = append(fields, zap.Error(err), zap.Int64("same_errors_not_logged", t.skipped.Swap(0)))
	logger.Error(msg, fields...)
}
