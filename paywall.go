package lightning

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/lightningcaddy/caddy-lightning/l402"
	"github.com/lightningcaddy/caddy-lightning/lnd"
	mpp "github.com/lightningcaddy/caddy-lightning/payment"
	"github.com/lightningcaddy/caddy-lightning/x402"
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

// prepaidValidFor is how long a prepaid balance can be spent after each
// top-up, by default.
const prepaidValidFor = 30 * 24 * time.Hour

// maxLifetime bounds valid_for plus invoice_expiry: browsers keep a cookie
// at most 400 days, so a longer token would outlive the buyer's access.
const maxLifetime = 400 * 24 * time.Hour

// Paywall sells access to the rest of the route with Lightning payments,
// speaking L402: a request without credentials gets 402 with an invoice and
// a token; once the invoice is paid, the token and the payment's preimage
// (Authorization: L402 <token>:<preimage>) are the credential. Preimages
// are checked in memory, with no call to the node. Browsers get a payment
// page that waits for the payment and then sets a cookie holding the
// credential, for that browser only.
//
// What a credential buys depends on the mode: a pass opens the route until
// the token expires (no state: nothing is counted); per_request admits
// exactly one request per payment; prepaid buys a balance that each
// admitted request draws its price from. The last two count in the
// lightning app's ledger.
//
// A payment made while its invoice can be paid buys at least valid_for:
// a token lasts invoice_expiry plus valid_for from when it is issued.
type Paywall struct {
	// Mode is how a payment is sold: "pass" (the credential opens the
	// route until it expires), "per_request" (one payment admits exactly
	// one request, however many times or at once it is presented) or
	// "prepaid" (one payment buys a balance of `balance` sats; each
	// admitted request draws its price from it, until it cannot cover the
	// next, which gets a 402 selling a top-up of the same balance).
	// Default: pass.
	Mode string `json:"mode,omitempty"`
	// Offers lists the dialects a 402 offers, in the order of its
	// WWW-Authenticate lines: "l402" (L402), "charge" (the Payment scheme's
	// Lightning charge) and "x402" (x402 v2 with Lightning, in
	// PAYMENT-REQUIRED; its place in the list does not matter). One
	// invoice serves them all, and one payment of it is redeemed under one
	// dialect only. charge and x402 are one-time payments: they go with
	// mode per_request, and an invoice_expiry of at most 24h. Clients pick
	// by the first WWW-Authenticate line (see README): l402 first suits
	// L402 clients and lnget, charge first suits Alby's fetchWithMpp.
	// Whatever the list, L402 credentials are accepted (the payment page
	// uses them). Default: l402, charge, x402 for per_request; l402 for
	// pass and prepaid.
	Offers []string `json:"offers,omitempty"`
	// Price is what a request costs, in satoshis: a number, or text with
	// placeholders (such as {http.vars.price} from `vars` or `map`)
	// evaluated for every request, which must give a whole number from 1
	// to max_price; any other value refuses the request (500), never
	// serves it free. A pass or per_request credential admits requests
	// priced at most what it paid; a prepaid request draws its own price.
	// Required.
	Price caddyhttp.WeakString `json:"price,omitempty"`
	// MaxPrice bounds a price from placeholders, in satoshis. Required
	// with one, refused with a fixed price.
	MaxPrice int64 `json:"max_price,omitempty"`
	// Balance (prepaid) is what one payment buys, in satoshis: the amount
	// of every 402's invoice (more when the price, or a debt left by a
	// reported cost, needs more). Default: 100 times the price (max_price
	// for a price from placeholders).
	Balance int64 `json:"balance,omitempty"`
	// CostHeader (prepaid) names the response header, or trailer for a
	// streamed answer, in which the upstream reports what the request
	// really cost, in sats. The price is held at admission and the
	// reported cost charged when the answer ends (see README for what a
	// missing, malformed or failed report costs); the header and trailer
	// never reach the client. Default: none, the price is drawn at
	// admission.
	CostHeader string `json:"cost_header,omitempty"`
	// MaxCost (with cost_header) caps a reported cost, in satoshis; a
	// malformed report is charged max_cost. Default: balance.
	MaxCost int64 `json:"max_cost,omitempty"`
	// ChargeFailures (with cost_header) charges upstream answers of 500
	// and more, and aborted requests, as others are. Default: false, they
	// are free.
	ChargeFailures bool `json:"charge_failures,omitempty"`
	// ValidFor is the least access a payment buys: a token opens the route
	// for invoice_expiry plus valid_for from when it is issued, so a
	// payment made at the last moment still buys valid_for (for prepaid:
	// the balance can be spent for that long after each top-up). valid_for
	// plus invoice_expiry may not exceed 400 days. Default: 1h (pass,
	// per_request), 720h (prepaid).
	ValidFor caddy.Duration `json:"valid_for,omitempty"`
	// Memo is the invoice's description; placeholders are replaced per
	// request. Default: "Access to {http.request.host}".
	Memo string `json:"memo,omitempty"`
	// InvoiceExpiry is how long an invoice can be paid, at least 1s.
	// Default: 10m.
	InvoiceExpiry caddy.Duration `json:"invoice_expiry,omitempty"`
	// Service names what is sold (letters, digits, '-' and '_'). A token
	// bought for one service, or at another price, never opens another
	// paywall; paywalls that name the same service and price honour each
	// other's tokens, each for no longer than its own invoice_expiry plus
	// valid_for from the token's issue. Default: a name of this paywall's
	// own, "paywall-" and a hash of where it sits in the config (its
	// server's listen addresses and the matchers of the routes down to it),
	// the same across reloads and on every instance with the same config.
	Service string `json:"service,omitempty"`
	// RootKey is the 32-byte secret, in hex, that signs tokens;
	// placeholders such as {env.X} and {file.X} work. Default: the
	// lightning app's keys, made once and kept in Caddy's storage, so
	// tokens survive restarts, are honoured by every instance that shares
	// the storage, and can be rotated through the admin API.
	RootKey string `json:"root_key,omitempty"`
	// KeepCredentials passes the L402 and Payment credentials and the
	// paywalls' cookies on to the rest of the route. Default: false, they
	// are removed.
	KeepCredentials bool `json:"keep_credentials,omitempty"`
	// InvoicesPerClient bounds how fast one client (an IPv4 address, or an
	// IPv6 prefix of the app's client_ipv6_prefix bits) can get new
	// invoices. Default: 60 per minute. Events 0 turns it off.
	InvoicesPerClient *Rate `json:"invoices_per_client,omitempty"`
	// InvoicesTotal bounds how fast invoices are issued to all clients
	// together. Default: 100 per second. Events 0 turns it off.
	InvoicesTotal *Rate `json:"invoices_total,omitempty"`
	// LookupsPerClient bounds how often one client's tokens, presented
	// without their preimage, make the paywall ask the node whether their
	// invoice is paid (beyond it: 429). Default: 60 per minute. Events 0
	// turns it off.
	LookupsPerClient *Rate `json:"lookups_per_client,omitempty"`
	// Session sells Lightning sessions beside the other offers (see
	// SessionConfig). Default: none; sessions are off.
	Session *SessionConfig `json:"session,omitempty"`

	app        *App
	node       *lnd.Client
	settled    *settlements
	tokens     *tokenStore
	fixedKeys  *l402.Keyring // from RootKey, else nil
	rootKeyErr error
	verified   *verifiedCredentials
	limits     *invoiceLimits
	lookups    *lookupGuard
	ipv6Prefix int
	httpApp    *caddyhttp.App // where the default service is found
	logger     *zap.Logger

	// Parsed by Provision.
	mode          string
	price         int64  // a fixed price; 0 with a template
	priceTemplate string // a price from placeholders
	priceErr      error
	balance       int64 // sats one prepaid payment buys
	maxCost       int64
	costKey       string        // CostHeader, canonical
	led           *sharedLedger // per_request and prepaid
	offerList     []string      // Offers, or the mode's default

	// Set once, by resolve: the service and what depends on it.
	ready      *sync.Once
	service    string
	modeKey    string // <service>_mode
	checker    l402.Checker
	metrics    paywallMetrics
	cookieName string // the access cookie, without the __Host- prefix
}

