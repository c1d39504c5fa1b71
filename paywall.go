package lightning

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lightningcaddy/caddy-lightning/l402"
	"github.com/lightningcaddy/caddy-lightning/lnd"
)

func init() {
	caddy.RegisterModule(Paywall{})
}

// now is the paywall's clock; tests replace it.
var now = time.Now

// waitHeader marks the payment page's long poll for a settlement.
const waitHeader = "X-L402-Wait"

// waitTimeout bounds one long poll; the page polls again.
const waitTimeout = 25 * time.Second

// Paywall sells access to the rest of the route with Lightning payments,
// speaking L402: a request without credentials gets 402 with an invoice and
// a token; once the invoice is paid, the token and the payment's preimage
// (Authorization: L402 <token>:<preimage>) open the route until the token
// expires. Preimages are checked in memory, with no call to the node.
// Browsers get a payment page that waits for the payment and then sets a
// cookie holding the credential.
type Paywall struct {
	// Price is what access costs, in satoshis. Required.
	Price int64 `json:"price,omitempty"`
	// ValidFor is how long a token opens the route, counted from when its
	// invoice is issued. Default: 1h.
	ValidFor caddy.Duration `json:"valid_for,omitempty"`
	// Memo is the invoice's description; placeholders are replaced per
	// request. Default: "Access to {http.request.host}".
	Memo string `json:"memo,omitempty"`
	// InvoiceExpiry is how long an invoice can be paid. Default: 10m.
	InvoiceExpiry caddy.Duration `json:"invoice_expiry,omitempty"`
	// Service names what is sold (letters, digits, '-' and '_'). A token
	// bought for one service, or at another price, never opens another
	// paywall; the browser cookie is named l402_<service>_<price>, so
	// cookies for several paywalls live side by side. Default: "default".
	Service string `json:"service,omitempty"`
	// RootKey is the 32-byte secret, in hex, that signs tokens;
	// placeholders such as {env.X} and {file.X} work. Default: the
	// lightning app's keys, made once and kept in Caddy's storage, so
	// tokens survive restarts, are honoured by every instance that shares
	// the storage, and can be rotated through the admin API.
	RootKey string `json:"root_key,omitempty"`
	// KeepCredentials passes the L402 Authorization header and the
	// paywall's cookie on to the rest of the route. Default: false, they
	// are removed.
	KeepCredentials bool `json:"keep_credentials,omitempty"`
	// InvoicesPerClient bounds how fast one client IP can get new
	// invoices. Default: 60 per minute. Events 0 turns it off.
	InvoicesPerClient *Rate `json:"invoices_per_client,omitempty"`
	// InvoicesTotal bounds how fast invoices are issued to all clients
	// together. Default: 100 per second. Events 0 turns it off.
	InvoicesTotal *Rate `json:"invoices_total,omitempty"`

	app        *App
	node       *lnd.Client
	settled    *settlements
	metrics    paywallMetrics
	tokens     *tokenStore
	fixedKeys  *l402.Keyring // from RootKey, else nil
	verified   *verifiedCredentials
	checker    l402.Checker
	cookieName string
	limits     *invoiceLimits
	lookups    *singleflight.Group
	logger     *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Paywall) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.paywall",
		New: func() caddy.Module { return new(Paywall) },
	}
}

var serviceName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Provision checks the configuration, loads the root key and connects to
// the lightning app. It does not contact the node.
func (p *Paywall) Provision(ctx caddy.Context) error {
	p.logger = ctx.Logger()
	if p.Price <= 0 || p.Price > maxSats {
		return fmt.Errorf("paywall: price must be between 1 and %d satoshis", int64(maxSats))
	}
	if p.Service == "" {
		p.Service = "default"
	}
	if !serviceName.MatchString(p.Service) {
		return fmt.Errorf("paywall: service %q: use 1-64 letters, digits, '-' or '_'", p.Service)
	}
	if p.ValidFor == 0 {
		p.ValidFor = caddy.Duration(time.Hour)
	}
	if p.InvoiceExpiry == 0 {
		p.InvoiceExpiry = caddy.Duration(10 * time.Minute)
	}
	if p.ValidFor < 0 || p.InvoiceExpiry < 0 {
		return errors.New("paywall: valid_for and invoice_expiry must be positive")
	}
	if p.Memo == "" {
		p.Memo = "Access to {http.request.host}"
	}
	limits, err := newInvoiceLimits(p.InvoicesPerClient, p.InvoicesTotal)
	if err != nil {
		return fmt.Errorf("paywall: %w", err)
	}
	p.limits = limits

	app, err := lightningApp(ctx)
	if err != nil {
		return fmt.Errorf("paywall: %w", err)
	}
	p.app = app
	p.node = app.Client()
	p.settled = app.settlements()
	p.metrics = newPaywallMetrics(p.Service)

	if p.tokens, err = app.tokens(); err != nil {
		return fmt.Errorf("paywall: %w", err)
	}
	if p.RootKey != "" {
		resolved, err := resolveSecret("paywall: root_key", p.RootKey)
		if err != nil {
			return err
		}
		key, err := hex.DecodeString(strings.TrimSpace(resolved))
		if err != nil || len(key) != 32 {
			return errors.New("paywall: root_key must be 32 bytes in hex (64 characters)")
		}
		if p.fixedKeys, err = l402.NewKeyring(key); err != nil {
			return fmt.Errorf("paywall: %w", err)
		}
	}
	p.checker = l402.Checker{
		Service: p.Service,
		Price:   p.Price,
		Now:     func() time.Time { return now() },
		Revoked: p.tokens.isRevoked,
	}
	app.addPaywall(p)
	p.cookieName = fmt.Sprintf("l402_%s_%d", p.Service, p.Price)
	p.lookups = new(singleflight.Group)
	p.verified = newVerifiedCredentials()
	return nil
}

