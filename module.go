// Package lightning is a Caddy plugin that puts Lightning Network payments
// in front of any site or API: the `lightning` app holds the connection to
// an LND node, the `lightning` handler serves the Lightning API (REST and
// gRPC), and the `paywall` handler sells access to any route with L402.
package lightning

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
	"go.uber.org/zap"

	"github.com/lightningcaddy/caddy-lightning/lnd"
)

func init() {
	caddy.RegisterModule(App{})
}

// clients shares one LND connection per node across config reloads.
var clients = caddy.NewUsagePool()

// App is the `lightning` app: it owns the connection to the LND node that
// the lightning handlers and paywalls use, and the work that outlives a
// request: following the node's invoice stream, the paywalls' shared state
// in storage and the outgoing payments still open, from Start to Stop.
// Configure it with the Caddyfile global option `lightning` or under
// "apps" in JSON.
type App struct {
	// LND says how to reach the node. Required.
	LND *LNDConfig `json:"lnd,omitempty"`
	// SyncInterval is how often the paywalls' shared state (root keys and
	// revocations, in Caddy's storage) is checked for changes made by
	// other instances: the bound on how long a revocation takes to reach
	// every instance. Default: 5s.
	SyncInterval caddy.Duration `json:"sync_interval,omitempty"`
	// RouteHints says when invoices carry route hints for the node's
	// private channels, so payers can reach a node whose inbound liquidity
	// is on private channels (from an LSP): "auto" unless the node's
	// public channels can receive the amount, "always", or "never". Hints
	// reveal those channels and their peer to everyone who gets an
	// invoice. Default: auto.
	RouteHints string `json:"route_hints,omitempty"`
	// ClientIPv6Prefix is how many leading bits of an IPv6 address the
	// per-client rate limits count as one client (IPv4 addresses count
	// one by one). Default: 64.
	ClientIPv6Prefix int `json:"client_ipv6_prefix,omitempty"`
	// Ledger says where the paywalls of modes per_request and prepaid
	// count single-use payments and balances. Default: embedded, in
	// Caddy's storage.
	Ledger *LedgerConfig `json:"ledger,omitempty"`

	client  *lnd.Client
	poolKey string // of client and feed; "" when not pooled
	logger  *zap.Logger
	ctx     caddy.Context

	feed   *settlementFeed
	events *caddyevents.App
	tokens *tokenStore

	started    bool               // Start succeeded and Stop has not run
	stopFollow context.CancelFunc // stops the token store's follower
	followDone chan struct{}

	paywalls *paywallList // for status
	uses     *nodeUses    // for the permission check
	ledger   *ledgerUse   // built when a paywall first needs it

	payments *paymentLedger   // outgoing payments and budgets (budget.go)
	follower *paymentFollower // of open payments, from Start to Stop
	closer   *sessionCloser   // of idle sessions, from Start to Stop
}

// paywallList is the paywalls that use the app.
type paywallList struct {
	mu   sync.Mutex
	list []*Paywall
}

// LNDConfig says how to reach an LND node. Placeholders such as {env.X}
// and {file.X} are replaced in every field.
type LNDConfig struct {
	// Address is host:port of the node's gRPC interface.
	// Default: 127.0.0.1:10009.
	Address string `json:"address,omitempty"`
	// TLSCert is the node's tls.cert: a file path, inline PEM, or hex of
	// the PEM or DER bytes. Required.
	TLSCert string `json:"tls_cert,omitempty"`
	// Macaroon is a file path or the hex of the macaroon (admin, or one
	// baked with the permissions the configured handlers use). Required;
	// a placeholder that resolves to nothing stops the config from
	// loading.
	Macaroon string `json:"macaroon,omitempty"`
	// Timeout bounds each call to the node (payments have their own
	// timeout). Default: 15s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "lightning",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision prepares the node client and the in-memory state. It does no
// network or storage I/O: the node is dialled on first use, the stream and
// the shared state are followed from Start.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	a.ctx = ctx
	a.paywalls = new(paywallList)
	a.uses = new(nodeUses)
	a.tokens = newTokenStore(ctx.Storage(), a.logger)
	a.payments = newPaymentLedger(ctx.Storage())
	if a.ClientIPv6Prefix == 0 {
		a.ClientIPv6Prefix = defaultIPv6Prefix
	}
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("lightning: register metrics: %w", err)
	}
	events, err := ctx.App("events")
	if err != nil {
		return fmt.Errorf("lightning: %w", err)
	}
	a.events = events.(*caddyevents.App)
	if err := a.provisionLedger(ctx); err != nil {
		return fmt.Errorf("lightning: %w", err)
	}
	if a.LND == nil {
		return nil // Validate says what is missing
	}
	cfg, err := a.LND.clientConfig(caddy.NewReplacer())
	if err != nil {
		return fmt.Errorf("lightning: %w", err)
	}
	cfg.RouteHints = lnd.RouteHints(a.RouteHints)
	key := poolKey(cfg)
	value, _, err := clients.LoadOrNew(key, func() (caddy.Destructor, error) {
		c, err := lnd.New(cfg)
		if err != nil {
			return nil, err
		}
		return pooledClient{c}, nil
	})
	if err != nil {
		return fmt.Errorf("lightning: %w", err)
	}
	feed, _, _ := feeds.LoadOrNew(key, func() (caddy.Destructor, error) { return newSettlementFeed(), nil })
	a.poolKey = key
	a.client = value.(pooledClient).Client
	a.feed = feed.(*settlementFeed)
	return nil
}