// CaddyModule returns the Caddy module information.
func (Paywall) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.paywall",
		New: func() caddy.Module { return new(Paywall) },
	}
}

var serviceName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Provision sets the defaults and connects the paywall to the lightning
// app. It does no network or storage I/O.
func (p *Paywall) Provision(ctx caddy.Context) error {
	p.logger = ctx.Logger()
	p.ready = new(sync.Once)
	p.mode = cmp.Or(p.Mode, modePass)
	p.price, p.priceTemplate, p.priceErr = parsePrice(string(p.Price))
	p.offerList = p.Offers
	if p.offerList == nil {
		p.offerList = defaultOffers(p.mode)
	}
	if p.ValidFor == 0 {
		p.ValidFor = caddy.Duration(time.Hour)
		if p.mode == modePrepaid {
			p.ValidFor = caddy.Duration(prepaidValidFor)
		}
	}
	p.balance = p.Balance
	if p.balance == 0 {
		p.balance = min(100*max(p.price, p.MaxPrice), maxSats)
	}
	p.maxCost = cmp.Or(p.MaxCost, p.balance)
	p.costKey = http.CanonicalHeaderKey(p.CostHeader)
	if p.InvoiceExpiry == 0 {
		p.InvoiceExpiry = caddy.Duration(10 * time.Minute)
	}
	if p.Memo == "" {
		p.Memo = "Access to {http.request.host}"
	}
	app, err := lightningApp(ctx)
	if err != nil {
		return fmt.Errorf("paywall: %w", err)
	}
	p.app = app
	if p.mode == modePerRequest || p.mode == modePrepaid {
		if p.led, err = app.sharedLedger(); err != nil {
			return fmt.Errorf("paywall: %w", err)
		}
	}
	if err := p.provisionSession(app); err != nil {
		return fmt.Errorf("paywall: %w", err)
	}
	p.node = app.Client()
	p.settled = app.settlements()
	p.tokens = app.tokens
	p.ipv6Prefix = app.ClientIPv6Prefix
	p.limits = newInvoiceLimits(p.InvoicesPerClient, p.InvoicesTotal)
	p.lookups = newLookupGuard(p.LookupsPerClient)
	p.verified = newVerifiedCredentials()
	if p.RootKey != "" {
		var resolved string
		if resolved, p.rootKeyErr = resolveSecret("root_key", p.RootKey); p.rootKeyErr == nil {
			p.fixedKeys, p.rootKeyErr = parseRootKey(resolved)
		}
	}
	for _, m := range ctx.Modules() {
		if h, ok := m.(*caddyhttp.App); ok {
			p.httpApp = h
		}
	}
	app.addPaywall(p)
	return nil
}