// ServeHTTP admits requests with valid, paid credentials and answers the
// others with a challenge.
func (p *Paywall) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	values := r.Header.Values("Authorization")
	if c, err := r.Cookie(p.cookieName); err == nil {
		values = append(values[:len(values):len(values)], "L402 "+c.Value)
	}
	waiting := r.Header.Get(waitHeader) != ""
	keys := p.keyring()
	// A single credential that opened the route before needs no new
	// checks beyond expiry, revocation and the keys.
	if len(values) == 1 && !waiting {
		if c, ok := p.verified.lookup(values[0], keys, p.tokens.isRevoked, now()); ok {
			if c.settled {
				p.metrics.settled.Inc()
			} else {
				p.metrics.preimage.Inc()
			}
			return p.admit(w, r, next, c.id)
		}
	}
	cred, id, err := keys.Authenticate(values, p.checker)
	switch {
	case err == nil:
		p.metrics.preimage.Inc()
		if len(values) == 1 {
			p.verified.add(values[0], cred.Token, p.Service, keys, id, false)
		}
		if waiting {
			return p.answerWait(w, r, cred.Token, cred.Preimage, true)
		}
		return p.admit(w, r, next, id)
	case errors.Is(err, l402.ErrPreimageRequired):
		if ok, err := p.proven(r, w, cred.Token, id, waiting); !ok {
			return err
		}
		if len(values) == 1 {
			p.verified.add(values[0], cred.Token, p.Service, keys, id, true)
		}
		return p.admit(w, r, next, id)
	case errors.Is(err, l402.ErrNoCredentials):
		p.metrics.none.Inc()
		return p.challenge(w, r, http.StatusPaymentRequired, "payment required")
	default:
		p.metrics.invalid.Inc()
		return p.challenge(w, r, http.StatusUnauthorized, "invalid credentials: "+err.Error())
	}
}

// keyring returns the keys that sign and verify this paywall's tokens.
func (p *Paywall) keyring() *l402.Keyring {
	if p.fixedKeys != nil {
		return p.fixedKeys
	}
	return p.tokens.keyring()
}

// proven handles a valid token that came without its preimage: it reports
// whether the node settled the token's invoice, so the request may pass.
// Otherwise it has answered the request itself (a challenge, the page's
// long poll, or a node error) and returns that answer's error.
func (p *Paywall) proven(r *http.Request, w http.ResponseWriter, token string, id l402.Identifier, waiting bool) (bool, error) {
	preimage, settled, err := p.settlement(r, id.PaymentHash)
	if err != nil {
		return false, p.unavailable(w, err)
	}
	if waiting {
		if !settled {
			ctx, cancel := context.WithTimeout(r.Context(), waitTimeout)
			preimage, settled = p.settled.wait(ctx, id.PaymentHash)
			cancel()
		}
		return false, p.answerWait(w, r, token, preimage, settled)
	}
	if !settled {
		p.metrics.unpaid.Inc()
		return false, p.challenge(w, r, http.StatusUnauthorized, "invoice not paid yet: pay it, then retry with the preimage")
	}
	p.metrics.settled.Inc()
	return true, nil
}

// settlement reports whether the invoice with hash is settled, from memory
// or else from one lookup on the node (shared by concurrent requests). A
// settlement is remembered: it is final.
func (p *Paywall) settlement(r *http.Request, hash [32]byte) ([32]byte, bool, error) {
	if preimage, ok := p.settled.preimage(hash); ok {
		return preimage, true, nil
	}
	v, err, _ := p.lookups.Do(string(hash[:]), func() (any, error) {
		return p.node.LookupInvoice(r.Context(), hash)
	})
	if err != nil {
		if status.Code(err) == codes.NotFound {
			return [32]byte{}, false, nil
		}
		return [32]byte{}, false, err
	}
	st := v.(lnd.InvoiceStatus)
	if st.State != lnd.InvoiceSettled {
		return [32]byte{}, false, nil
	}
	p.app.recordSettlement(hash, st.Preimage, st.AmountPaidSat)
	return st.Preimage, true, nil
}

