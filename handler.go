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
// set.
type Handler struct {
	// InvoiceExpiry is how long generated invoices can be paid.
	// Default: 1h.
	InvoiceExpiry caddy.Duration `json:"invoice_expiry,omitempty"`
	// MaxPayment is the largest outgoing payment in satoshis, fees
	// excluded. Default: 0, which disables payinvoice and keysend.
	MaxPayment int64 `json:"max_payment,omitempty"`
	// MaxFee is the most a payment may cost in routing fees, in satoshis.
	// Default: 1% of the amount, at least 10.
	MaxFee int64 `json:"max_fee,omitempty"`
	// PaymentTimeout bounds the node's search for a route.
	// Default: 60s.
	PaymentTimeout caddy.Duration `json:"payment_timeout,omitempty"`
	// Budget caps what payments may spend over a sliding window, fees
	// included. The spending is kept in Caddy's storage, so the budget
	// holds across restarts and across instances sharing the storage (all
	// handlers with a budget count against one record). Default: none
	// beyond MaxPayment per payment.
	Budget *Budget `json:"budget,omitempty"`
	// APIKey, when set, must come with every call: in the X-API-KEY
	// header, Grpc-Metadata-X-API-KEY (as grpc-gateway clients send it),
	// or gRPC metadata x-api-key. Placeholders such as {env.X} work.
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
	if h.MaxPayment < 0 || h.MaxFee < 0 {
		return fmt.Errorf("max_payment and max_fee must not be negative")
	}
	if err := h.Budget.validate(); err != nil {
		return err
	}
	if err := h.InvoicesPerClient.validate(); err != nil {
		return fmt.Errorf("invoices_per_client: %w", err)
	}
	invoicesPerClient := h.InvoicesPerClient
	if invoicesPerClient == nil {
		invoicesPerClient = &Rate{Events: 600, Window: caddy.Duration(time.Minute)}
	}
	h.apiKey = newAPIKey(caddy.NewReplacer().ReplaceAll(h.APIKey, ""))
	if h.MaxPayment > 0 && !h.apiKey.required() {
		h.logger.Warn("payinvoice and keysend are enabled without api_key: anyone who reaches this route can spend "+
			"up to max_payment per call; set api_key, or put basic_auth or forward_auth in front",
			zap.Int64("max_payment", h.MaxPayment))
	}
	if h.InvoiceExpiry == 0 {
		h.InvoiceExpiry = caddy.Duration(time.Hour)
	}
	if h.PaymentTimeout == 0 {
		h.PaymentTimeout = caddy.Duration(60 * time.Second)
	}
	h.api = &service{
		app:            app,
		node:           app.Client(),
		invoiceExpiry:  time.Duration(h.InvoiceExpiry),
		maxPayment:     h.MaxPayment,
		maxFee:         h.MaxFee,
		paymentTimeout: time.Duration(h.PaymentTimeout),
		budget:         newSpendLedger(h.Budget, ctx.Storage()),
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
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
