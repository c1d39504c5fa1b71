package lightning

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"golang.org/x/net/http/httpguts"

	"github.com/lightningcaddy/caddy-lightning/l402"
	"github.com/lightningcaddy/caddy-lightning/ledger"
)

// Ways a paywall sells access (Paywall.Mode).
const (
	// modePass: a payment opens the route until its credential expires.
	modePass = "pass"
	// modePerRequest: a payment admits exactly one request.
	modePerRequest = "per_request"
	// modePrepaid: a payment buys a balance that admitted requests draw
	// their price from.
	modePrepaid = "prepaid"
)

// Caveats that bind a token to the way it was sold, beside the l402
// package's: <service>_mode=<mode> on every per_request and prepaid token
// (a pass paywall refuses any), and <service>_account=<hex> on every
// prepaid token, naming the balance it tops up.
const (
	suffixMode    = "_mode"
	suffixAccount = "_account"
)

// accountPrefix namespaces prepaid balances in the ledger: the account of
// a balance is accountPrefix and the hex payment hash that opened it.
const accountPrefix = "prepaid-"

// balanceHeader tells a prepaid client what its balance holds after the
// request, in sats.
const balanceHeader = "Paywall-Balance"

// proof is what a verified credential proves, whatever the dialect that
// carried it: a paid payment hash, what it paid, until when it may be
// redeemed and, for prepaid, the balance it tops up. The selling modes
// work on it alone.
type proof struct {
	paymentHash [32]byte
	tokenID     [32]byte // L402's token id, for the placeholders
	credentialFacts
}

// credentialFacts is what a verified token says beyond its signature.
type credentialFacts struct {
	// expires is when the token stops opening the paywall.
	expires time.Time
	// amount is what was paid, in sats: the token's smallest
	// <service>_price caveat (a holder may append caveats, never remove
	// them, so the smallest is the one the paywall wrote).
	amount int64
	// account is the ledger account of a prepaid token.
	account string
}

// readFacts reads the facts of a token that verified for this paywall,
// and checks that it was sold the way this paywall sells: per_request
// and prepaid tokens carry this mode's caveat (all of them equal to it),
// and a prepaid token exactly one account caveat (a second, appended by a
// holder, could point at someone else's balance).
func (p *Paywall) readFacts(token string) (credentialFacts, error) {
	var f credentialFacts
	t, err := l402.DecodeToken(token)
	if err != nil {
		return f, err
	}
	var ok bool
	if f.expires, ok = tokenExpiry(t, p.service, p.checker.MaxAge); !ok {
		return f, errors.New("malformed expiry caveat")
	}
	priceKey, modeKey, accountKey := p.service+l402.SuffixPrice, p.service+suffixMode, p.service+suffixAccount
	modes, accounts := 0, 0
	for _, raw := range t.Caveats {
		c, _ := l402.ParseCaveat(raw)
		switch c.Key {
		case priceKey:
			price, err := parseSats(c.Value)
			if err != nil {
				return f, fmt.Errorf("malformed %s caveat", priceKey)
			}
			if f.amount == 0 || price < f.amount {
				f.amount = price
			}
		case modeKey:
			if c.Value != p.mode {
				return f, fmt.Errorf("the credential was sold as %s, this route sells %s", c.Value, p.mode)
			}
			modes++
		case accountKey:
			accounts++
			f.account = c.Value
		}
	}
	switch {
	case f.amount == 0:
		return f, fmt.Errorf("the credential has no %s caveat", priceKey)
	case p.mode != modePass && modes == 0:
		return f, fmt.Errorf("the credential was not sold as %s", p.mode)
	case p.mode != modePrepaid:
		f.account = ""
	case accounts != 1 || len(f.account) != 64 || !isHex(f.account):
		return f, errors.New("the credential must name exactly one balance")
	default:
		f.account = accountPrefix + strings.ToLower(f.account)
	}
	return f, nil
}

// sell admits a request whose credential proved pr, as the paywall's mode
// says, at price.
func (p *Paywall) sell(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, pr proof, price int64) error {
	if p.mode != modePrepaid && pr.amount < price {
		// Only with a placeholder price: a fixed one is checked with the
		// token (its price caveat must equal it).
		p.metrics.underpaid.Inc()
		return p.challenge(w, r, http.StatusPaymentRequired, p.offer(price),
			fmt.Sprintf("this request costs %d sats and the credential paid %d: pay the new invoice", price, pr.amount))
	}
	if p.mode != modePass {
		if err := p.led.ready(r.Context()); err != nil {
			return p.ledgerFailed(w, r, "load", err)
		}
	}
	switch p.mode {
	case modePerRequest:
		first, err := p.claim(r.Context(), pr)
		if err != nil {
			return p.ledgerFailed(w, r, "claim", err)
		}
		if !first {
			p.metrics.used.Inc()
			p.metrics.dialect(offerL402, resultUsed)
			return p.challenge(w, r, http.StatusPaymentRequired, p.offer(price), "this payment was used already: each payment admits one request, pay the new invoice")
		}
	case modePrepaid:
		return p.spend(w, r, next, pr, price)
	}
	p.metrics.admitted.Inc()
	p.metrics.dialect(offerL402, resultAdmitted)
	return p.admit(w, r, next, pr, price, &paidResponse{})
}