// parseRootKey reads a 32-byte root key in hex.
func parseRootKey(s string) (*l402.Keyring, error) {
	key, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(key) != 32 {
		return nil, errors.New("root_key must be 32 bytes in hex (64 characters)")
	}
	return l402.NewKeyring(key)
}

// Validate checks the configuration.
func (p *Paywall) Validate() error {
	if err := p.validateSelling(); err != nil {
		return fmt.Errorf("paywall: %w", err)
	}
	if err := p.validateOffers(); err != nil {
		return fmt.Errorf("paywall: %w", err)
	}
	if err := p.validateSession(); err != nil {
		return fmt.Errorf("paywall: %w", err)
	}
	switch {
	case p.Service != "" && !serviceName.MatchString(p.Service):
		return fmt.Errorf("paywall: service %q: use 1-64 letters, digits, '-' or '_'", p.Service)
	case p.ValidFor <= 0 || p.InvoiceExpiry <= 0:
		return errors.New("paywall: valid_for and invoice_expiry must be positive")
	case time.Duration(p.InvoiceExpiry) < time.Second:
		// Invoices count whole seconds, and 0 means the node's default
		// (hours): the invoice would outlive its token.
		return errors.New("paywall: invoice_expiry must be at least 1s")
	case time.Duration(p.ValidFor) > maxLifetime || time.Duration(p.InvoiceExpiry) > maxLifetime || p.lifetime() > maxLifetime:
		return fmt.Errorf("paywall: valid_for plus invoice_expiry is %v; browsers keep the access cookie at most 400 days, "+
			"so buyers would lose access early", p.lifetime())
	case p.rootKeyErr != nil:
		return fmt.Errorf("paywall: %w", p.rootKeyErr)
	}
	for name, r := range map[string]*Rate{"invoices_per_client": p.InvoicesPerClient, "invoices_total": p.InvoicesTotal, "lookups_per_client": p.LookupsPerClient} {
		if err := r.validate(); err != nil {
			return fmt.Errorf("paywall: %s: %w", name, err)
		}
	}
	return nil
}

