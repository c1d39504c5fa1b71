package lightning

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lightningcaddy/caddy-lightning/lightningpb"
	"github.com/lightningcaddy/caddy-lightning/lnd"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler serves the Lightning API in front of the lightning app's node:
// REST (JSON, as grpc-gateway serves it) at paths ending in
// /v1/lightning/<method>, and gRPC (service lightning.Lightning) to
// application/grpc requests over HTTP/2.
//
// Outgoing payments (payinvoice, keysend) are refused unless MaxPayment is
// set. Each is entered in a ledger in Caddy's storage before it starts, and
// answered with its outcome: succeeded, failed for certain (no money
// moved), or unknown (it may still complete; a repeat returns its outcome
// and never pays twice). See outcomes.go.
type Handler struct {
	// InvoiceExpiry is how long generated invoices can be paid, at least
	// one second. Default: 1h.
	InvoiceExpiry caddy.Duration `json:"invoice_expiry,omitempty"`
	// MaxPayment is the largest outgoing payment in satoshis, fees
	// excluded. Default: 0, which disables payinvoice and keysend.
	MaxPayment int64 `json:"max_payment,omitempty"`
	// MaxFee is the most a payment may cost in routing fees, in satoshis.
	// Default: 1% of the amount, at least 10.
	MaxFee int64 `json:"max_fee,omitempty"`
	// PaymentTimeout bounds the node's search for a route, at least one
	// second (whole seconds). A payment still in flight after it (a payee
	// holding the HTLC, say) is answered as unknown and followed until it
	// ends. Default: 60s.
	PaymentTimeout caddy.Duration `json:"payment_timeout,omitempty"`
	// CLTVLimit is the most blocks an outgoing HTLC may stay locked
	// (lnd's cltv_limit), between 100 and 2016: a payee or a node on the
	// route that holds a payment cannot tie the funds up longer than
	// about CLTVLimit × 10 minutes. Default: 1008 (about a week).
	CLTVLimit uint32 `json:"cltv_limit,omitempty"`
	// Budget caps what payments may spend over a sliding window, fees
	// included. All payments of the lightning handlers sharing Caddy's
	// storage (across restarts and instances) count: those that ended in
	// the window at what they cost, and those whose outcome is still open
	// at their amount plus fee limit, however old. Default: none beyond
	// MaxPayment per payment.
	Budget *Budget `json:"budget,omitempty"`
	// APIKey, when set, must come with every call: in the X-API-KEY
	// header, Grpc-Metadata-X-API-KEY (as grpc-gateway clients send it),
	// or gRPC metadata x-api-key. Placeholders such as {env.X} work; one
	// that resolves to nothing stops the config from loading.
	// Default: none.
	APIKey string `json:"api_key,omitempty"`
	// InvoicesPerClient bounds how fast one client (an IPv4 address, or an
	// IPv6 prefix of the app's client_ipv6_prefix bits) can have
	// generateinvoice make invoices; beyond it the call fails with
	// RESOURCE_EXHAUSTED (HTTP 429). Default: 600 per minute. Events 0
	// turns it off.
	InvoicesPerClient *Rate `json:"invoices_per_client,omitempty"`

	api    *service
	rest   map[string]restMethod
	grpc   *grpc.Server
	apiKey apiKey
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.lightning",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision connects the handler to the lightning app.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	app, err := lightningApp(ctx)
	if err != nil {
		return err
	}
	if h.APIKey != "" {
		key, err := resolveSecret("lightning: api_key", h.APIKey)
		if err != nil {
			return err
		}
		h.apiKey = newAPIKey(key)
	}
	invoicesPerClient := h.InvoicesPerClient
	if invoicesPerClient == nil {
		invoicesPerClient = &Rate{Events: 600, Window: caddy.Duration(time.Minute)}
	}
	if h.MaxPayment > 0 && !h.apiKey.required() {
		h.logger.Warn("payinvoice and keysend are enabled without api_key: anyone who reaches this route can spend "+
			"up to max_payment per call; set api_key, or put basic_auth or forward_auth in front",
			zap.Int64("max_payment", h.MaxPayment))
	}
	if h.InvoiceExpiry == 0 {
		h.InvoiceExpiry = caddy.Duration(lnd.DefaultInvoiceExpiry)
	}
	if h.PaymentTimeout == 0 {
		h.PaymentTimeout = caddy.Duration(lnd.DefaultPaymentTimeout)
	}
	if h.CLTVLimit == 0 {
		h.CLTVLimit = lnd.DefaultCLTVLimit
	}
	if h.MaxPayment > 0 {
		app.payments.register(h.Budget)
	}
	h.api = &service{
		app:            app,
		node:           app.Client(),
		invoiceExpiry:  time.Duration(h.InvoiceExpiry),
		maxPayment:     h.MaxPayment,
		maxFee:         h.MaxFee,
		paymentTimeout: time.Duration(h.PaymentTimeout),
		cltvLimit:      h.CLTVLimit,
		followAfter:    time.Duration(h.PaymentTimeout) + 2*app.callTimeout() + 30*time.Second,
		ledger:         app.payments,
		budget:         h.Budget,
		keyScope:       h.apiKey.digest,
		invoiceLimits:  newClientLimits(invoicesPerClient),
		ipv6Prefix:     app.ClientIPv6Prefix,
		logger:         h.logger,
	}
	h.rest = h.api.restMethods()
	app.useAPI(h.MaxPayment > 0)
	// The gRPC server has no listener of its own: it serves through
	// ServeHTTP, and is never stopped, so calls still in flight on an old
	// config when Caddy reloads finish normally.
	h.grpc = grpc.NewServer(grpc.ChainUnaryInterceptor(h.recoverPanics, h.apiKey.unaryInterceptor))
	lightningpb.RegisterLightningServer(h.grpc, h.api)
	return nil
}

