package lightning

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lightningcaddy/caddy-lightning/ledger"
	"github.com/lightningcaddy/caddy-lightning/lnd"
	mpp "github.com/lightningcaddy/caddy-lightning/payment"
)

// SessionConfig turns on Lightning sessions on a paywall: the "session"
// intent of the Payment authentication scheme (draft-lightning-session-00).
// A client pays a deposit once, opening a session, and each request it
// sends with the session's bearer credential draws the paywall's price from
// the deposit; it can top the session up, and closing it refunds what is
// left to an invoice the client gave at the opening. Refunds are payments
// from the node, so the macaroon needs offchain:write (and offchain:read):
// sessions are off unless this block is present.
type SessionConfig struct {
	// Deposit is the amount of the invoice that opens (or tops up) a
	// session, in satoshis; at least the price (max_price for a price
	// from placeholders). Default: 20 times that price.
	Deposit int64 `json:"deposit,omitempty"`
	// IdleTimeout closes a session that no request used for this long,
	// and refunds it, at least 1s. Sessions of paywalls that share the
	// ledger are closed once idle for the longest idle_timeout among
	// them. Default: 5m.
	IdleTimeout caddy.Duration `json:"idle_timeout,omitempty"`
	// RefundFeeLimit is the most the node may pay in routing fees for one
	// refund, in satoshis, on top of the refund (the client gets the
	// refund in full; the fee is the operator's). Default: 1% of the
	// refund and at least 10 sats.
	RefundFeeLimit int64 `json:"refund_fee_limit,omitempty"`

	deposit int64 // Deposit, or its default
}

// Session defaults.
const (
	sessionDepositUnits = 20
	sessionIdleDefault  = 5 * time.Minute
)

// kindRefund labels the refund of a session among the node's payments.
const kindRefund = "session_refund"

// refundsPrefix is where Caddy's storage keeps the closes whose refund is
// not settled yet: one key per session, written before the session is
// closed and removed once its refund has a final outcome, so a refund that
// a crash or a node outage interrupted is finished later, never forgotten.
const refundsPrefix = "lightning/sessions/refunds"

// provisionSession sets the session defaults and joins the ledger. No I/O.
func (p *Paywall) provisionSession(app *App) error {
	s := p.Session
	if s == nil {
		return nil
	}
	if s.IdleTimeout == 0 {
		s.IdleTimeout = caddy.Duration(sessionIdleDefault)
	}
	s.deposit = s.Deposit
	if s.deposit == 0 {
		s.deposit = min(sessionDepositUnits*max(p.price, p.MaxPrice), maxSats)
	}
	if p.led == nil {
		var err error
		if p.led, err = app.sharedLedger(); err != nil {
			return err
		}
	}
	app.payments.register(nil) // refunds are payments: follow those left open
	return nil
}

// validateSession checks the session block.
func (p *Paywall) validateSession() error {
	s := p.Session
	switch {
	case s == nil:
		return nil
	case s.Deposit < 0 || s.deposit > maxSats || s.RefundFeeLimit < 0 || s.RefundFeeLimit > maxSats:
		return fmt.Errorf("session: deposit and refund_fee_limit must be 0 to %d sats", int64(maxSats))
	case s.deposit < max(p.price, p.MaxPrice):
		return fmt.Errorf("session: deposit %d is below the price %d: a deposit must pay for one request at least", s.deposit, max(p.price, p.MaxPrice))
	case time.Duration(s.IdleTimeout) < time.Second:
		return errors.New("session: idle_timeout must be at least 1s")
	case time.Duration(p.InvoiceExpiry) > maxOfferInvoiceExpiry:
		// So that a rotated challenge secret outlives the challenges it bound.
		return fmt.Errorf("session: invoice_expiry may be at most %v", maxOfferInvoiceExpiry)
	}
	return nil
}

// sessionAccount is the ledger's name for a hash this paywall's sessions
// use (a session id, a deposit or a top-up): the hash bound to the
// paywall's service, so a session opened here is unknown to paywalls of
// other services, as a bearer credential echoing their challenge would
// otherwise draw on it.
func (p *Paywall) sessionAccount(hash [32]byte) ledger.Hash {
	return sha256.Sum256([]byte("session\x00" + p.service + "\x00" + hex.EncodeToString(hash[:])))
}

// sessionLedger is the full ledger, with its session operations.
func (s *sharedLedger) sessionLedger() ledger.Ledger {
	if s.memory != nil {
		return s.memory
	}
	return s.redis
}