// claim consumes the payment of pr for one request, whatever the dialect
// that proved it: first is true for the first claim of its payment hash.
// The claim lasts as long as any credential for the payment opens this
// paywall (pr.expires, at most the token lifetime from now).
func (p *Paywall) claim(ctx context.Context, pr proof) (first bool, err error) {
	until := pr.expires
	if limit := now().Add(p.checker.MaxAge); until.After(limit) {
		until = limit
	}
	return p.led.Claim(ctx, ledger.Hash(pr.paymentHash), until)
}

// spend draws price from the credential's balance (or, when the upstream
// reports the cost, holds it until the answer ends) and admits the
// request; a balance that cannot cover the price gets a 402 that sells a
// top-up of the same balance.
func (p *Paywall) spend(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, pr proof, price int64) error {
	metered := p.CostHeader != ""
	hold, err := p.take(r.Context(), pr, price, metered)
	var short *ledger.InsufficientError
	switch {
	case errors.As(err, &short):
		p.metrics.exhausted.Inc()
		w.Header().Set(balanceHeader, strconv.FormatInt(short.Available, 10))
		o := offer{amount: max(p.balance, price-short.Available), price: price, account: pr.account}
		return p.challenge(w, r, http.StatusPaymentRequired, o,
			fmt.Sprintf("the balance holds %d sats and this request costs %d: pay the invoice to top it up", short.Available, price))
	case errors.Is(err, ledger.ErrPaymentUsed):
		p.metrics.used.Inc()
		p.metrics.dialect(offerL402, resultUsed)
		return p.challenge(w, r, http.StatusUnauthorized, p.offer(price), "this payment was used already")
	case err != nil:
		return p.ledgerFailed(w, r, "draw", err)
	}
	p.metrics.admitted.Inc()
	p.metrics.dialect(offerL402, resultAdmitted)
	resp := &paidResponse{balance: hold.Remaining, hasBalance: true, exposeBalance: r.Header.Get("Origin") != ""}
	if !metered {
		p.metrics.draws.Inc()
		p.metrics.drawnSats.Add(float64(price))
		return p.admit(w, r, next, pr, price, resp)
	}
	resp.meter = &meter{p: p, hold: hold}
	return p.admit(w, r, next, pr, price, resp)
}

// take draws price from the balance of pr (or holds it), crediting the
// payment of pr first when the balance does not exist yet or cannot cover
// the price: credits are once per payment hash, so presenting a credential
// again, or at once on several requests, credits it once.
func (p *Paywall) take(ctx context.Context, pr proof, price int64, hold bool) (ledger.Hold, error) {
	try := func() (ledger.Hold, error) {
		if hold {
			return p.led.Reserve(ctx, pr.account, price)
		}
		remaining, err := p.led.Draw(ctx, pr.account, price)
		return ledger.Hold{Remaining: remaining}, err
	}
	h, err := try()
	notFound := errors.Is(err, ledger.ErrNotFound)
	if !notFound && !errors.Is(err, ledger.ErrInsufficient) {
		return h, err
	}
	credited, cerr := p.led.Credit(ctx, pr.account, ledger.Hash(pr.paymentHash), pr.amount)
	if cerr != nil {
		return h, cerr
	}
	if credited {
		p.metrics.creditedSats.Add(float64(pr.amount))
	} else if !notFound {
		return h, err // credited before: the balance is what it is
	}
	return try()
}

// offer is what a 402 sells: the invoice's amount and, for a prepaid
// top-up, the balance it adds to.
type offer struct {
	amount  int64
	price   int64  // of the request, which a session draws
	account string // hex payment hash naming the balance; "" for a new one
}

// offer returns what a 402 without a usable credential sells at price.
func (p *Paywall) offer(price int64) offer {
	if p.mode == modePrepaid {
		return offer{amount: max(p.balance, price), price: price}
	}
	return offer{amount: price, price: price}
}

// caveats returns the caveats a token for o carries, after the services
// caveat: expiry, issue time, price, and the mode's.
func (p *Paywall) caveats(o offer, paymentHash [32]byte, issued, validUntil time.Time) []l402.Caveat {
	c := []l402.Caveat{
		l402.ServicesCaveat(l402.Service{Name: p.service}),
		l402.ValidUntilCaveat(p.service, validUntil),
		l402.IssuedAtCaveat(p.service, issued),
		l402.PriceCaveat(p.service, o.amount),
	}
	if p.mode == modePass {
		return c
	}
	c = append(c, l402.Caveat{Key: p.service + suffixMode, Value: p.mode})
	if p.mode == modePrepaid {
		account := strings.TrimPrefix(o.account, accountPrefix)
		if account == "" {
			account = hex.EncodeToString(paymentHash[:])
		}
		c = append(c, l402.Caveat{Key: p.service + suffixAccount, Value: account})
	}
	return c
}

