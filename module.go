// Package lightning is a Caddy plugin that puts Lightning Network payments
// in front of any site or API: the `lightning` app holds the connection to
// an LND node, the `lightning` handler serves the Lightning API (REST and
// gRPC), and the `paywall` handler sells access to any route with L402.
package lightning

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
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
// the lightning handlers and paywalls use. Configure it with the Caddyfile
// global option `lightning` or under "apps" in JSON.
type App struct {
	// LND says how to reach the node. Required.
	LND *LNDConfig `json:"lnd,omitempty"`
	// SyncInterval is how often the paywalls' shared state (root keys and
	// revocations, in Caddy's storage) is checked for changes made by
	// other instances: the bound on how long a revocation takes to reach
	// every instance. Default: 5s.
	SyncInterval caddy.Duration `json:"sync_interval,omitempty"`

	client  *lnd.Client
	poolKey string
	logger  *zap.Logger
	ctx     caddy.Context

	settled *settlements
	events  *caddyevents.App

	tokensOnce *sync.Once
	tokenStore *tokenStore
	tokensErr  error

	paywalls *paywallList // for status

	payments *paymentLedger   // outgoing payments and budgets (budget.go)
	follower *paymentFollower // of open payments, from Start to Stop
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

// Provision prepares the node client. It does no network I/O: the
// connection is dialled on first use.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	a.ctx = ctx
	a.settled = newSettlements()
	a.tokensOnce = new(sync.Once)
	a.paywalls = new(paywallList)
	a.payments = newPaymentLedger(ctx.Storage())
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("lightning: register metrics: %w", err)
	}
	events, err := ctx.App("events")
	if err != nil {
		return fmt.Errorf("lightning: %w", err)
	}
	a.events = events.(*caddyevents.App)
	if a.LND == nil {
		return errors.New("lightning: the lnd block is required (address, tls_cert, macaroon)")
	}
	cfg, err := a.LND.clientConfig(caddy.NewReplacer())
	if err != nil {
		return fmt.Errorf("lightning: %w", err)
	}
	a.poolKey = poolKey(cfg)
	value, _, err := clients.LoadOrNew(a.poolKey, func() (caddy.Destructor, error) {
		c, err := lnd.New(cfg)
		if err != nil {
			return nil, err
		}
		return pooledClient{c}, nil
	})
	if err != nil {
		a.poolKey = ""
		return fmt.Errorf("lightning: %w", err)
	}
	a.client = value.(pooledClient).Client
	return nil
}

// Start implements caddy.App.
func (a *App) Start() error {
	a.logger.Info("lightning node configured", zap.String("address", a.LND.address()))
	a.startFollower()
	return nil
}

// Stop implements caddy.App.
func (a *App) Stop() error {
	a.stopFollower()
	return nil
}

// Cleanup releases this config's hold on the shared node connection.
func (a *App) Cleanup() error {
	if a.poolKey == "" {
		return nil
	}
	_, err := clients.Delete(a.poolKey)
	a.poolKey = ""
	return err
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

// settlements returns what the app knows of settled invoices. The first
// call starts following the node's invoice stream, until the config
// unloads.
func (a *App) settlements() *settlements {
	a.settled.following.Do(func() {
		go a.client.SubscribeSettlements(a.ctx, func(s lnd.Settlement) {
			a.recordSettlement(s.PaymentHash, s.Preimage, s.AmountSat)
		}, func(err error) {
			a.logger.Warn("invoice stream interrupted; reconnecting", zap.Error(err))
		})
	})
	return a.settled
}

// tokens returns the paywalls' shared root keys and revocations, loading
// (or creating) them in Caddy's storage on first use and following other
// instances' changes until the config unloads.
func (a *App) tokens() (*tokenStore, error) {
	a.tokensOnce.Do(func() {
		a.tokenStore, a.tokensErr = openTokenStore(a.ctx, a.ctx.Storage(), a.logger)
		if a.tokensErr != nil {
			a.tokensErr = fmt.Errorf("load shared token state: %w", a.tokensErr)
			return
		}
		interval := time.Duration(a.SyncInterval)
		if interval <= 0 {
			interval = 5 * time.Second
		}
		go a.tokenStore.follow(a.ctx, interval)
	})
	return a.tokenStore, a.tokensErr
}

// addPaywall lists a paywall for the status endpoint.
func (a *App) addPaywall(p *Paywall) {
	a.paywalls.mu.Lock()
	defer a.paywalls.mu.Unlock()
	a.paywalls.list = append(a.paywalls.list, p)
}

// recordSettlement remembers a settled invoice and, the first time an
// invoice this Caddy issued is seen settled, counts it and emits the
// lightning_invoice_settled event.
func (a *App) recordSettlement(hash, preimage [32]byte, amountSat int64) {
	service, issued := a.settled.add(hash, preimage)
	if !issued {
		return
	}
	invoicesSettled.WithLabelValues(service).Inc()
	satsReceived.WithLabelValues(service).Add(float64(amountSat))
	hashHex := hex.EncodeToString(hash[:])
	a.logger.Info("invoice settled", zap.String("payment_hash", hashHex),
		zap.String("service", service), zap.Int64("amount_sat", amountSat))
	a.emit("lightning_invoice_settled", map[string]any{
		"payment_hash": hashHex, "service": service, "amount_sat": amountSat,
	})
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
	cert, err := loadCert(repl.ReplaceAll(c.TLSCert, ""))
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
		Macaroon:    mac,
		CallTimeout: time.Duration(c.Timeout),
		Observer:    observeNodeCall,
	}, nil
}

// loadCert accepts inline PEM, hex of PEM or DER, or a file path.
func loadCert(value string) ([]byte, error) {
	value = strings.TrimSpace(value)
	switch {
	case value == "":
		return nil, errors.New("required: a file path, PEM, or hex")
	case strings.HasPrefix(value, "-----BEGIN"):
		return []byte(value), nil
	}
	if raw, err := hex.DecodeString(value); err == nil {
		if strings.HasPrefix(string(raw), "-----BEGIN") {
			return raw, nil
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: raw}), nil
	}
	data, err := os.ReadFile(value)
	if err != nil {
		return nil, fmt.Errorf("not PEM or hex, and not a readable file: %w", err)
	}
	return data, nil
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
	fmt.Fprintf(h, "%s\x00%s\x00%x\x00%d", cfg.Address, cfg.TLSCert, cfg.Macaroon, cfg.CallTimeout)
	return hex.EncodeToString(h.Sum(nil))
}

// pooledClient lets the usage pool close a client nobody uses any more.
type pooledClient struct{ *lnd.Client }

func (p pooledClient) Destruct() error { return p.Close() }

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