// addSessionChallenge adds, if sessions are on, a Payment session
// challenge to h: a deposit invoice of its own (a payment of it opens a
// session, or tops one up, and nothing else), price per request, the idle
// timeout, and an expiry lateGrace (at most valid_for) after the
// invoice's. It returns the
// challenge's id.
func (p *Paywall) addSessionChallenge(ctx context.Context, h http.Header, price int64, memo string) (string, error) {
	if p.Session == nil {
		return "", nil
	}
	snap, err := p.tokens.current(ctx)
	if err != nil {
		return "", err
	}
	inv, err := p.node.CreateInvoice(ctx, max(p.Session.deposit, price), memo, time.Duration(p.InvoiceExpiry))
	if err != nil {
		return "", err
	}
	p.settled.noteIssued(inv.PaymentHash, p.service)
	p.metrics.issued.Inc()
	req := mpp.SessionRequest{
		Amount:         price,
		UnitType:       "request",
		DepositInvoice: inv.PaymentRequest,
		PaymentHash:    inv.PaymentHash,
		DepositAmount:  inv.AmountSat,
		IdleTimeout:    int64(time.Duration(p.Session.IdleTimeout) / time.Second),
	}
	// A deposit paid at the invoice's last moment still opens a session
	// (or tops one up) for lateGrace (at most valid_for): the node settles
	// no invoice after its expiry, and a deposit is credited once whenever
	// it comes. Bearer requests and closes do not depend on this expiry.
	expires := inv.ExpiresAt.Add(min(time.Duration(p.ValidFor), lateGrace))
	c := mpp.Challenge{Realm: p.service, Method: mpp.MethodLightning, Intent: mpp.IntentSession, Expires: mpp.FormatTime(expires)}
	if c.Request, err = req.Encode(); err != nil {
		return "", err
	}
	if err := snap.challenges.binder.Bind(&c); err != nil {
		return "", err
	}
	v, err := c.Format()
	if err != nil {
		return "", err
	}
	h.Add("WWW-Authenticate", v)
	return c.ID, nil
}

// serveSession serves a request that carries a Payment credential of the
// session intent, and reports whether it did: an open, a bearer request or
// a top-up or close. Requests without one are left to the other dialects.
func (p *Paywall) serveSession(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, price int64) (bool, error) {
	if p.Session == nil {
		return false, nil
	}
	cred, err := mpp.ParseAuthorization(r.Header.Values("Authorization"))
	switch {
	case errors.Is(err, mpp.ErrNoCredential):
		return false, nil
	case err == nil && cred.Challenge.Intent != mpp.IntentSession:
		return false, nil
	case err != nil:
		p.metrics.refused(dialectSession)
		return true, p.sessionRefused(w, r, price, mpp.ProblemFor(err, mpp.IntentSession))
	}
	snap, err := p.tokens.current(r.Context())
	if err != nil {
		return true, p.failed(w, r, "cannot load the paywalls' shared token state", err)
	}
	verifier := mpp.Verifier{Realm: p.service, Binder: snap.challenges.binder}
	vs, err := verifier.VerifySession(&cred, price, now())
	if err != nil {
		p.metrics.refused(dialectSession)
		return true, p.sessionRefused(w, r, price, mpp.ProblemFor(err, mpp.IntentSession))
	}
	if err := p.led.ready(r.Context()); err != nil {
		return true, p.ledgerFailed(w, r, "load", err)
	}
	switch vs.Action {
	case mpp.ActionOpen:
		return true, p.openSession(w, r, next, vs, price)
	case mpp.ActionBearer:
		return true, p.drawSession(w, r, next, vs, price)
	case mpp.ActionTopUp:
		return true, p.topUpSession(w, r, vs, price)
	default:
		return true, p.closeSession(w, r, vs, price)
	}
}