// lifetime is how long a token lasts from its issue: the invoice's life,
// so that the last moment to pay still buys valid_for, plus valid_for.
func (p *Paywall) lifetime() time.Duration {
	return time.Duration(p.InvoiceExpiry) + time.Duration(p.ValidFor)
}

// resolve settles the service (finding the default once the whole config
// is provisioned) and what depends on it. The app's Start calls it, and
// so does the first request if it comes before (Caddy starts its apps in
// no fixed order).
func (p *Paywall) resolve() {
	p.ready.Do(func() {
		p.service = p.Service
		if p.service == "" {
			p.service = p.defaultService()
		}
		p.modeKey = p.service + suffixMode
		p.checker = l402.Checker{
			Service: p.service,
			// A token minted here expires by its valid_until; a token of
			// the same service from a paywall that sells longer access
			// lasts here no longer than a token of this one would (+1 s:
			// issued_at is rounded down).
			MaxAge:  p.lifetime() + time.Second,
			Now:     func() time.Time { return now() },
			Revoked: p.tokens.isRevoked,
		}
		priceLabel := "var"
		if p.priceTemplate == "" {
			priceLabel = strconv.FormatInt(p.price, 10)
			if p.mode != modePrepaid {
				// A fixed price binds tokens: one bought at another price
				// never opens this paywall.
				p.checker.Price = p.price
			}
		}
		if p.mode == modePass {
			p.checker.Extra = p.refuseModeCaveats
		}
		p.metrics = newPaywallMetrics(p.service, p.mode)
		p.cookieName = cookiePrefix + p.service + "_" + priceLabel
	})
}

// ServeHTTP admits requests with valid, paid credentials, as the mode
// sells them, and answers the others with a challenge. A request is read
// in one dialect: x402 if it carries PAYMENT-SIGNATURE, else the Payment
// scheme if its Authorization holds a Payment credential, else L402
// (header or cookie); each only where it is offered (L402 always). CORS
// preflights pass through unchallenged (the site's own CORS configuration
// answers them).
func (p *Paywall) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	p.resolve()
	if isPreflight(r) {
		if !p.KeepCredentials {
			stripCredentials(r)
		}
		return next.ServeHTTP(w, r)
	}
	keys, err := p.keyring()
	if err != nil {
		return p.failed(w, r, "cannot load the paywalls' shared token state", err)
	}
	price, err := p.requestPrice(r)
	if err != nil {
		return p.priceFailed(w, r, err)
	}
	if sig := r.Header.Values(x402.HeaderPaymentSignature); len(sig) > 0 && p.offers(offerX402) {
		return p.serveX402(w, r, next, sig, price)
	}
	if served, err := p.serveSession(w, r, next, price); served {
		return err
	}
	values := r.Header.Values("Authorization")
	if p.offers(offerCharge) { // the Payment scheme's offers
		switch cred, err := mpp.ParseAuthorization(values); {
		case err == nil:
			return p.servePayment(w, r, next, cred, price)
		case !errors.Is(err, mpp.ErrNoCredential):
			return p.paymentRefused(w, r, price, offerCharge, mpp.ProblemFor(err, ""))
		}
	}
	if c, ok := cookieValue(r.Header, p.cookieName); ok {
		values = append(values[:len(values):len(values)], "L402 "+c)
	}
	waiting := r.Header.Get(waitHeader) != ""
	// A single credential that opened the route before needs no new
	// checks beyond expiry, revocation and the keys.
	if len(values) == 1 && !waiting {
		if c, ok := p.verified.lookup(values[0], keys, p.tokens.isRevoked, now()); ok {
			if c.settled {
				p.metrics.settled.Inc()
			} else {
				p.metrics.preimage.Inc()
			}
			return p.sell(w, r, next, c.proof, price)
		}
	}
	cred, id, err := keys.Authenticate(values, p.checker)
	switch {
	case waiting && (err == nil || errors.Is(err, l402.ErrPreimageRequired)):
		return p.wait(w, r, keys, cred, id)
	case err == nil:
		p.metrics.preimage.Inc()
		pr, err := p.verifiedProof(values, cred.Token, keys, id, false)
		if err != nil {
			return p.invalid(w, r, price, err)
		}
		return p.sell(w, r, next, pr, price)
	case errors.Is(err, l402.ErrPreimageRequired):
		_, paid, err := p.settlement(r.Context(), id.PaymentHash, clientKey(r.Context(), p.ipv6Prefix), false)
		switch {
		case errors.Is(err, errTooManyLookups):
			p.metrics.challenge(http.StatusTooManyRequests)
			return p.tooManyRequests(w, r, time.Second, "too many payment checks: retry later, or send the preimage")
		case err != nil:
			return p.nodeFailed(w, r, err)
		case !paid:
			p.metrics.unpaid.Inc()
			return p.challenge(w, r, http.StatusUnauthorized, p.offer(price), "invoice not paid yet: pay it, then retry with the preimage")
		}
		p.metrics.settled.Inc()
		pr, err := p.verifiedProof(values, cred.Token, keys, id, true)
		if err != nil {
			return p.invalid(w, r, price, err)
		}
		return p.sell(w, r, next, pr, price)
	case errors.Is(err, l402.ErrNoCredentials):
		p.metrics.none.Inc()
		return p.challenge(w, r, http.StatusPaymentRequired, p.offer(price), "payment required")
	default:
		return p.invalid(w, r, price, err)
	}
}

