package lightning

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lightningcaddy/caddy-lightning/lnd"
	mpp "github.com/lightningcaddy/caddy-lightning/payment"
)

// challengeBody is the JSON answer to a request without valid, paid
// credentials.
type challengeBody struct {
	Message     string `json:"message"`
	Invoice     string `json:"invoice"`
	Token       string `json:"token"`
	PaymentHash string `json:"payment_hash"`
	PriceSat    int64  `json:"price_sat"`
	ExpiresAt   string `json:"expires_at"`
}

// exposedHeaders are the paywall's answer headers a script on another
// origin may read: the L402 challenge, the headers of the later payment
// dialects, those that say when to retry or what to quote, and a prepaid
// balance.
const exposedHeaders = "WWW-Authenticate, PAYMENT-REQUIRED, Payment-Receipt, PAYMENT-RESPONSE, Retry-After, X-Request-Id, " + balanceHeader

// challenge issues a fresh invoice and token for what o sells and answers
// with httpStatus (402 without credentials or with a spent one, 401 with
// bad ones): the challenges of every offered dialect, and a body for
// programs (JSON) or browsers (the payment page, bound to the browser by a
// cookie). HEAD and OPTIONS get the status alone: no invoice is made for
// them.
func (p *Paywall) challenge(w http.ResponseWriter, r *http.Request, httpStatus int, o offer, message string) error {
	return p.challengeRefusing(w, r, httpStatus, o, message, refusal{})
}

// refusal says, in a dialect's own terms, why a credential of that
// dialect was refused.
type refusal struct {
	// problem, for a Payment credential, is the body of the answer
	// (application/problem+json) in place of the JSON challenge.
	problem *mpp.Problem
	// x402 is PAYMENT-REQUIRED's error for a refused x402 payment.
	x402 string
}