// openSession opens the session a paid deposit buys, once, and serves the
// request from it. The return invoice must be one the node can pay later:
// of its network, without an amount, and payable for twice the idle
// timeout at least.
func (p *Paywall) openSession(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, vs mpp.VerifiedSession, price int64) error {
	inv, err := p.node.DecodeInvoice(r.Context(), vs.ReturnInvoice)
	switch {
	case status.Code(err) == codes.InvalidArgument:
		return p.sessionRefused(w, r, price, mpp.NewProblem(mpp.ProblemLightningInvalidReturnInvoice, status.Convert(err).Message()))
	case err != nil:
		return p.nodeFailed(w, r, err)
	case inv.AmountSat != 0:
		return p.sessionRefused(w, r, price, mpp.NewProblem(mpp.ProblemLightningInvalidReturnInvoice, "the return invoice must have no amount: the refund sets it"))
	case inv.ExpiresAt.Before(now().Add(2 * time.Duration(p.Session.IdleTimeout))):
		return p.sessionRefused(w, r, price, mpp.NewProblem(mpp.ProblemLightningInvalidReturnInvoice,
			fmt.Sprintf("the return invoice expires too soon: it must stay payable for %s at least", 2*time.Duration(p.Session.IdleTimeout))))
	}
	led := p.led.sessionLedger()
	opened, err := led.OpenSession(r.Context(), p.sessionAccount(vs.SessionID), vs.DepositSats, vs.ReturnInvoice)
	switch {
	case errors.Is(err, ledger.ErrPaymentUsed) || err == nil && !opened:
		p.metrics.used.Inc()
		p.metrics.dialect(dialectSession, resultUsed)
		return p.sessionRefused(w, r, price, mpp.NewProblem(mpp.ProblemLightningUnknownChallenge,
			"this deposit opened a session already: send bearer credentials for it"))
	case err != nil:
		return p.ledgerFailed(w, r, "open session", err)
	}
	p.metrics.creditedSats.Add(float64(vs.DepositSats))
	p.logger.Debug("session opened", zap.String("session", hex.EncodeToString(vs.SessionID[:])), zap.Int64("deposit_sat", vs.DepositSats))
	return p.drawSession(w, r, next, vs, price)
}

// drawSession draws price from the session and serves the request.
func (p *Paywall) drawSession(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, vs mpp.VerifiedSession, price int64) error {
	remaining, err := p.led.sessionLedger().Draw(r.Context(), p.sessionAccount(vs.SessionID).String(), price)
	var short *ledger.InsufficientError
	switch {
	case errors.As(err, &short):
		p.metrics.exhausted.Inc()
		p.metrics.dialect(dialectSession, resultRefused)
		return p.sessionRefused(w, r, price, mpp.NewProblem(mpp.ProblemLightningInsufficientBalance,
			fmt.Sprintf("the session holds %d sats and this request costs %d: top it up", short.Available, price)))
	case err != nil:
		return p.sessionLedgerFailed(w, r, price, err)
	}
	p.metrics.admitted.Inc()
	p.metrics.dialect(dialectSession, resultAdmitted)
	p.metrics.draws.Inc()
	p.metrics.drawnSats.Add(float64(price))
	if err := setSessionReceipt(w.Header(), vs, nil); err != nil {
		return p.failed(w, r, "cannot write the payment receipt", err)
	}
	if !p.KeepCredentials {
		stripHeader(r.Header, "Authorization", withoutPaymentCredentials)
	}
	resp := &paidResponse{balance: remaining, hasBalance: true, exposeBalance: r.Header.Get("Origin") != ""}
	return p.admit(w, r, next, proof{paymentHash: vs.SessionID, credentialFacts: credentialFacts{amount: price}}, price, resp)
}

// topUpSession credits a paid top-up to an open session, once.
func (p *Paywall) topUpSession(w http.ResponseWriter, r *http.Request, vs mpp.VerifiedSession, price int64) error {
	credited, err := p.led.sessionLedger().TopUp(r.Context(), p.sessionAccount(vs.SessionID).String(), p.sessionAccount(vs.PaymentHash), vs.DepositSats)
	switch {
	case errors.Is(err, ledger.ErrPaymentUsed) || err == nil && !credited:
		p.metrics.used.Inc()
		p.metrics.dialect(dialectSession, resultUsed)
		return p.sessionRefused(w, r, price, mpp.NewProblem(mpp.ProblemLightningUnknownChallenge, "this top-up was credited already"))
	case err != nil:
		return p.sessionLedgerFailed(w, r, price, err)
	}
	p.metrics.creditedSats.Add(float64(vs.DepositSats))
	if err := setSessionReceipt(w.Header(), vs, nil); err != nil {
		return p.failed(w, r, "cannot write the payment receipt", err)
	}
	return writeSessionJSON(w, r, map[string]any{"status": "ok"})
}

