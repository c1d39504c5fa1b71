package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	mpp "github.com/lightningcaddy/caddy-lightning/payment"
	"github.com/lightningcaddy/caddy-lightning/x402"
)

// apiPath is the demo's per-request API: every dialect, one request per
// payment.
const apiPath = "/api/quote"

// offered is one 402 of the API, read in every dialect.
type offered struct {
	body   challengeBody
	charge mpp.Challenge
	x402   x402.Requirements
}

// offer asks the API without credentials and reads its offers.
func (w *walkthrough) offer(ctx context.Context) (offered, error) {
	ex, err := w.call(ctx, http.MethodGet, apiPath, http.Header{"Accept": {"application/json"}}, nil)
	if err != nil {
		return offered{}, err
	}
	var o offered
	if ex.status != http.StatusPaymentRequired || json.Unmarshal(ex.body, &o.body) != nil {
		return o, fmt.Errorf("want 402 with a challenge, got %d", ex.status)
	}
	lines := ex.header.Values("WWW-Authenticate")
	for _, c := range mpp.ParseChallenges(lines) {
		if c.Intent == mpp.IntentCharge {
			o.charge = c
		}
	}
	req, err := x402.DecodePaymentRequired(ex.header.Get(x402.HeaderPaymentRequired))
	switch {
	case err != nil:
		return o, fmt.Errorf("PAYMENT-REQUIRED: %w", err)
	case len(lines) != 3 || !strings.HasPrefix(lines[1], "L402 ") || o.charge.ID == "":
		return o, fmt.Errorf("want the LSAT, L402 and Payment lines, got %d lines", len(lines))
	case req.Accepts[0].Extra.Invoice != o.body.Invoice:
		return o, errors.New("the x402 offer is not for the 402's invoice")
	}
	o.x402 = req.Accepts[0]
	return o, nil
}

// pay pays an invoice from bob and returns the preimage.
func (w *walkthrough) pay(ctx context.Context, invoice string) ([32]byte, error) {
	var p [32]byte
	raw, err := w.network.Bob.PayInvoice(ctx, invoice)
	if err != nil {
		return p, err
	}
	copy(p[:], raw)
	w.p.note("bob paid %s: preimage %s", short(invoice), hex.EncodeToString(p[:]))
	return p, nil
}

// redeem presents a credential and checks the answer: 200 with the
// dialect's success header, or 402.
func (w *walkthrough) redeem(ctx context.Context, header http.Header, want int, success string) error {
	ex, err := w.call(ctx, http.MethodGet, apiPath, header, nil)
	if err != nil {
		return err
	}
	switch {
	case ex.status != want:
		return fmt.Errorf("want %d, got %d", want, ex.status)
	case want == http.StatusOK && success != "" && ex.header.Get(success) == "":
		return fmt.Errorf("no %s header", success)
	}
	return nil
}

// dialects is step h: one 402 with every offer, and one paid request per
// dialect; the charge presented again, and the x402 payment's invoice
// presented as a charge, get 402.
func (w *walkthrough) dialects(ctx context.Context) (string, error) {
	// The Payment charge.
	o, err := w.offer(ctx)
	if err != nil {
		return "", err
	}
	preimage, err := w.pay(ctx, o.body.Invoice)
	if err != nil {
		return "", err
	}
	charge, err := (&mpp.Credential{Challenge: o.charge, Payload: mpp.ChargePayloadJSON(preimage)}).Format()
	if err != nil {
		return "", err
	}
	w.p.note("Payment charge: the echoed challenge and the preimage, base64url JSON")
	if err := w.redeem(ctx, http.Header{"Authorization": {charge}}, http.StatusOK, mpp.ReceiptHeader); err != nil {
		return "", fmt.Errorf("charge: %w", err)
	}
	w.p.note("the same charge again: the payment is spent")
	if err := w.redeem(ctx, http.Header{"Authorization": {charge}, "Accept": {"application/json"}}, http.StatusPaymentRequired, ""); err != nil {
		return "", fmt.Errorf("charge again: %w", err)
	}

	// x402: the invoice alone; the paywall asks the node.
	if o, err = w.offer(ctx); err != nil {
		return "", err
	}
	if preimage, err = w.pay(ctx, o.body.Invoice); err != nil {
		return "", err
	}
	sig, err := x402.PaymentPayload{Scheme: o.x402.Scheme, Network: o.x402.Network, Accepted: o.x402,
		Payload: x402.LightningPayload{Invoice: o.x402.Extra.Invoice}}.Encode()
	if err != nil {
		return "", err
	}
	w.p.note("x402: PAYMENT-SIGNATURE holds the accepted offer and the paid invoice (no preimage)")
	if err := w.redeem(ctx, http.Header{http.CanonicalHeaderKey(x402.HeaderPaymentSignature): {sig}}, http.StatusOK, x402.HeaderPaymentResponse); err != nil {
		return "", fmt.Errorf("x402: %w", err)
	}
	w.p.note("the same payment as a charge: one payment buys one request, whatever the dialect")
	charge, err = (&mpp.Credential{Challenge: o.charge, Payload: mpp.ChargePayloadJSON(preimage)}).Format()
	if err != nil {
		return "", err
	}
	if err := w.redeem(ctx, http.Header{"Authorization": {charge}, "Accept": {"application/json"}}, http.StatusPaymentRequired, ""); err != nil {
		return "", fmt.Errorf("charge of the x402 payment: %w", err)
	}

	// L402.
	if o, err = w.offer(ctx); err != nil {
		return "", err
	}
	if preimage, err = w.pay(ctx, o.body.Invoice); err != nil {
		return "", err
	}
	l402 := "L402 " + o.body.Token + ":" + hex.EncodeToString(preimage[:])
	if err := w.redeem(ctx, http.Header{"Authorization": {l402}}, http.StatusOK, ""); err != nil {
		return "", fmt.Errorf("L402: %w", err)
	}
	return "one 402 with three offers; a charge, an x402 payment and an L402 token each bought one request, none twice", nil
}