// challengeRefusing is challenge with the reason a dialect's credential was
// refused.
func (p *Paywall) challengeRefusing(w http.ResponseWriter, r *http.Request, httpStatus int, o offer, message string, why refusal) error {
	if r.Method == http.MethodHead || r.Method == http.MethodOptions {
		p.metrics.challenge(httpStatus)
		return p.respond(w, r, httpStatus, message+" (no invoice for "+r.Method+": use GET or POST)", nil)
	}
	if wait, ok := p.limits.allow(clientKey(r.Context(), p.ipv6Prefix)); !ok {
		p.metrics.challenge(http.StatusTooManyRequests)
		return p.tooManyRequests(w, r, wait, "too many new invoices requested: retry later")
	}
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	memo := p.Memo
	if repl != nil {
		memo = truncateUTF8(repl.ReplaceAll(memo, ""), lnd.MaxMemoBytes)
	}
	snap, err := p.tokens.current(p.app.ctx.Context)
	if err != nil {
		return p.failed(w, r, "cannot load the paywalls' shared token state", err)
	}
	keys := snap.keys
	if p.fixedKeys != nil {
		keys = p.fixedKeys
	}
	inv, err := p.node.CreateInvoice(r.Context(), o.amount, memo, time.Duration(p.InvoiceExpiry))
	if err != nil {
		return p.nodeFailed(w, r, err)
	}
	p.settled.noteIssued(inv.PaymentHash, p.service)
	p.metrics.issued.Inc()
	// The invoice can be paid until at most invoice_expiry from now, and
	// caveats hold whole seconds: round the expiry up, so a payment at
	// the invoice's last moment still buys valid_for.
	issued := now()
	validUntil := issued.Add(p.lifetime() + time.Second - 1).Truncate(time.Second)
	token, id, err := keys.Mint(inv.PaymentHash, p.caveats(o, inv.PaymentHash, issued, validUntil)...)
	if err != nil {
		return p.failed(w, r, "cannot mint a token", err)
	}
	h := w.Header()
	made, err := p.writeOffers(h, r, o, inv, token, snap.challenges, why.x402)
	if err != nil {
		return p.failed(w, r, "cannot format the challenge", err)
	}
	// A session offer, if sessions are on, comes last: a deposit invoice
	// of its own, so a session payment never redeems another dialect.
	if _, err := p.addSessionChallenge(r.Context(), h, o.price, memo); err != nil {
		return p.nodeFailed(w, r, err)
	}
	h.Set("Cache-Control", "no-store")
	h.Add("Vary", "Accept")
	exposeToOtherOrigins(r, h)
	hash := hex.EncodeToString(inv.PaymentHash[:])
	p.logger.Debug("challenge issued", zap.String("payment_hash", hash), zap.Int("status", httpStatus))
	p.metrics.challenge(httpStatus)

	if prefersHTML(r) {
		binding, ok := pageCookieValue(keys, id)
		if !ok {
			return p.failed(w, r, "cannot bind the payment page", nil)
		}
		// Only this browser can turn the paid invoice into the access
		// cookie: the long poll must carry this cookie. It lasts a
		// minute beyond the invoice, for a payment at the last moment.
		http.SetCookie(w, newCookie(r, pageCookieName(id), binding, time.Duration(p.InvoiceExpiry)+time.Minute))
		nonce := newNonce()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+nonce+"'; style-src 'nonce-"+nonce+"'; "+
			"img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		w.WriteHeader(httpStatus)
		return renderPaymentPage(w, pageData{
			Price:       o.amount,
			Memo:        memo,
			Invoice:     inv.PaymentRequest,
			Token:       token,
			PaymentHash: hash,
			ExpiresAt:   inv.ExpiresAt,
			Nonce:       nonce,
		})
	}
	if why.problem != nil {
		why.problem.ChallengeID = made.chargeID
		h.Set("Content-Type", mpp.ProblemContentType)
		w.WriteHeader(httpStatus)
		_, err := w.Write(why.problem.JSON())
		return err
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(httpStatus)
	return json.NewEncoder(w).Encode(challengeBody{
		Message:     message,
		Invoice:     inv.PaymentRequest,
		Token:       token,
		PaymentHash: hash,
		PriceSat:    o.amount,
		ExpiresAt:   inv.ExpiresAt.UTC().Format(time.RFC3339),
	})
}

// exposeToOtherOrigins lets a script on another origin read the paywall's
// answer headers (the site's CORS configuration says which origins may
// read the answer at all).
func exposeToOtherOrigins(r *http.Request, h http.Header) {
	if r.Header.Get("Origin") != "" {
		h.Add("Access-Control-Expose-Headers", exposedHeaders)
	}
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// prefersHTML reports whether the client is a browser asking for a page.
func prefersHTML(r *http.Request) bool {
	accept := r.Header.Get("Accept")
	html := strings.Index(accept, "text/html")
	if html < 0 {
		return false
	}
	json := strings.Index(accept, "application/json")
	return json < 0 || html < json
}

func newNonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawStdEncoding.EncodeToString(b)
}

// nodeFailed answers when the node cannot be reached or fails: 503 (504 if
// it did not answer in time), with nothing of the node's error, which goes
// to the log.
func (p *Paywall) nodeFailed(w http.ResponseWriter, r *http.Request, err error) error {
	if r.Context().Err() != nil {
		return nil // the client is gone
	}
	httpStatus := http.StatusServiceUnavailable
	if status.Code(err) == codes.DeadlineExceeded {
		httpStatus = http.StatusGatewayTimeout
	}
	p.metrics.challenge(httpStatus)
	w.Header().Set("Retry-After", "5")
	id := requestID(r)
	p.logger.Warn("the Lightning node failed", zap.String("request_id", id), zap.Error(err))
	return p.respond(w, r, httpStatus, "the payment service is unavailable, try again shortly", map[string]string{"request_id": id})
}

// failed answers 500 for a failure of the paywall itself, with a request
// id for the client to quote; the details go to the log.
func (p *Paywall) failed(w http.ResponseWriter, r *http.Request, what string, err error) error {
	p.metrics.challenge(http.StatusInternalServerError)
	id := requestID(r)
	p.logger.Error(what, zap.String("request_id", id), zap.Error(err))
	return p.respond(w, r, http.StatusInternalServerError, "internal error", map[string]string{"request_id": id})
}

// tooManyRequests answers 429 with Retry-After.
func (p *Paywall) tooManyRequests(w http.ResponseWriter, r *http.Request, wait time.Duration, message string) error {
	w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds()+0.999)))
	return p.respond(w, r, http.StatusTooManyRequests, message, nil)
}

// respond writes a JSON answer {"message": ..., extra...} that no cache
// keeps and another origin's script may read (with X-Request-Id set to
// extra's request_id, if any).
func (p *Paywall) respond(w http.ResponseWriter, r *http.Request, httpStatus int, message string, extra map[string]string) error {
	body := map[string]string{"message": message}
	for k, v := range extra {
		body[k] = v
	}
	h := w.Header()
	if id := extra["request_id"]; id != "" {
		h.Set("X-Request-Id", id)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	exposeToOtherOrigins(r, h)
	w.WriteHeader(httpStatus)
	if r.Method == http.MethodHead {
		return nil
	}
	return json.NewEncoder(w).Encode(body)
}

// requestID is Caddy's id of the request ({http.request.uuid}), which its
// access log records too.
func requestID(r *http.Request) string {
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		if id, ok := repl.GetString("http.request.uuid"); ok {
			return id
		}
	}
	return newNonce()
}