// closeSession closes the session and pays its refund, deposit and top-ups
// minus what was spent, to the return invoice: once, whatever the number of
// closes (a second gets session-closed and pays nothing).
func (p *Paywall) closeSession(w http.ResponseWriter, r *http.Request, vs mpp.VerifiedSession, price int64) error {
	// The refund goes on if the client leaves: it is the client's money.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 2*time.Minute)
	defer cancel()
	s, err := p.refunds().close(ctx, p.sessionAccount(vs.SessionID).String())
	if err != nil {
		return p.sessionLedgerFailed(w, r, price, err)
	}
	st := refundStatusOf(s)
	if err := setSessionReceipt(w.Header(), vs, &s); err != nil {
		return p.failed(w, r, "cannot write the payment receipt", err)
	}
	return writeSessionJSON(w, r, map[string]any{"status": "closed", "refundSats": s.Refund, "refundStatus": st})
}

// refundStatusOf is what a close answers of its refund: succeeded, failed,
// skipped (nothing to refund) or pending (the outcome is not known yet; it
// is followed until it is, and paid at most once).
func refundStatusOf(s ledger.Session) string {
	switch s.RefundStatus {
	case ledger.RefundSucceeded, ledger.RefundFailed, ledger.RefundSkipped:
		return string(s.RefundStatus)
	}
	return "pending"
}

// setSessionReceipt sets the Payment-Receipt of a successful session
// action: the session id and, for a close, its refund (final outcomes
// only: a pending refund has no receipt status).
func setSessionReceipt(h http.Header, vs mpp.VerifiedSession, closed *ledger.Session) error {
	rc := mpp.Receipt{Method: mpp.MethodLightning, Reference: hex.EncodeToString(vs.SessionID[:]), Timestamp: now(), ChallengeID: vs.ChallengeID}
	if closed != nil {
		if st := refundStatusOf(*closed); st != "pending" {
			rc.RefundStatus, rc.RefundSats = st, closed.Refund
			if st == mpp.RefundSkipped {
				rc.RefundSats = 0
			}
		}
	}
	v, err := rc.Encode()
	if err != nil {
		return err
	}
	h.Set(mpp.ReceiptHeader, v)
	return nil
}

// writeSessionJSON answers a top-up or close: 200 with body, kept out of
// every cache.
func writeSessionJSON(w http.ResponseWriter, r *http.Request, body map[string]any) error {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "private, no-store")
	exposeToOtherOrigins(r, h)
	w.WriteHeader(http.StatusOK)
	return json.NewEncoder(w).Encode(body)
}

// sessionLedgerFailed answers a ledger error of a session action: a
// session unknown here or closed is the client's problem (402), anything
// else the paywall's.
func (p *Paywall) sessionLedgerFailed(w http.ResponseWriter, r *http.Request, price int64, err error) error {
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return p.sessionRefused(w, r, price, mpp.NewProblem(mpp.ProblemLightningSessionNotFound, "no open session with this id here"))
	case errors.Is(err, ledger.ErrClosed):
		return p.sessionRefused(w, r, price, mpp.NewProblem(mpp.ProblemLightningSessionClosed, "the session is closed"))
	}
	return p.ledgerFailed(w, r, "session", err)
}

// sessionRefused answers a session credential that does not admit the
// request: the problem (RFC 9457) and, with a 402, a fresh session
// challenge.
func (p *Paywall) sessionRefused(w http.ResponseWriter, r *http.Request, price int64, prob mpp.Problem) error {
	h := w.Header()
	if prob.Status == http.StatusPaymentRequired && r.Method != http.MethodHead {
		if wait, ok := p.limits.allow(clientKey(r.Context(), p.ipv6Prefix)); !ok {
			p.metrics.challenge(http.StatusTooManyRequests)
			return p.tooManyRequests(w, r, wait, "too many new invoices requested: retry later")
		}
		id, err := p.addSessionChallenge(r.Context(), h, price, p.sessionMemo(r))
		if err != nil {
			return p.nodeFailed(w, r, err)
		}
		prob.ChallengeID = id
	}
	p.metrics.challenge(prob.Status)
	h.Set("Content-Type", mpp.ProblemContentType)
	h.Set("Cache-Control", "no-store")
	exposeToOtherOrigins(r, h)
	w.WriteHeader(prob.Status)
	if r.Method == http.MethodHead {
		return nil
	}
	_, err := w.Write(prob.JSON())
	return err
}

// sessionMemo is the memo of a deposit invoice.
func (p *Paywall) sessionMemo(r *http.Request) string {
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		return truncateUTF8(repl.ReplaceAll(p.Memo, ""), lnd.MaxMemoBytes)
	}
	return p.Memo
}