// answerWait answers the payment page's long poll: once paid, it sets the
// cookie that carries the credential.
func (p *Paywall) answerWait(w http.ResponseWriter, r *http.Request, token string, preimage [32]byte, paid bool) error {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	if !paid {
		_, err := w.Write([]byte(`{"paid":false}`))
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name:     p.cookieName,
		Value:    token + ":" + hex.EncodeToString(preimage[:]),
		Path:     "/",
		MaxAge:   int(time.Duration(p.ValidFor) / time.Second),
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	})
	_, err := w.Write([]byte(`{"paid":true}`))
	return err
}

// admit passes a paid request on, with facts about the payment in
// placeholders and, unless kept, without its L402 credentials.
func (p *Paywall) admit(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, id l402.Identifier) error {
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Map(placeholders{p, id}.value)
	}
	if !p.KeepCredentials {
		stripCredentials(r, p.cookieName)
	}
	return next.ServeHTTP(w, r)
}

// placeholders computes the paywall's placeholders for an admitted request
// when the rest of the route asks for them, not before.
type placeholders struct {
	p  *Paywall
	id l402.Identifier
}

func (ph placeholders) value(key string) (any, bool) {
	name, ok := strings.CutPrefix(key, "http.paywall.")
	if !ok {
		return nil, false
	}
	switch name {
	case "payment_hash":
		return hex.EncodeToString(ph.id.PaymentHash[:]), true
	case "token_id":
		return hex.EncodeToString(ph.id.TokenID[:]), true
	case "price":
		return ph.p.Price, true
	case "service":
		return ph.p.Service, true
	}
	return nil, false
}

// stripCredentials removes the L402 and LSAT credentials from the
// Authorization header and the paywall's cookie from the Cookie header,
// and leaves everything else exactly as it came.
func stripCredentials(r *http.Request, cookieName string) {
	stripHeader(r.Header, "Authorization", withoutL402)
	stripHeader(r.Header, "Cookie", func(v string) string { return withoutCookie(v, cookieName) })
}

// stripHeader rewrites the values of a header with strip, dropping values
// left empty; a header strip does not change is left alone.
func stripHeader(h http.Header, name string, strip func(string) string) {
	values := h.Values(name)
	var kept []string // allocated at the first change
	for i, v := range values {
		s := strip(v)
		if s != v && kept == nil {
			kept = append(make([]string, 0, len(values)), values[:i]...)
		}
		if kept != nil && s != "" {
			kept = append(kept, s)
		}
	}
	if kept == nil {
		return
	}
	h.Del(name)
	for _, v := range kept {
		h.Add(name, v)
	}
}

// withoutL402 removes L402 and LSAT credentials from an Authorization
// value that may join several credentials with commas. An item that starts
// with "<scheme> " begins a credential; other items (auth-params, or more
// L402 tokens) belong to the credential before them.
func withoutL402(value string) string {
	if !strings.Contains(value, ",") { // one credential: the usual case
		if scheme, _, _ := strings.Cut(strings.TrimSpace(value), " "); strings.EqualFold(scheme, "L402") || strings.EqualFold(scheme, "LSAT") {
			return ""
		}
		return value
	}
	items := strings.Split(value, ",")
	kept := items[:0]
	dropping := false
	for _, item := range items {
		if scheme, _, ok := strings.Cut(strings.TrimSpace(item), " "); ok && scheme != "" && !strings.ContainsAny(scheme, "=:\"") {
			dropping = strings.EqualFold(scheme, "L402") || strings.EqualFold(scheme, "LSAT")
		}
		if !dropping {
			kept = append(kept, item)
		}
	}
	if len(kept) == len(items) {
		return value
	}
	return strings.TrimSpace(strings.Join(kept, ","))
}

// withoutCookie removes the cookie called name from a Cookie header value.
func withoutCookie(value, name string) string {
	if !strings.Contains(value, name) {
		return value
	}
	pairs := strings.Split(value, ";")
	kept := pairs[:0]
	for _, pair := range pairs {
		if n, _, _ := strings.Cut(strings.TrimSpace(pair), "="); n != name {
			kept = append(kept, strings.TrimSpace(pair))
		}
	}
	return strings.Join(kept, "; ")
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Paywall)(nil)
	_ caddyhttp.MiddlewareHandler = (*Paywall)(nil)
)
