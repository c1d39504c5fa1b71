package lightning

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/lightningcaddy/caddy-lightning/ledger"
)

func init() {
	caddy.RegisterModule(adminAPI{})
}

// adminAPI serves the lightning app's endpoints on Caddy's admin API:
//
//	GET  /lightning/status      the node, the paywalls, the root keys, the
//	                            budgets and the payments whose outcome is open
//	POST /lightning/revoke      {"token": "<base64>"} or {"token_id": "<hex>"}
//	POST /lightning/rotate_key  {"drop_old": false}
//
// Revocations and key changes are written to Caddy's storage, so every
// instance sharing it applies them within the app's sync_interval.
type adminAPI struct {
	app *App // nil when the config has no lightning app
}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.lightning",
		New: func() caddy.Module { return new(adminAPI) },
	}
}

// Provision finds the lightning app, if the config has one.
func (a *adminAPI) Provision(ctx caddy.Context) error {
	if app, err := ctx.AppIfConfigured("lightning"); err == nil {
		a.app = app.(*App)
	}
	return nil
}

// Routes returns the admin routes.
func (a *adminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/lightning/", Handler: caddy.AdminHandlerFunc(a.serve)}}
}

func (a *adminAPI) serve(w http.ResponseWriter, r *http.Request) error {
	if a.app == nil {
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: errors.New("the lightning app is not configured")}
	}
	endpoint := strings.TrimPrefix(r.URL.Path, "/lightning/")
	method := map[string]string{"status": http.MethodGet, "revoke": http.MethodPost, "rotate_key": http.MethodPost}[endpoint]
	switch {
	case method == "":
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("unknown endpoint %q: use status, revoke or rotate_key", endpoint)}
	case r.Method != method:
		w.Header().Set("Allow", method)
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("use %s", method)}
	}
	var result any
	var err error
	switch endpoint {
	case "status":
		result = a.status(r.Context())
	case "revoke":
		result, err = a.revoke(r)
	case "rotate_key":
		result, err = a.rotateKey(r)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(result)
}

// adminStatus is the answer of GET /lightning/status.
type adminStatus struct {
	Node     nodeStatus      `json:"node"`
	Paywalls []paywallStatus `json:"paywalls"`
	// Keys are the public ids of the root keys; the first mints.
	Keys []string `json:"keys,omitempty"`
	// RevokedTokens counts revocations not yet expired.
	RevokedTokens int `json:"revoked_tokens"`
	// ChallengeSecrets counts the secrets that verify Payment and x402
	// challenges: the newest, and those a rotation replaced less than 25
	// hours ago.
	ChallengeSecrets int `json:"challenge_secrets"`
	// Ledger is where per_request and prepaid paywalls count (absent
	// when no paywall uses it).
	Ledger *ledgerStatus `json:"ledger,omitempty"`
	// Budgets are the lightning handlers' budgets and what the payment
	// ledger holds against each.
	Budgets []budgetStatus `json:"budgets"`
	// OpenPayments are the outgoing payments whose outcome the node has
	// not told yet, oldest first.
	OpenPayments []openPaymentStatus `json:"open_payments"`
	// PaymentsError says why budgets and open payments could not be read
	// from the payment ledger.
	PaymentsError string `json:"payments_error,omitempty"`
}

// budgetStatus is one budget: limit_sat over window, of which spent_sat
// went to payments that ended in the window (fees included) and
// reserved_sat is held by open payments (amount plus fee limit, whatever
// their age); available_sat is what is left.
type budgetStatus struct {
	LimitSat     int64  `json:"limit_sat"`
	Window       string `json:"window"`
	SpentSat     int64  `json:"spent_sat"`
	ReservedSat  int64  `json:"reserved_sat"`
	AvailableSat int64  `json:"available_sat"`
}

// openPaymentStatus is a payment whose outcome is open: it may still
// complete, and the app follows it until the node says how it ended.
type openPaymentStatus struct {
	PaymentHash string    `json:"payment_hash"`
	Kind        string    `json:"kind"`
	AmountSat   int64     `json:"amount_sat"`
	ReservedSat int64     `json:"reserved_sat"`
	StartedAt   time.Time `json:"started_at"`
}

// ledgerStatus is the paywalls' ledger: its backend and whether it answers.
type ledgerStatus struct {
	Backend string `json:"backend"`
	// Ready: the embedded ledger is loaded, or Redis answered now.
	Ready bool   `json:"ready"`
	Error string `json:"error,omitempty"`
}

type nodeStatus struct {
	// Ready: the node's RPC server is active (asked without a macaroon,
	// so a node that is Ready but not Reachable refuses the macaroon).
	Ready         bool   `json:"ready"`
	Reachable     bool   `json:"reachable"`
	Error         string `json:"error,omitempty"`
	Pubkey        string `json:"pubkey,omitempty"`
	Alias         string `json:"alias,omitempty"`
	Network       string `json:"network,omitempty"`
	SyncedToChain bool   `json:"synced_to_chain"`
	BlockHeight   uint32 `json:"block_height,omitempty"`
}

type paywallStatus struct {
	Service string `json:"service"`
	Mode    string `json:"mode"`
	// PriceSat is a fixed price; a price from placeholders is in
	// Price, bounded by MaxPriceSat.
	PriceSat    int64  `json:"price_sat,omitempty"`
	Price       string `json:"price,omitempty"`
	MaxPriceSat int64  `json:"max_price_sat,omitempty"`
	// BalanceSat is what one prepaid payment buys.
	BalanceSat int64  `json:"balance_sat,omitempty"`
	CostHeader string `json:"cost_header,omitempty"`
	ValidFor   string `json:"valid_for"`
	OwnKey     bool   `json:"own_root_key"`
	// Offers are the dialects the paywall's 402 offers, in order.
	Offers []string `json:"offers"`
}