// withoutPaymentCredentials drops the Payment credentials from an
// Authorization value: they carry a preimage, which the rest of the route
// has no business seeing.
func withoutPaymentCredentials(v string) string {
	var kept []string
	for item := range strings.SplitSeq(v, ",") {
		if f := strings.Fields(item); len(f) > 0 && strings.EqualFold(f[0], mpp.Scheme) {
			continue
		}
		kept = append(kept, item)
	}
	return strings.TrimSpace(strings.Join(kept, ","))
}

// refunds returns what closes this paywall's sessions and pays refunds.
func (p *Paywall) refunds() *sessionRefunds {
	return newSessionRefunds(p.app, p.led.sessionLedger(), p.Session.RefundFeeLimit, p.logger)
}

// sessionRefunds closes sessions and pays their refunds through the
// Lightning API's payment code: the payment ledger records each refund
// before it is sent, a repeat never pays twice, and an outcome left open
// is followed until the node knows it.
type sessionRefunds struct {
	ledger  ledger.Ledger
	storage certmagic.Storage
	payer   *service
	logger  *zap.Logger
}

func newSessionRefunds(app *App, led ledger.Ledger, feeLimit int64, logger *zap.Logger) *sessionRefunds {
	return &sessionRefunds{
		ledger:  led,
		storage: app.ctx.Storage(),
		logger:  logger,
		payer: &service{
			app:            app,
			node:           app.Client(),
			maxPayment:     maxSats, // a refund never exceeds what the client paid in
			maxFee:         feeLimit,
			paymentTimeout: lnd.DefaultPaymentTimeout,
			followAfter:    lnd.DefaultPaymentTimeout + 2*app.callTimeout() + 30*time.Second,
			ledger:         app.payments,
			logger:         logger,
		},
	}
}

// close closes session id and pays its refund. The close is written down
// in storage first, so that a refund interrupted by a crash or a node
// outage is finished later (see settle). A session closed already gets
// ledger.ErrClosed and pays nothing.
func (s *sessionRefunds) close(ctx context.Context, id string) (ledger.Session, error) {
	key := path.Join(refundsPrefix, id)
	if err := s.storage.Store(ctx, key, []byte(id)); err != nil {
		return ledger.Session{}, fmt.Errorf("note the close in storage: %w", err)
	}
	if _, err := s.ledger.CloseSession(ctx, id); err != nil {
		if errors.Is(err, ledger.ErrNotFound) {
			_ = s.forget(ctx, id) // no such session: nothing to refund
		}
		// A session closed already may be refunding under the same note:
		// the closer drops it once that refund is final.
		return ledger.Session{}, err
	}
	return s.settle(ctx, id)
}

// settle pays the refund of closed session id if its outcome is not final
// yet, records the outcome, and returns the session. It may run again for
// the same session, here or on another instance: the payment ledger and the
// node make sure the refund moves money once. The storage note of the close
// goes once the outcome is final.
func (s *sessionRefunds) settle(ctx context.Context, id string) (ledger.Session, error) {
	sess, err := s.ledger.Session(ctx, id)
	switch {
	case errors.Is(err, ledger.ErrNotFound) || err == nil && !sess.Closed:
		// The close never happened: nothing to refund.
		return sess, s.forget(ctx, id)
	case err != nil:
		return sess, err
	case sess.RefundStatus != ledger.RefundPending && sess.RefundStatus != ledger.RefundUnknown:
		return sess, s.forget(ctx, id)
	}
	outcome, err := s.pay(ctx, sess)
	if err != nil {
		s.logger.Warn("session refund not sent; it is tried again later", zap.String("session", id), zap.Int64("refund_sat", sess.Refund), zap.Error(err))
		return sess, nil
	}
	if err := s.ledger.RecordRefund(ctx, id, outcome); err != nil && !errors.Is(err, ledger.ErrInvalid) {
		return sess, err
	}
	if sess, err = s.ledger.Session(ctx, id); err != nil {
		return sess, err
	}
	if sess.RefundStatus == ledger.RefundSucceeded || sess.RefundStatus == ledger.RefundFailed {
		s.logger.Info("session refund "+string(sess.RefundStatus), zap.String("session", id), zap.Int64("refund_sat", sess.Refund))
		return sess, s.forget(ctx, id)
	}
	return sess, nil
}