// verifiedProof reads what a credential that verified proves and, if it
// came alone, remembers it as verified.
func (p *Paywall) verifiedProof(values []string, token string, keys *l402.Keyring, id l402.Identifier, settled bool) (proof, error) {
	facts, err := p.readFacts(token)
	if err != nil {
		return proof{}, err
	}
	pr := proof{paymentHash: id.PaymentHash, tokenID: id.TokenID, credentialFacts: facts}
	if len(values) == 1 {
		p.verified.add(values[0], verifiedCredential{keys: keys, id: id, proof: pr, settled: settled})
	}
	return pr, nil
}

// invalid answers bad credentials: 401 with a fresh challenge.
func (p *Paywall) invalid(w http.ResponseWriter, r *http.Request, price int64, err error) error {
	p.metrics.refused(offerL402)
	return p.challenge(w, r, http.StatusUnauthorized, p.offer(price), "invalid credentials: "+err.Error())
}

// keyring returns the keys that sign and verify this paywall's tokens. It
// loads the shared token state if the app has not yet (revocations apply
// to tokens of a root_key too).
func (p *Paywall) keyring() (*l402.Keyring, error) {
	snap, err := p.tokens.current(p.app.ctx.Context)
	switch {
	case err != nil:
		return nil, err
	case p.fixedKeys != nil:
		return p.fixedKeys, nil
	}
	return snap.keys, nil
}

// settlement reports whether the invoice with hash is settled: from the
// settlements the app remembers, else from a lookup on the node as the
// lookup guard allows (lenient: a lookup over the client's limit is
// skipped rather than refused). A settlement found is recorded: it is
// final.
func (p *Paywall) settlement(ctx context.Context, hash [32]byte, client netip.Prefix, lenient bool) ([32]byte, bool, error) {
	if preimage, ok := p.settled.preimage(hash); ok {
		return preimage, true, nil
	}
	st, err := p.lookups.lookup(ctx, p.node, hash, client, lenient)
	if err != nil || st.State != lnd.InvoiceSettled {
		return [32]byte{}, false, err
	}
	p.app.feed.record(hash, st.Preimage, st.AmountPaidSat)
	return st.Preimage, true, nil
}

// awaitSettlement is settlement, then, if the invoice is not settled yet
// and the lookup guard admits one more wait for client and hash, a wait of
// up to timeout for the node's invoice stream to report it.
func (p *Paywall) awaitSettlement(ctx context.Context, hash [32]byte, client netip.Prefix, lenient bool, timeout time.Duration) ([32]byte, bool, error) {
	preimage, paid, err := p.settlement(ctx, hash, client, lenient)
	if err != nil || paid || !p.lookups.enterWait(client, hash) {
		return preimage, paid, err
	}
	defer p.lookups.leaveWait(client, hash)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	preimage, paid = p.settled.wait(ctx, hash)
	return preimage, paid, nil
}

