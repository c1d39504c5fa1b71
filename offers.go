package lightning

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/lightningcaddy/caddy-lightning/l402"
	"github.com/lightningcaddy/caddy-lightning/lnd"
	mpp "github.com/lightningcaddy/caddy-lightning/payment"
	"github.com/lightningcaddy/caddy-lightning/x402"
)

// The dialects a paywall's 402 can offer (Paywall.Offers).
const (
	// offerL402 is L402: WWW-Authenticate: L402 macaroon=…, invoice=….
	offerL402 = "l402"
	// offerCharge is the Payment scheme's Lightning charge:
	// WWW-Authenticate: Payment …, intent="charge".
	offerCharge = "charge"
	// offerX402 is x402 v2 with Lightning: PAYMENT-REQUIRED.
	offerX402 = "x402"
)

// dialectSession is the Payment scheme's Lightning session, offered by
// paywalls with a session block (not in Offers: it has its own invoice).
const dialectSession = "session"

// singleUseOffers are the offers whose payment admits one request: they
// go with mode per_request, which counts payments in the ledger.
var singleUseOffers = []string{offerCharge, offerX402}

// defaultOffers is what a paywall offers without an offers option: every
// dialect where each payment buys one request (per_request), else L402
// alone (a pass or a balance is reused, which only L402 expresses).
func defaultOffers(mode string) []string {
	if mode == modePerRequest {
		return []string{offerL402, offerCharge, offerX402}
	}
	return []string{offerL402}
}

// maxOfferInvoiceExpiry bounds invoice_expiry with the charge or x402
// offers, so that a challenge secret a rotation replaced can be dropped
// soon after (maxChallengeLife).
const maxOfferInvoiceExpiry = 24 * time.Hour

// validateOffers checks the offers option: known names, each once, the
// single-use ones with mode per_request only, and with them an
// invoice_expiry of at most maxOfferInvoiceExpiry.
func (p *Paywall) validateOffers() error {
	if p.Offers != nil && len(p.Offers) == 0 {
		return errors.New("offers: name at least one of l402, charge, x402")
	}
	seen := map[string]bool{}
	for _, o := range p.offerList {
		switch {
		case o != offerL402 && o != offerCharge && o != offerX402:
			return fmt.Errorf("offers: %q is not l402, charge or x402", o)
		case seen[o]:
			return fmt.Errorf("offers: %s is named twice", o)
		case slices.Contains(singleUseOffers, o) && p.mode != modePerRequest:
			return fmt.Errorf("offers: %s is a one-time payment, which goes with mode per_request (this paywall sells %s)", o, p.mode)
		case slices.Contains(singleUseOffers, o) && time.Duration(p.InvoiceExpiry) > maxOfferInvoiceExpiry:
			return fmt.Errorf("offers: with %s, invoice_expiry may be at most %v", o, maxOfferInvoiceExpiry)
		}
		seen[o] = true
	}
	return nil
}

// offers reports whether the paywall offers dialect.
func (p *Paywall) offers(dialect string) bool { return slices.Contains(p.offerList, dialect) }

// madeOffers is what one 402 offered beside its invoice.
type madeOffers struct {
	chargeID string // the Payment charge challenge's id, "" if none
}

// writeOffers writes the challenges of every offered dialect for one
// invoice, in the order of the offers: the WWW-Authenticate lines of L402
// and of the Payment charge (one line each), and PAYMENT-REQUIRED for x402
// (with x402Error as its error, or the default). One payment of the
// invoice is redeemed once, under whichever dialect comes first: they all
// claim its payment hash in the ledger.
func (p *Paywall) writeOffers(h http.Header, r *http.Request, o offer, inv lnd.Invoice, token string, ck *challengeKeys, x402Error string) (madeOffers, error) {
	var made madeOffers
	if ck == nil && (p.offers(offerCharge) || p.offers(offerX402)) {
		return made, errors.New("no challenge secret loaded")
	}
	network := invoiceNetwork(inv.PaymentRequest)
	for _, dialect := range p.offerList {
		switch dialect {
		case offerL402:
			lines, err := l402.ChallengeHeaders(token, inv.PaymentRequest)
			if err != nil {
				return made, err
			}
			for _, v := range lines {
				h.Add("WWW-Authenticate", v)
			}
		case offerCharge:
			if network == "testnet" || network == "" { // the charge drafts name no other
				continue
			}
			c, err := p.chargeChallenge(o, inv, network, ck)
			if err != nil {
				return made, err
			}
			line, err := c.Format()
			if err != nil {
				return made, err
			}
			h.Add("WWW-Authenticate", line)
			made.chargeID = c.ID
		case offerX402:
			v, err := p.x402Required(r, o, inv, network, ck, x402Error)
			if err != nil {
				return made, err
			}
			h.Set(x402.HeaderPaymentRequired, v)
		}
	}
	return made, nil
}