// pay pays the refund of a closed session and says how it ended. An
// error means nothing was sent and trying again later may succeed (the
// node or the storage was unavailable); a refund that can never be paid
// (the return invoice expired, or the node refuses it) is failed.
func (s *sessionRefunds) pay(ctx context.Context, sess ledger.Session) (ledger.Refund, error) {
	inv, err := s.payer.node.DecodeInvoice(ctx, sess.ReturnInvoice)
	if err != nil {
		if status.Code(err) == codes.InvalidArgument {
			return ledger.Refund{Status: ledger.RefundFailed}, nil
		}
		return ledger.Refund{}, err
	}
	r := ledger.Refund{Payment: inv.PaymentHash}
	out, _, err := s.payer.makePayment(ctx, payment{kind: kindRefund, hash: inv.PaymentHash, amountSat: sess.Refund, invoice: inv})
	switch out.(type) {
	case lnd.Succeeded:
		r.Status = ledger.RefundSucceeded
	case lnd.Failed:
		r.Status = ledger.RefundFailed
	case lnd.Unknown:
		r.Status = ledger.RefundUnknown
	default:
		switch status.Code(err) {
		case codes.Unavailable, codes.Internal, codes.DeadlineExceeded, codes.Canceled:
			return ledger.Refund{}, err
		}
		s.logger.Error("session refund refused: it cannot be paid", zap.Error(err))
		r.Status = ledger.RefundFailed
	}
	return r, nil
}

// forget drops the storage note of a close whose refund is final.
func (s *sessionRefunds) forget(ctx context.Context, id string) error {
	err := s.storage.Delete(ctx, path.Join(refundsPrefix, id))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// sessionSweepInterval bounds how often the idle sessions are looked for;
// tests shorten it.
var sessionSweepInterval = 30 * time.Second

// sessionCloser is the app's task that closes idle sessions and refunds
// them, and finishes refunds that a crash or an outage interrupted.
type sessionCloser struct {
	refunds *sessionRefunds
	idle    time.Duration
	cancel  context.CancelFunc
	done    chan struct{}
}

// startSessionCloser starts the closer if a paywall of the config sells
// sessions: sessions idle for the longest idle_timeout among them are
// closed, with the smallest refund_fee_limit set among them.
func (a *App) startSessionCloser(paywalls []*Paywall) {
	var idle time.Duration
	var fee int64
	var led *sharedLedger
	for _, p := range paywalls {
		if p.Session == nil {
			continue
		}
		idle, led = max(idle, time.Duration(p.Session.IdleTimeout)), p.led
		if f := p.Session.RefundFeeLimit; f > 0 && (fee == 0 || f < fee) {
			fee = f
		}
	}
	if led == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &sessionCloser{refunds: newSessionRefunds(a, led.sessionLedger(), fee, a.logger), idle: idle, cancel: cancel, done: make(chan struct{})}
	a.closer = c
	go func() {
		defer close(c.done)
		c.run(ctx, min(sessionSweepInterval, idle/2))
	}()
}

// stopSessionCloser stops the closer and waits for it; a refund it was
// paying is finished by the next run, once.
func (a *App) stopSessionCloser() {
	if a.closer != nil {
		a.closer.cancel()
		<-a.closer.done
		a.closer = nil
	}
}

func (c *sessionCloser) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(max(interval, 10*time.Millisecond))
	defer t.Stop()
	for {
		c.pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pass finishes the refunds written down in storage, then closes and
// refunds the idle sessions.
func (c *sessionCloser) pass(ctx context.Context) {
	log := func(msg string, err error, fields ...zap.Field) {
		if ctx.Err() == nil {
			c.refunds.logger.Warn(msg, append(fields, zap.Error(err))...)
		}
	}
	keys, err := c.refunds.storage.List(ctx, refundsPrefix, false)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		log("sessions: cannot list the refunds to finish", err)
	}
	for _, key := range keys {
		id := path.Base(key)
		if _, err := ledger.ParseHash(id); err != nil {
			continue // not a note (the storage's temporary file of one being written)
		}
		if _, err := c.refunds.settle(ctx, id); err != nil {
			log("sessions: cannot finish a refund; trying again later", err, zap.String("session", id))
		}
	}
	ids, err := c.refunds.ledger.IdleSessions(ctx, c.idle, 100)
	if err != nil {
		log("sessions: cannot list the idle sessions", err)
		return
	}
	for _, id := range ids {
		s, err := c.refunds.close(ctx, id)
		switch {
		case errors.Is(err, ledger.ErrClosed):
		case err != nil:
			log("sessions: cannot close an idle session; trying again later", err, zap.String("session", id))
		default:
			c.refunds.logger.Info("sessions: idle session closed", zap.String("session", id),
				zap.Int64("refund_sat", s.Refund), zap.String("refund", refundStatusOf(s)), zap.Duration("idle", c.idle))
		}
	}
}
