package lightning

import (
	"encoding/hex"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/lightningcaddy/caddy-lightning/internal/errdetail"
	mpp "github.com/lightningcaddy/caddy-lightning/payment"
)

// servePayment answers a request that carries a credential of the Payment
// scheme (Authorization: Payment …), by its intent. An intent the
// paywall does not offer gets 400 (method-unsupported).
func (p *Paywall) servePayment(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, cred mpp.Credential, price int64) error {
	switch intent := cred.Challenge.Intent; {
	case intent == mpp.IntentCharge && p.offers(offerCharge):
		return p.serveCharge(w, r, next, cred, price)
	default:
		err := errdetail.New(mpp.ErrUnsupported, "this route does not offer "+errdetail.Quote(cred.Challenge.Method)+"/"+errdetail.Quote(intent))
		return p.paymentRefused(w, r, price, offerCharge, mpp.ProblemFor(err, intent))
	}
}

// serveCharge admits one request for a Lightning charge credential: the
// challenge it echoes was bound here (HMAC), is of this paywall's realm
// (its service) and price, has not expired, and the preimage pays its
// invoice; no call to the node. The payment hash is then claimed in the
// ledger, as every dialect's is: a payment redeemed once, under any
// dialect, is refused (402 with a fresh challenge). The answer carries
// Payment-Receipt.
func (p *Paywall) serveCharge(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, cred mpp.Credential, price int64) error {
	snap, err := p.tokens.current(p.app.ctx.Context)
	if err != nil {
		return p.failed(w, r, "cannot load the paywalls' shared token state", err)
	}
	if snap.challenges == nil {
		return p.failed(w, r, "no challenge secret loaded", nil)
	}
	v := mpp.Verifier{Realm: p.service, Binder: snap.challenges.binder}
	vc, err := v.VerifyCharge(&cred, price, now())
	if err != nil {
		return p.paymentRefused(w, r, price, offerCharge, mpp.ProblemFor(err, mpp.IntentCharge))
	}
	receipt := mpp.Receipt{
		Method:      mpp.MethodLightning,
		Reference:   hex.EncodeToString(vc.PaymentHash[:]),
		Timestamp:   now(),
		ChallengeID: vc.ChallengeID,
	}
	encoded, err := receipt.Encode()
	if err != nil {
		return p.failed(w, r, "cannot write the payment receipt", err)
	}
	// A token for the same invoice opens the paywall until the invoice's
	// expiry plus valid_for: the claim lasts as long.
	pr := proof{paymentHash: vc.PaymentHash, credentialFacts: credentialFacts{
		expires: vc.Expires.Add(time.Duration(p.ValidFor) + time.Second),
		amount:  price,
	}}
	return p.admitOnce(w, r, next, pr, price, offerCharge, successHeader{mpp.ReceiptHeader, encoded}, func() error {
		prob := mpp.NewProblem(mpp.ProblemLightningUnknownChallenge, "this payment was used already: each payment admits one request")
		return p.challengeRefusing(w, r, http.StatusPaymentRequired, p.offer(price), prob.Detail, refusal{problem: &prob})
	})
}

// paymentRefused answers a refused Payment credential with the problem:
// 400 alone for method-unsupported and for several credentials, else 402
// with fresh challenges and the problem as the body.
func (p *Paywall) paymentRefused(w http.ResponseWriter, r *http.Request, price int64, dialect string, prob mpp.Problem) error {
	p.metrics.refused(dialect)
	if prob.Status != http.StatusPaymentRequired {
		p.metrics.challenge(prob.Status)
		h := w.Header()
		h.Set("Content-Type", mpp.ProblemContentType)
		h.Set("Cache-Control", "no-store")
		exposeToOtherOrigins(r, h)
		w.WriteHeader(prob.Status)
		_, err := w.Write(prob.JSON())
		return err
	}
	return p.challengeRefusing(w, r, http.StatusPaymentRequired, p.offer(price), prob.Detail, refusal{problem: &prob})
}