// status is what the status endpoint says of the paywall.
func (p *Paywall) status() paywallStatus {
	st := paywallStatus{Service: p.service, Mode: p.mode, PriceSat: p.price, ValidFor: time.Duration(p.ValidFor).String(),
		OwnKey: p.fixedKeys != nil, CostHeader: p.CostHeader, Offers: p.offerList}
	if p.priceTemplate != "" {
		st.Price, st.MaxPriceSat = p.priceTemplate, p.MaxPrice
	}
	if p.mode == modePrepaid {
		st.BalanceSat = p.balance
	}
	return st
}

// ledgerStatus checks the ledger, if a paywall uses it.
func (a *App) ledgerStatus(ctx context.Context) *ledgerStatus {
	s := a.usedLedger()
	if s == nil {
		return nil
	}
	st := &ledgerStatus{Backend: s.backend, Ready: s.memory == nil || s.loaded.Load()}
	if s.redis != nil {
		// An account nobody has: Redis answers "not found".
		if _, err := s.redis.Balance(ctx, "status-check"); !errors.Is(err, ledger.ErrNotFound) {
			st.Ready, st.Error = false, err.Error()
		}
	}
	return st
}

func (a *adminAPI) status(ctx context.Context) adminStatus {
	var st adminStatus
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if info, err := a.app.Client().Info(ctx); err != nil {
		st.Node.Error = err.Error()
	} else {
		st.Node = nodeStatus{Reachable: true, Pubkey: info.Pubkey, Alias: info.Alias, Network: info.Network,
			SyncedToChain: info.SyncedToChain, BlockHeight: info.BlockHeight}
	}
	st.Node.Ready = a.app.Client().Ready(ctx) == nil
	a.app.paywalls.mu.Lock()
	for _, p := range a.app.paywalls.list {
		p.resolve()
		st.Paywalls = append(st.Paywalls, p.status())
	}
	a.app.paywalls.mu.Unlock()
	st.Ledger = a.app.ledgerStatus(ctx)
	if snap := a.app.tokens.snap.Load(); snap != nil { // loaded if the config has paywalls
		st.Keys = snap.keyIDs
		st.RevokedTokens = len(snap.revoked)
		if snap.challenges != nil {
			st.ChallengeSecrets = len(snap.challenges.keys)
		}
	}
	st.Budgets, st.OpenPayments = []budgetStatus{}, []openPaymentStatus{}
	ledger, err := a.app.payments.load(ctx)
	if err != nil {
		st.PaymentsError = err.Error()
		return st
	}
	for _, b := range a.app.payments.budgetList() {
		spent, reserved := ledger.usage(b.window(), now())
		st.Budgets = append(st.Budgets, budgetStatus{LimitSat: b.Amount, Window: b.window().String(),
			SpentSat: spent, ReservedSat: reserved, AvailableSat: max(0, b.Amount-spent-reserved)})
	}
	for _, e := range ledger.Payments {
		if e.State == stateOpen {
			st.OpenPayments = append(st.OpenPayments, openPaymentStatus{PaymentHash: e.Hash, Kind: e.Kind,
				AmountSat: e.AmountSat, ReservedSat: e.reservedSat(), StartedAt: e.StartedAt})
		}
	}
	slices.SortFunc(st.OpenPayments, func(x, y openPaymentStatus) int { return x.StartedAt.Compare(y.StartedAt) })
	return st
}

func (a *adminAPI) tokens(ctx context.Context) (*tokenStore, error) {
	tokens, err := a.app.tokenStore(ctx)
	if err != nil {
		return nil, caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: err}
	}
	return tokens, nil
}

func (a *adminAPI) revoke(r *http.Request) (any, error) {
	var req struct {
		Token   string `json:"token"`
		TokenID string `json:"token_id"`
	}
	if err := decodeAdminRequest(r, &req); err != nil {
		return nil, err
	}
	tokens, err := a.tokens(r.Context())
	if err != nil {
		return nil, err
	}
	id, err := tokens.revoke(r.Context(), strings.TrimSpace(req.Token), strings.TrimSpace(req.TokenID))
	if err != nil {
		return nil, caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("revoke: %w", err)}
	}
	a.app.logger.Info("token revoked", zap.String("token_id", id))
	return map[string]string{"revoked": id}, nil
}

func (a *adminAPI) rotateKey(r *http.Request) (any, error) {
	var req struct {
		DropOld bool `json:"drop_old"`
	}
	if err := decodeAdminRequest(r, &req); err != nil {
		return nil, err
	}
	tokens, err := a.tokens(r.Context())
	if err != nil {
		return nil, err
	}
	if err := tokens.rotate(r.Context(), req.DropOld); err != nil {
		return nil, caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: fmt.Errorf("rotate key: %w", err)}
	}
	keys := tokens.snap.Load().keyIDs
	a.app.logger.Info("root key rotated", zap.Strings("keys", keys), zap.Bool("dropped_old", req.DropOld))
	return map[string]any{"keys": keys}, nil
}

// decodeAdminRequest reads a small JSON body; an empty body is {}.
func decodeAdminRequest(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("invalid JSON request: %w", err)}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner = (*adminAPI)(nil)
	_ caddy.AdminRouter = (*adminAPI)(nil)
)