// refuseModeCaveats is the pass checker's hook for caveats it does not
// know: a token sold per request or prepaid never opens a pass.
func (p *Paywall) refuseModeCaveats(key, value string) error {
	if key == p.modeKey {
		return fmt.Errorf("sold as %s, not as a pass", value)
	}
	return nil
}

// ledgerFailed answers when the ledger fails: 503 with Retry-After when it
// cannot be reached (passes keep working), 500 otherwise. The log line,
// with a request id the client is given too, says what failed; while the
// ledger stays down it is written at most every few seconds.
func (p *Paywall) ledgerFailed(w http.ResponseWriter, r *http.Request, op string, err error) error {
	if r.Context().Err() != nil {
		return nil // the client is gone
	}
	countLedgerError(p.led.backend, err)
	if !errors.Is(err, ledger.ErrUnavailable) {
		return p.failed(w, r, "ledger: "+op+" failed", err)
	}
	p.metrics.challenge(http.StatusServiceUnavailable)
	id := requestID(r)
	p.led.trouble.log(p.logger, "ledger unavailable: per_request and prepaid requests fail with 503 until it answers", err,
		zap.String("backend", p.led.backend), zap.String("operation", op), zap.String("request_id", id))
	w.Header().Set("Retry-After", "1")
	return p.respond(w, r, http.StatusServiceUnavailable, "payments cannot be counted right now, try again shortly", map[string]string{"request_id": id})
}

// parseSats parses a whole number of sats, 1 to maxSats, written as
// decimal digits alone.
func parseSats(s string) (int64, error) {
	if s == "" || len(s) > 19 {
		return 0, errors.New("not a number of sats")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("not a number of sats")
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > maxSats {
		return 0, fmt.Errorf("not between 1 and %d sats", int64(maxSats))
	}
	return n, nil
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// reservedCostHeaders may not carry a reported cost: the paywall and HTTP
// need them as they are.
var reservedCostHeaders = []string{"Cache-Control", "Connection", "Content-Encoding", "Content-Length", "Content-Type",
	"Set-Cookie", "Trailer", "Transfer-Encoding", "Vary", "Www-Authenticate", balanceHeader}

// validateSelling checks the mode, the price and what goes with them.
func (p *Paywall) validateSelling() error {
	switch p.mode {
	case modePass, modePerRequest, modePrepaid:
	default:
		return fmt.Errorf("mode %q: use pass, per_request or prepaid", p.Mode)
	}
	switch {
	case p.priceErr != nil:
		return p.priceErr
	case p.priceTemplate != "" && (p.MaxPrice <= 0 || p.MaxPrice > maxSats):
		return fmt.Errorf("price %s comes from placeholders: set max_price, 1 to %d sats", p.priceTemplate, int64(maxSats))
	case p.priceTemplate == "" && p.MaxPrice != 0:
		return fmt.Errorf("max_price bounds a price from placeholders; price %d is fixed", p.price)
	case p.mode != modePrepaid && (p.Balance != 0 || p.CostHeader != ""):
		return errors.New("balance and cost_header go with mode prepaid")
	case p.Balance < 0 || p.Balance > maxSats:
		return fmt.Errorf("balance must be 1 to %d sats", int64(maxSats))
	case p.CostHeader == "" && (p.MaxCost != 0 || p.ChargeFailures):
		return errors.New("max_cost and charge_failures go with cost_header")
	case p.MaxCost < 0 || p.MaxCost > maxSats:
		return fmt.Errorf("max_cost must be 1 to %d sats", int64(maxSats))
	case p.CostHeader != "" && !httpguts.ValidHeaderFieldName(p.CostHeader):
		return fmt.Errorf("cost_header %q is not a header name", p.CostHeader)
	case slices.Contains(reservedCostHeaders, p.costKey):
		return fmt.Errorf("cost_header %s is a header the answer needs as it is: name another", p.costKey)
	}
	return nil
}

// checkServiceModes refuses paywalls that sell one service in different
// modes: a pass bought once could be spent again as a balance.
func checkServiceModes(paywalls []*Paywall) error {
	modes := make(map[string]string, len(paywalls))
	for _, p := range paywalls {
		if mode, ok := modes[p.service]; ok && mode != p.mode {
			return fmt.Errorf("paywalls sell service %s both as %s and as %s: give each mode a service of its own", p.service, mode, p.mode)
		}
		modes[p.service] = p.mode
	}
	return nil
}
