package lightning

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lightningcaddy/caddy-lightning/l402"
	"github.com/lightningcaddy/caddy-lightning/lnd"
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

// challenge issues a fresh invoice and token and answers with httpStatus
// (402 without credentials, 401 with bad ones): the L402 challenge in
// WWW-Authenticate, and a body for programs (JSON) or browsers (the
// payment page).
func (p *Paywall) challenge(w http.ResponseWriter, r *http.Request, httpStatus int, message string) error {
	if wait, ok := p.limits.allow(clientIP(r)); !ok {
		p.metrics.challenge(http.StatusTooManyRequests)
		return writeTooManyRequests(w, wait)
	}
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	memo := p.Memo
	if repl != nil {
		memo = truncateUTF8(repl.ReplaceAll(memo, ""), lnd.MaxMemoBytes)
	}
	inv, err := p.node.CreateInvoice(r.Context(), p.Price, memo, time.Duration(p.InvoiceExpiry))
	if err != nil {
		p.logger.Warn("cannot issue invoice", zap.Error(err))
		return p.unavailable(w, err)
	}
	p.settled.noteIssued(inv.PaymentHash, p.Service)
	p.metrics.issued.Inc()
	// Caveats hold whole seconds: round up, so a token lasts at least
	// valid_for.
	validUntil := now().Add(time.Duration(p.ValidFor) + time.Second - 1).Truncate(time.Second)
	token, _, err := p.keyring().Mint(inv.PaymentHash,
		l402.ServicesCaveat(l402.Service{Name: p.Service}),
		l402.ValidUntilCaveat(p.Service, validUntil),
		l402.PriceCaveat(p.Service, p.Price))
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	headers, err := l402.ChallengeHeaders(token, inv.PaymentRequest)
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	h := w.Header()
	for _, v := range headers {
		h.Add("WWW-Authenticate", v)
	}
	h.Set("Cache-Control", "no-store")
	h.Add("Vary", "Accept")
	hash := hex.EncodeToString(inv.PaymentHash[:])
	p.logger.Debug("challenge issued", zap.String("payment_hash", hash), zap.Int("status", httpStatus))
	p.metrics.challenge(httpStatus)

	if prefersHTML(r) {
		nonce := newNonce()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+nonce+"'; style-src 'nonce-"+nonce+"'; "+
			"img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		w.WriteHeader(httpStatus)
		return renderPaymentPage(w, pageData{
			Price:       p.Price,
			Memo:        memo,
			Invoice:     inv.PaymentRequest,
			Token:       token,
			PaymentHash: hash,
			ExpiresAt:   inv.ExpiresAt,
			Nonce:       nonce,
		})
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(httpStatus)
	return json.NewEncoder(w).Encode(challengeBody{
		Message:     message,
		Invoice:     inv.PaymentRequest,
		Token:       token,
		PaymentHash: hash,
		PriceSat:    p.Price,
		ExpiresAt:   inv.ExpiresAt.UTC().Format(time.RFC3339),
	})
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

// clientIP is the client's address as Caddy determined it (trusted
// proxies considered).
func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// unavailable answers when the node cannot be reached or fails.
func (p *Paywall) unavailable(w http.ResponseWriter, err error) error {
	httpStatus := http.StatusServiceUnavailable
	if status.Code(err) == codes.DeadlineExceeded {
		httpStatus = http.StatusGatewayTimeout
	}
	p.metrics.challenge(httpStatus)
	w.Header().Set("Retry-After", "5")
	writeJSONMessage(w, httpStatus, "the Lightning node is unavailable, try again shortly: "+status.Convert(err).Message())
	return nil
}

func writeTooManyRequests(w http.ResponseWriter, wait time.Duration) error {
	w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds()+0.999)))
	writeJSONMessage(w, http.StatusTooManyRequests, "too many new invoices requested: retry later")
	return nil
}

func writeJSONMessage(w http.ResponseWriter, httpStatus int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(httpStatus)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": message})
}