// Validate checks the limits. Durations the node counts in seconds must be
// at least one.
func (h *Handler) Validate() error {
	switch {
	case h.MaxPayment < 0 || h.MaxPayment > maxSats || h.MaxFee < 0 || h.MaxFee > maxSats:
		return fmt.Errorf("lightning: max_payment and max_fee must be between 0 and %d satoshis", int64(maxSats))
	case time.Duration(h.InvoiceExpiry) < time.Second:
		return fmt.Errorf("lightning: invoice_expiry must be at least one second")
	case time.Duration(h.PaymentTimeout) < time.Second:
		return fmt.Errorf("lightning: payment_timeout must be at least one second")
	case h.CLTVLimit < minCLTVLimit || h.CLTVLimit > maxCLTVLimit:
		return fmt.Errorf("lightning: cltv_limit must be between %d and %d blocks", minCLTVLimit, maxCLTVLimit)
	}
	if err := h.Budget.validate(); err != nil {
		return fmt.Errorf("lightning: %w", err)
	}
	if err := h.InvoicesPerClient.validate(); err != nil {
		return fmt.Errorf("lightning: invoices_per_client: %w", err)
	}
	return nil
}

// Bounds of cltv_limit: below, payments to lnd's invoices (80 blocks for
// the final hop) rarely find a route; above, lnd refuses them unless its
// --max-cltv-expiry was raised.
const (
	minCLTVLimit = 100
	maxCLTVLimit = 2016
)

// ServeHTTP answers gRPC and REST calls of the Lightning API.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
		h.grpc.ServeHTTP(flushWriter{w, http.NewResponseController(w)}, r)
		return nil
	}
	if !h.apiKey.matches(r.Header.Get("X-Api-Key")) && !h.apiKey.matches(r.Header.Get("Grpc-Metadata-X-Api-Key")) {
		writeError(w, 0, errBadAPIKey)
		return nil
	}
	h.serveREST(w, r)
	return nil
}

// recoverPanics turns a panic in a gRPC call into an Internal error: grpc-go
// does not recover them, and one would take all of Caddy down.
func (h *Handler) recoverPanics(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			h.logger.Error("panic in a gRPC call", zap.String("method", info.FullMethod), zap.Any("panic", r))
			err = status.Error(codes.Internal, "internal error")
		}
	}()
	return handler(ctx, req)
}

// flushWriter gives gRPC the http.Flusher it asks for; Caddy's wrapped
// response writers flush through http.ResponseController.
type flushWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
}

func (f flushWriter) Flush() { _ = f.rc.Flush() }

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
