package lightning

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/lightningcaddy/caddy-lightning/x402"
)

// lateGrace is how long after its invoice expired a paid x402 offer, or a
// session's deposit, can still be redeemed (at most valid_for): the client
// may be slow to retry, and the x402 proposal's rejection of expired
// invoices would refuse a payment made in time.
const lateGrace = time.Hour

// x402SettleWait is how long an x402 payment whose invoice is not settled
// yet waits for the node to report it: Alby retries as soon as its wallet
// has paid, which can be a moment before the node settles.
const x402SettleWait = 3 * time.Second

// serveX402 admits one request for an x402 payment (PAYMENT-SIGNATURE).
// The header carries the invoice, not its preimage, so anyone who saw the
// 402 can send it: the offer it echoes must carry this paywall's binding
// (an HMAC of the service, network, payment hash and amount: minted here,
// for x402, on this service), the amount must be this request's price, the
// node must report the invoice settled (waiting up to x402SettleWait), and
// the payment hash is claimed in the ledger as every dialect's is. The
// invoice may be redeemed until lateGrace (at most valid_for) after its
// expiry. A malformed header gets 400; any other refusal 402 with a
// fresh PAYMENT-REQUIRED whose error says why, and PAYMENT-RESPONSE
// naming the reason. Success carries PAYMENT-RESPONSE.
func (p *Paywall) serveX402(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, values []string, price int64) error {
	if len(values) != 1 {
		return p.x402Malformed(w, r, "send one PAYMENT-SIGNATURE header")
	}
	pay, err := x402.DecodePaymentSignature(values[0])
	if errors.Is(err, x402.ErrMalformed) {
		return p.x402Malformed(w, r, "malformed PAYMENT-SIGNATURE: "+err.Error())
	}
	if err != nil {
		return p.x402Refused(w, r, price, "", x402.ErrorReason(err), err.Error())
	}
	network, accepted := pay.Accepted.Network, pay.Accepted
	refuse := func(reason, message string) error { return p.x402Refused(w, r, price, network, reason, message) }
	snap, err := p.tokens.current(p.app.ctx.Context)
	if err != nil {
		return p.failed(w, r, "cannot load the paywalls' shared token state", err)
	}
	if snap.challenges == nil {
		return p.failed(w, r, "no challenge secret loaded", nil)
	}
	inv, err := p.node.DecodeInvoice(r.Context(), pay.Payload.Invoice)
	if err != nil {
		return refuse(x402.ReasonInvalidPayload, "the invoice does not decode for this node's network")
	}
	if !snap.challenges.verifyTag(p.x402Binding(network, inv.PaymentHash, accepted.Amount), accepted.Extra.Binding) {
		return refuse(x402.ReasonInvalidPayload, "not an x402 offer of this route")
	}
	if accepted.Amount != strconv.FormatInt(price*1000, 10) || inv.AmountSat != price {
		return refuse(x402.ReasonInvalidPayload, "the offer was for another price: pay the new invoice")
	}
	if !now().Before(inv.ExpiresAt.Add(min(time.Duration(p.ValidFor), lateGrace))) {
		return refuse(x402.ReasonInvalidPayload, "the offer has expired: pay the new invoice")
	}
	_, paid, err := p.awaitSettlement(r.Context(), inv.PaymentHash, clientKey(r.Context(), p.ipv6Prefix), false, x402SettleWait)
	switch {
	case errors.Is(err, errTooManyLookups):
		p.metrics.challenge(http.StatusTooManyRequests)
		return p.tooManyRequests(w, r, time.Second, "too many payment checks: retry later")
	case err != nil:
		return p.nodeFailed(w, r, err)
	case !paid:
		p.metrics.unpaid.Inc()
		return refuse(x402.ReasonInvalidTransaction, "the invoice is not paid")
	}
	p.metrics.settled.Inc()
	settled, err := x402.Settled(network, inv.PaymentRequest, price*1000, now()).Encode()
	if err != nil {
		return p.failed(w, r, "cannot write the payment response", err)
	}
	// A token for the same invoice opens the paywall until the invoice's
	// expiry plus valid_for: the claim lasts as long.
	pr := proof{paymentHash: inv.PaymentHash, credentialFacts: credentialFacts{
		expires: inv.ExpiresAt.Add(time.Duration(p.ValidFor) + time.Second),
		amount:  price,
	}}
	return p.admitOnce(w, r, next, pr, price, offerX402, successHeader{x402.HeaderPaymentResponse, settled}, func() error {
		return p.x402Challenge(w, r, price, network, x402.ReasonInvalidTransaction, "this payment was used already: each payment admits one request")
	})
}

// x402Refused counts and answers a refused x402 payment (x402Challenge).
func (p *Paywall) x402Refused(w http.ResponseWriter, r *http.Request, price int64, network, reason, message string) error {
	p.metrics.refused(offerX402)
	return p.x402Challenge(w, r, price, network, reason, message)
}

// x402Challenge answers 402 to an x402 payment with a fresh
// PAYMENT-REQUIRED whose error is message, and PAYMENT-RESPONSE with the
// reason (when the network is known).
func (p *Paywall) x402Challenge(w http.ResponseWriter, r *http.Request, price int64, network, reason, message string) error {
	if network != "" {
		if v, err := x402.Failed(network, reason).Encode(); err == nil {
			w.Header().Set(x402.HeaderPaymentResponse, v)
		}
	}
	return p.challengeRefusing(w, r, http.StatusPaymentRequired, p.offer(price), message, refusal{x402: message})
}

// x402Malformed answers 400 to a PAYMENT-SIGNATURE that does not parse.
func (p *Paywall) x402Malformed(w http.ResponseWriter, r *http.Request, message string) error {
	p.metrics.refused(offerX402)
	p.metrics.challenge(http.StatusBadRequest)
	return p.respond(w, r, http.StatusBadRequest, message, nil)
}