// Validate checks the configuration.
func (a *App) Validate() error {
	switch {
	case a.LND == nil:
		return errors.New("lightning: the lnd block is required (address, tls_cert, macaroon)")
	case a.SyncInterval < 0:
		return errors.New("lightning: sync_interval must be positive")
	case a.ClientIPv6Prefix < 1 || a.ClientIPv6Prefix > 128:
		return fmt.Errorf("lightning: client_ipv6_prefix %d: use 1 to 128 bits", a.ClientIPv6Prefix)
	}
	if err := a.Ledger.validate(); err != nil {
		return fmt.Errorf("lightning: %w", err)
	}
	return nil
}

// Start follows the node's invoice stream and, if the config has paywalls,
// loads their shared state (creating a root key in storage the first time)
// and follows other instances' changes to it; if paywalls sell per
// request or prepaid, it loads the embedded ledger and starts its flusher;
// if a handler makes payments, it follows the payments whose outcome is
// still open.
func (a *App) Start() error {
	a.paywalls.mu.Lock()
	paywalls := slices.Clone(a.paywalls.list)
	a.paywalls.mu.Unlock()
	if len(paywalls) > 0 {
		if err := a.tokens.open(a.ctx); err != nil {
			return fmt.Errorf("lightning: %w", err)
		}
		interval := time.Duration(a.SyncInterval)
		if interval <= 0 {
			interval = 5 * time.Second
		}
		ctx, cancel := context.WithCancel(context.Background())
		a.stopFollow, a.followDone = cancel, make(chan struct{})
		go func() {
			defer close(a.followDone)
			a.tokens.follow(ctx, interval)
		}()
	}
	for _, p := range paywalls {
		p.resolve()
	}
	if err := checkServiceModes(paywalls); err != nil {
		return fmt.Errorf("lightning: %w", err)
	}
	if err := a.startLedger(); err != nil {
		return fmt.Errorf("lightning: %w", err)
	}
	a.startSessionCloser(paywalls)
	a.feed.start(a)
	a.started = true
	a.logger.Info("lightning node configured", zap.String("address", a.LND.address()))
	a.startFollower()
	go a.checkPermissions(a.ctx)
	return nil
}

// Stop stops what Start started and writes what the embedded ledger has
// not written yet; the invoice stream and the ledger's flusher go on while
// another config (the one a reload brings in) uses them.
func (a *App) Stop() error {
	if !a.started {
		return nil
	}
	a.started = false
	a.stopSessionCloser()
	a.feed.stop(a)
	a.stopLedger()
	if a.stopFollow != nil {
		a.stopFollow()
		<-a.followDone
	}
	a.stopFollower()
	return nil
}

// Cleanup releases this config's hold on the shared node connection,
// settlement feed and ledger (the last config to let go of the embedded
// ledger stops its flusher, which writes a last time).
func (a *App) Cleanup() error {
	err := a.releaseLedger()
	if a.poolKey == "" {
		return err
	}
	_, ferr := feeds.Delete(a.poolKey)
	_, cerr := clients.Delete(a.poolKey)
	a.poolKey = ""
	return errors.Join(err, ferr, cerr)
}

// Client returns the node client.
func (a *App) Client() *lnd.Client { return a.client }

// callTimeout bounds each call to the node.
func (a *App) callTimeout() time.Duration {
	if a.LND.Timeout > 0 {
		return time.Duration(a.LND.Timeout)
	}
	return lnd.DefaultCallTimeout
}

// settlements returns what the app knows of settled invoices, shared with
// the other configs that use the node.
func (a *App) settlements() *settlements { return a.feed.settlements }