// chargeChallenge returns the bound Payment charge challenge for inv: its
// realm is the paywall's service, and it expires with the invoice.
func (p *Paywall) chargeChallenge(o offer, inv lnd.Invoice, network string, ck *challengeKeys) (mpp.Challenge, error) {
	req := mpp.ChargeRequest{Amount: o.amount, MethodDetails: mpp.MethodDetails{
		Invoice: inv.PaymentRequest, PaymentHash: inv.PaymentHash, Network: network,
	}}
	encoded, err := req.Encode()
	if err != nil {
		return mpp.Challenge{}, err
	}
	c := mpp.Challenge{
		Realm:   p.service,
		Method:  mpp.MethodLightning,
		Intent:  mpp.IntentCharge,
		Request: encoded,
		Expires: mpp.FormatTime(inv.ExpiresAt),
	}
	return c, ck.binder.Bind(&c)
}

// x402Required returns the PAYMENT-REQUIRED value offering inv, with an
// extra.binding that proves the offer was made here, for x402, on this
// paywall's service (see x402Binding).
func (p *Paywall) x402Required(r *http.Request, o offer, inv lnd.Invoice, network string, ck *challengeKeys, x402Error string) (string, error) {
	id, err := x402.NetworkID(network)
	if err != nil {
		return "", err
	}
	amountMsat := o.amount * 1000
	req, err := x402.Offer{
		Network:    network,
		Invoice:    inv.PaymentRequest,
		AmountMsat: amountMsat,
		Expiry:     time.Duration(p.InvoiceExpiry),
		Binding:    ck.tag(p.x402Binding(id, inv.PaymentHash, strconv.FormatInt(amountMsat, 10))),
	}.Requirements()
	if err != nil {
		return "", err
	}
	if x402Error == "" {
		x402Error = x402.DefaultError
	}
	return x402.PaymentRequired{
		Error:    x402Error,
		Resource: x402.Resource{URL: requestURL(r)},
		Accepts:  []x402.Requirements{req},
	}.Encode()
}

// x402Binding is what an x402 offer's binding tag is the HMAC of: the
// offer's purpose, the paywall's service, the network, the invoice's
// payment hash and its amount in msat.
func (p *Paywall) x402Binding(network string, hash [32]byte, amountMsat string) string {
	return "x402|" + p.service + "|" + network + "|" + hex.EncodeToString(hash[:]) + "|" + amountMsat
}

// requestURL is the absolute URL of r, as the client asked for it.
func requestURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.RequestURI()
}

// invoiceNetwork names the network of one of the node's BOLT 11 invoices,
// from its prefix, as lnd and the Payment drafts name it: mainnet,
// testnet, signet or regtest ("" for another).
func invoiceNetwork(invoice string) string {
	for _, n := range [...]struct{ prefix, name string }{
		{"lnbcrt", mpp.NetworkRegtest}, {"lnbc", mpp.NetworkMainnet}, {"lntbs", mpp.NetworkSignet}, {"lntb", "testnet"},
	} {
		if len(invoice) >= len(n.prefix) && strings.EqualFold(invoice[:len(n.prefix)], n.prefix) {
			return n.name
		}
	}
	return ""
}

// admitOnce admits one request for the payment of pr, proved in dialect
// (charge, x402): it claims the payment hash in the ledger, the claim
// every dialect makes, and answers with success on a 2xx; a payment
// claimed before gets used() instead.
func (p *Paywall) admitOnce(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, pr proof, price int64, dialect string, success successHeader, used func() error) error {
	if err := p.led.ready(r.Context()); err != nil {
		return p.ledgerFailed(w, r, "load", err)
	}
	first, err := p.claim(r.Context(), pr)
	if err != nil {
		return p.ledgerFailed(w, r, "claim", err)
	}
	if !first {
		p.metrics.used.Inc()
		p.metrics.dialect(dialect, resultUsed)
		return used()
	}
	p.metrics.admitted.Inc()
	p.metrics.dialect(dialect, resultAdmitted)
	return p.admit(w, r, next, pr, price, &paidResponse{success: success, exposeSuccess: r.Header.Get("Origin") != ""})
}