// isPreflight reports whether r is a CORS preflight: browsers send it
// before a cross-origin request with credentials, and never with them.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" &&
		r.Header.Get("Access-Control-Request-Method") != ""
}

// wait answers the payment page's long poll, from the browser the page was
// sent to only: held until the invoice of the token is settled (answered at
// once when the poll carries the preimage, or when the polls held are at a
// bound), then it sets the cookie that carries the credential.
func (p *Paywall) wait(w http.ResponseWriter, r *http.Request, keys *l402.Keyring, cred l402.Credential, id l402.Identifier) error {
	if !sameBrowser(r, keys, id) {
		p.metrics.challenge(http.StatusForbidden)
		return p.respond(w, r, http.StatusForbidden, "this payment page was sent to another browser: load the page to get your own", nil)
	}
	preimage, paid := cred.Preimage, cred.HasPreimage
	if paid {
		p.metrics.preimage.Inc()
		return p.answerWait(w, r, cred.Token, preimage, true)
	}
	preimage, paid, err := p.awaitSettlement(r.Context(), id.PaymentHash, clientKey(r.Context(), p.ipv6Prefix), true, waitTimeout)
	if err != nil {
		return p.nodeFailed(w, r, err)
	}
	if paid {
		p.metrics.settled.Inc()
	}
	return p.answerWait(w, r, cred.Token, preimage, paid)
}

// answerWait answers the long poll; once paid, it sets the cookie that
// carries the credential, for as long as the token opens this paywall. (The
// page's binding cookie stays until it expires: the page may poll again.)
func (p *Paywall) answerWait(w http.ResponseWriter, r *http.Request, token string, preimage [32]byte, paid bool) error {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	if !paid {
		_, err := w.Write([]byte(`{"paid":false}`))
		return err
	}
	expires, _ := credentialExpiry(token, p.service, p.checker.MaxAge)
	http.SetCookie(w, newCookie(r, p.cookieName, token+":"+hex.EncodeToString(preimage[:]), expires.Sub(now())))
	_, err := w.Write([]byte(`{"paid":true}`))
	return err
}

// admit passes a paid request on, with facts about the payment in
// placeholders and, unless kept, without its credentials. The answer,
// written through resp, is kept out of shared caches; a metered answer is
// charged when it ends, even if it is aborted (the rest of the route then
// panics with http.ErrAbortHandler, which goes on up).
func (p *Paywall) admit(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, pr proof, price int64, resp *paidResponse) (err error) {
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Map(placeholders{p, pr, price, resp}.value)
	}
	if !p.KeepCredentials {
		stripCredentials(r)
	}
	resp.ResponseWriterWrapper = caddyhttp.ResponseWriterWrapper{ResponseWriter: w}
	if resp.meter == nil {
		return next.ServeHTTP(resp, r)
	}
	completed := false
	defer func() { resp.meter.finish(r, resp.Header(), completed, err) }()
	err = next.ServeHTTP(resp, r)
	completed = true
	return err
}

// placeholders computes the paywall's placeholders for an admitted request
// when the rest of the route asks for them, not before.
type placeholders struct {
	p     *Paywall
	pr    proof
	price int64
	resp  *paidResponse
}

func (ph placeholders) value(key string) (any, bool) {
	name, ok := strings.CutPrefix(key, "http.paywall.")
	if !ok {
		return nil, false
	}
	switch name {
	case "payment_hash":
		return hex.EncodeToString(ph.pr.paymentHash[:]), true
	case "token_id":
		return hex.EncodeToString(ph.pr.tokenID[:]), true
	case "price":
		return ph.price, true
	case "service":
		return ph.p.service, true
	case "mode":
		return ph.p.mode, true
	case "balance":
		if ph.resp.hasBalance {
			return ph.resp.balance, true
		}
	case "account":
		if ph.pr.account != "" {
			return ph.pr.account, true
		}
	}
	return nil, false
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Paywall)(nil)
	_ caddy.Validator             = (*Paywall)(nil)
	_ caddyhttp.MiddlewareHandler = (*Paywall)(nil)
)