// tokenStore returns the paywalls' shared root keys and revocations,
// loading them on first use if Start has not.
func (a *App) tokenStore(ctx context.Context) (*tokenStore, error) {
	if err := a.tokens.open(ctx); err != nil {
		return nil, err
	}
	return a.tokens, nil
}

// addPaywall lists a paywall for the status endpoint.
func (a *App) addPaywall(p *Paywall) {
	a.paywalls.mu.Lock()
	defer a.paywalls.mu.Unlock()
	a.paywalls.list = append(a.paywalls.list, p)
}

// emit sends a Caddy event that other modules can subscribe to.
func (a *App) emit(name string, data map[string]any) {
	if a.events != nil {
		a.events.Emit(a.ctx, name, data)
	}
}

// lightningApp fetches the lightning app, with an error that says how to
// configure it when it is missing.
func lightningApp(ctx caddy.Context) (*App, error) {
	app, err := ctx.AppIfConfigured("lightning")
	if errors.Is(err, caddy.ErrNotConfigured) {
		return nil, errors.New("the lightning app is not configured: add a global option block " +
			"`{ lightning { lnd { address host:port; tls_cert /path/tls.cert; macaroon /path/admin.macaroon } } }` " +
			"to the Caddyfile, or \"apps\": {\"lightning\": {\"lnd\": {...}}} to the JSON config")
	}
	if err != nil {
		return nil, err
	}
	return app.(*App), nil
}

func (c *LNDConfig) address() string {
	if c.Address == "" {
		return "127.0.0.1:10009"
	}
	return c.Address
}

// clientConfig resolves placeholders, files and encodings.
func (c *LNDConfig) clientConfig(repl *caddy.Replacer) (lnd.Config, error) {
	cert, certFile, err := loadCert(repl.ReplaceAll(c.TLSCert, ""))
	if err != nil {
		return lnd.Config{}, fmt.Errorf("lnd tls_cert: %w", err)
	}
	var macValue string
	if c.Macaroon != "" {
		if macValue, err = resolveSecret("lnd macaroon", c.Macaroon); err != nil {
			return lnd.Config{}, err
		}
	}
	mac, err := loadMacaroon(macValue)
	if err != nil {
		return lnd.Config{}, fmt.Errorf("lnd macaroon: %w", err)
	}
	return lnd.Config{
		Address:     repl.ReplaceAll(c.address(), ""),
		TLSCert:     cert,
		TLSCertFile: certFile,
		Macaroon:    mac,
		CallTimeout: time.Duration(c.Timeout),
		Observer:    observeNodeCall,
	}, nil
}

// loadCert accepts inline PEM, hex of PEM or DER, or a file path, which it
// returns too (the client reads the file again when it redials).
func loadCert(value string) (cert []byte, file string, err error) {
	value = strings.TrimSpace(value)
	switch {
	case value == "":
		return nil, "", errors.New("required: a file path, PEM, or hex")
	case strings.HasPrefix(value, "-----BEGIN"):
		return []byte(value), "", nil
	}
	if raw, err := hex.DecodeString(value); err == nil {
		if strings.HasPrefix(string(raw), "-----BEGIN") {
			return raw, "", nil
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: raw}), "", nil
	}
	data, err := os.ReadFile(value)
	if err != nil {
		return nil, "", fmt.Errorf("not PEM or hex, and not a readable file: %w", err)
	}
	return data, value, nil
}

// loadMacaroon accepts hex, a file path, or the raw bytes a {file.X}
// placeholder inserts.
func loadMacaroon(value string) ([]byte, error) {
	trimmed := strings.TrimSpace(value)
	if trimmed == "" {
		return nil, errors.New("required: a file path or hex")
	}
	if raw, err := hex.DecodeString(trimmed); err == nil {
		return raw, nil
	}
	if !isPrintable(value) {
		return []byte(value), nil
	}
	data, err := os.ReadFile(trimmed)
	if err != nil {
		return nil, fmt.Errorf("not hex, and not a readable file: %w", err)
	}
	if raw, err := hex.DecodeString(strings.TrimSpace(string(data))); err == nil {
		return raw, nil
	}
	return data, nil
}

func isPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// poolKey identifies a node connection by everything that configures it,
// hashed so no secret is kept as a map key.
func poolKey(cfg lnd.Config) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%x\x00%d\x00%s", cfg.Address, cfg.TLSCert, cfg.Macaroon, cfg.CallTimeout, cfg.RouteHints)
	return hex.EncodeToString(h.Sum(nil))
}

// pooledClient lets the usage pool close a client nobody uses any more.
type pooledClient struct{ *lnd.Client }

func (p pooledClient) Destruct() error { return p.Close() }

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
