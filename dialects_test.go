package lightning

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/lightningcaddy/caddy-lightning/l402"
	"github.com/lightningcaddy/caddy-lightning/lnd/lndtest"
	mpp "github.com/lightningcaddy/caddy-lightning/payment"
	"github.com/lightningcaddy/caddy-lightning/x402"
)

// dialectOffer is one 402 read in every dialect.
type dialectOffer struct {
	challenge                   // the JSON body and headers
	lines     []string          // WWW-Authenticate lines, in order
	charge    mpp.Challenge     // the Payment charge challenge
	x402      x402.Requirements // the x402 offer
	required  x402.PaymentRequired
}

// getOffer gets a 402 at url and reads its offers.
func getOffer(t testing.TB, url string) dialectOffer {
	t.Helper()
	o := dialectOffer{challenge: getChallenge(t, url, nil, http.StatusPaymentRequired)}
	o.lines = o.Header.Values("WWW-Authenticate")
	for _, c := range mpp.ParseChallenges(o.lines) {
		if c.Intent == mpp.IntentCharge {
			o.charge = c
		}
	}
	if v := o.Header.Get(x402.HeaderPaymentRequired); v != "" {
		req, err := x402.DecodePaymentRequired(v)
		if err != nil {
			t.Fatal(err)
		}
		o.required, o.x402 = req, req.Accepts[0]
	}
	return o
}

// chargeAuth is the Authorization header of a charge credential answering c
// with preimage.
func chargeAuth(t testing.TB, c mpp.Challenge, preimage [32]byte) http.Header {
	t.Helper()
	cred := mpp.Credential{Challenge: c, Payload: mpp.ChargePayloadJSON(preimage)}
	v, err := cred.Format()
	if err != nil {
		t.Fatal(err)
	}
	return auth(v)
}

// x402Header is the PAYMENT-SIGNATURE header paying offer, as Alby sends it.
func x402Header(t testing.TB, offer x402.Requirements) http.Header {
	t.Helper()
	v, err := x402.PaymentPayload{Scheme: offer.Scheme, Network: offer.Network, Accepted: offer,
		Payload: x402.LightningPayload{Invoice: offer.Extra.Invoice}}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return http.Header{x402.HeaderPaymentSignature: {v}}
}

// TestOffersOneChallenge: a per_request 402 offers L402, the Payment charge
// and x402 on one invoice (one AddInvoice), in the recommended order: the
// L402 line first (Alby's fetch402 and lnget pay it; lnget preferring
// Payment takes the charge); the charge request and x402 offer are the
// invoice's, at the price, on the node's network, and expire with it.
func TestOffersOneChallenge(t *testing.T) {
	base, node := startPaywall(t, "10 {\n\t\tmode per_request\n\t\tservice api\n\t}")
	before := node.Calls("AddInvoice")
	o := getOffer(t, base+"/paid/")
	if n := node.Calls("AddInvoice") - before; n != 1 {
		t.Fatalf("%d AddInvoice calls for one 402", n)
	}
	if len(o.lines) != 3 || !strings.HasPrefix(o.lines[0], "LSAT macaroon=") || !strings.HasPrefix(o.lines[1], "L402 ") || !strings.HasPrefix(o.lines[2], "Payment id=") {
		t.Fatalf("WWW-Authenticate = %q", o.lines)
	}
	req, err := mpp.DecodeChargeRequest(o.charge.Request)
	if err != nil {
		t.Fatal(err)
	}
	hash := hex.EncodeToString(req.MethodDetails.PaymentHash[:])
	inv, _ := time.Parse(time.RFC3339, o.Body.ExpiresAt)
	expires, _ := o.charge.ExpiresAt()
	switch {
	case o.charge.Realm != "api" || o.charge.Method != "lightning" || o.charge.ID == "":
		t.Errorf("charge challenge %+v", o.charge)
	case req.Amount != 10 || req.MethodDetails.Invoice != o.Body.Invoice || hash != o.Body.PaymentHash || req.MethodDetails.Network != "regtest":
		t.Errorf("charge request %+v", req)
	case expires.After(inv):
		t.Errorf("challenge expires %v after the invoice %v", expires, inv)
	case o.x402.Extra.Invoice != o.Body.Invoice || o.x402.Amount != "10000" || o.x402.Network != x402.NetworkRegtest || o.x402.Extra.Binding == "":
		t.Errorf("x402 offer %+v", o.x402)
	case o.required.Resource.URL != base+"/paid/" || o.required.Error != x402.DefaultError:
		t.Errorf("PAYMENT-REQUIRED %+v", o.required)
	case o.Header.Get("Cache-Control") != "no-store":
		t.Errorf("Cache-Control %q", o.Header.Get("Cache-Control"))
	}

	// Joined into one string, as fetch clients see them, an RFC 9110 parser
	// (as Aperture-style clients use) still finds both dialects.
	joined := strings.Join(o.lines, ", ")
	if cs := mpp.ParseChallenges([]string{joined}); len(cs) != 1 || cs[0] != o.charge {
		t.Errorf("Payment challenges in the joined header: %+v", cs)
	}
	if c, err := l402.ParseChallenge([]string{joined}); err != nil || c.Invoice != o.Body.Invoice || c.Token != o.Body.Token {
		t.Errorf("L402 challenge in the joined header: %+v, %v", c, err)
	}

	// The offers' order is the configured one: charge first for Alby's
	// fetchWithMpp; x402 alone has no WWW-Authenticate line.
	base, _ = startPaywall(t, "10 {\n\t\tmode per_request\n\t\toffers charge l402 x402\n\t}")
	if o := getOffer(t, base+"/paid/"); len(o.lines) != 3 || !strings.HasPrefix(o.lines[0], "Payment ") || !strings.HasPrefix(o.lines[1], "LSAT ") {
		t.Errorf("offers charge l402 x402: %q", o.lines)
	}
	base, _ = startPaywall(t, "10 {\n\t\tmode per_request\n\t\toffers x402\n\t}")
	if o := getOffer(t, base+"/paid/"); len(o.lines) != 0 || o.x402.Extra.Invoice == "" {
		t.Errorf("offers x402: %q, %+v", o.lines, o.x402)
	}
	// A pass offers L402 alone.
	base, _ = startPaywall(t, "10")
	if o := getOffer(t, base+"/paid/"); len(o.lines) != 2 || o.Header.Get(x402.HeaderPaymentRequired) != "" {
		t.Errorf("pass: %q, PAYMENT-REQUIRED %q", o.lines, o.Header.Get(x402.HeaderPaymentRequired))
	}
}

// TestChargeAdmitsOnce: a charge credential admits one request with a
// Payment-Receipt, and nothing else: presented again it gets 402 with a
// fresh challenge and an unknown-challenge problem, and the same payment
// buys nothing under L402 or x402 either.
func TestChargeAdmitsOnce(t *testing.T) {
	base, node := startPaywall(t, "10 {\n\t\tmode per_request\n\t\tservice api\n\t}")
	counted := func(dialect, result string) float64 { return dialectCount(t, "api", dialect, result) }
	defer func(admitted, used, l402Used, x402Used float64) {
		for _, c := range []struct {
			dialect, result string
			before, want    float64
		}{{"charge", "admitted", admitted, 1}, {"charge", "used", used, 1}, {"l402", "used", l402Used, 1}, {"x402", "used", x402Used, 1}} {
			if got := counted(c.dialect, c.result) - c.before; got != c.want {
				t.Errorf("paywall_dialect_total{dialect=%q,result=%q} grew by %v, want %v", c.dialect, c.result, got, c.want)
			}
		}
	}(counted("charge", "admitted"), counted("charge", "used"), counted("l402", "used"), counted("x402", "used"))
	o := getOffer(t, base+"/paid/")
	preimage := settleAndProve(t, node, o.challenge)
	calls := node.Calls("LookupInvoice")
	h := chargeAuth(t, o.charge, preimage)
	resp, body := get(t, base+"/paid/", h)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, "paid 10 api "+o.Body.PaymentHash) || strings.Contains(body, "Payment ") {
		t.Fatalf("charge: %d %s", resp.StatusCode, body)
	}
	if n := node.Calls("LookupInvoice") - calls; n != 0 {
		t.Errorf("charge verification called the node %d times", n)
	}
	receipt, err := mpp.ParseReceipt(resp.Header.Get(mpp.ReceiptHeader))
	if err != nil || receipt.Reference != o.Body.PaymentHash || receipt.ChallengeID != o.charge.ID || receipt.Method != "lightning" {
		t.Errorf("receipt %+v, %v", receipt, err)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "private" {
		t.Errorf("Cache-Control %q", cc)
	}

	resp, body = get(t, base+"/paid/", h)
	var prob mpp.Problem
	if err := json.Unmarshal([]byte(body), &prob); err != nil || resp.StatusCode != http.StatusPaymentRequired ||
		resp.Header.Get("Content-Type") != mpp.ProblemContentType || prob.Type != mpp.ProblemLightningUnknownChallenge.URI() {
		t.Fatalf("replay: %d %q %v", resp.StatusCode, body, err)
	}
	fresh := mpp.ParseChallenges(resp.Header.Values("WWW-Authenticate"))
	if len(fresh) != 1 || fresh[0].ID == o.charge.ID || prob.ChallengeID != fresh[0].ID {
		t.Errorf("replay: fresh challenges %+v, problem %+v", fresh, prob)
	}
	getChallenge(t, base+"/paid/", auth(l402Auth(o.Body.Token, preimage)), http.StatusPaymentRequired)
	if resp, body := get(t, base+"/paid/", x402Header(t, o.x402)); resp.StatusCode != http.StatusPaymentRequired {
		t.Errorf("x402 after charge: %d %s", resp.StatusCode, body)
	}
}

// TestX402AdmitsOnce: an x402 payment admits one request once the node has
// settled its invoice, with PAYMENT-RESPONSE; presented again, or paid
// under another dialect after it, it buys nothing.
func TestX402AdmitsOnce(t *testing.T) {
	base, node := startPaywall(t, "10 {\n\t\tmode per_request\n\t\tservice api\n\t}")
	o := getOffer(t, base+"/paid/")
	h := x402Header(t, o.x402)

	// Unpaid: 402, with the reason in PAYMENT-RESPONSE and a new offer.
	resp, _ := get(t, base+"/paid/", h)
	if resp.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("unpaid: %d", resp.StatusCode)
	}
	failure, err := x402.DecodeSettlementResponse(resp.Header.Get(x402.HeaderPaymentResponse))
	if err != nil || failure.Success || failure.ErrorReason != x402.ReasonInvalidTransaction {
		t.Errorf("unpaid: PAYMENT-RESPONSE %+v, %v", failure, err)
	}

	preimage := settleAndProve(t, node, o.challenge)
	resp, body := get(t, base+"/paid/", h)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, "paid 10 api "+o.Body.PaymentHash) {
		t.Fatalf("x402: %d %s", resp.StatusCode, body)
	}
	settled, err := x402.DecodeSettlementResponse(resp.Header.Get(x402.HeaderPaymentResponse))
	if err != nil || !settled.Success || settled.Transaction != o.Body.Invoice || settled.Network != x402.NetworkRegtest {
		t.Errorf("PAYMENT-RESPONSE %+v, %v", settled, err)
	}
	resp, _ = get(t, base+"/paid/", h)
	if resp.StatusCode != http.StatusPaymentRequired {
		t.Errorf("replay: %d", resp.StatusCode)
	}
	if r, err := x402.DecodePaymentRequired(resp.Header.Get(x402.HeaderPaymentRequired)); err != nil || r.Accepts[0].Extra.Invoice == o.Body.Invoice || !strings.Contains(r.Error, "used already") {
		t.Errorf("replay: PAYMENT-REQUIRED %+v, %v", r, err)
	}
	if resp, body := get(t, base+"/paid/", chargeAuth(t, o.charge, preimage)); resp.StatusCode != http.StatusPaymentRequired {
		t.Errorf("charge after x402: %d %s", resp.StatusCode, body)
	}
	getChallenge(t, base+"/paid/", auth(l402Auth(o.Body.Token, preimage)), http.StatusPaymentRequired)
}

// TestDialectsOneRedemption: one payment presented under all three dialects
// at once admits exactly one request.
func TestDialectsOneRedemption(t *testing.T) {
	base, node := startPaywall(t, "10 {\n\t\tmode per_request\n\t}")
	for range 5 {
		o := getOffer(t, base+"/paid/")
		preimage := settleAndProve(t, node, o.challenge)
		headers := []http.Header{chargeAuth(t, o.charge, preimage), x402Header(t, o.x402), auth(l402Auth(o.Body.Token, preimage))}
		statuses := make(chan int, 3*len(headers))
		for range 3 {
			for _, h := range headers {
				go func() {
					req, _ := http.NewRequest(http.MethodGet, base+"/paid/", nil)
					req.Header = h
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						statuses <- 0
						return
					}
					resp.Body.Close()
					statuses <- resp.StatusCode
				}()
			}
		}
		ok := 0
		for range 3 * len(headers) {
			switch s := <-statuses; s {
			case http.StatusOK:
				ok++
			case http.StatusPaymentRequired:
			default:
				t.Errorf("status %d", s)
			}
		}
		if ok != 1 {
			t.Fatalf("one payment admitted %d requests", ok)
		}
	}
}

// TestDialectsBadInput: malformed, tampered, expired, wrong-realm,
// wrong-amount, cross-route, wrong-network and replayed credentials of the
// Payment charge, x402 and L402 get 402 (400 where the dialect says: a
// malformed x402 header, an intent not offered, two Payment credentials;
// 401 for a bad L402 credential), never the upstream, and the paywall pays
// nothing.
func TestDialectsBadInput(t *testing.T) {
	node := lndtest.Start(t)
	route := func(path, block string) string {
		return fmt.Sprintf("\troute %s {\n\t\tpaywall %s\n\t\t%s\n\t}\n", path, block, upstream)
	}
	base := startCaddy(t, lndOption(node), route("/a/*", "10 {\n\t\tmode per_request\n\t\tservice a\n\t\tinvoices_per_client off\n\t}")+
		route("/b/*", "10 {\n\t\tmode per_request\n\t\tservice b\n\t\tinvoices_per_client off\n\t}")+
		route("/a20/*", "20 {\n\t\tmode per_request\n\t\tservice a\n\t\tinvoices_per_client off\n\t}")+
		"\trespond \"free\"")
	o := getOffer(t, base+"/a/")
	preimage := settleAndProve(t, node, o.challenge)
	used := getOffer(t, base+"/a/")
	usedPreimage := settleAndProve(t, node, used.challenge)
	if resp, _ := get(t, base+"/a/", chargeAuth(t, used.charge, usedPreimage)); resp.StatusCode != http.StatusOK {
		t.Fatalf("first use: %d", resp.StatusCode)
	}
	usedX := getOffer(t, base+"/a/")
	settleAndProve(t, node, usedX.challenge)
	if resp, _ := get(t, base+"/a/", x402Header(t, usedX.x402)); resp.StatusCode != http.StatusOK {
		t.Fatalf("first use: %d", resp.StatusCode)
	}

	with := func(f func(c *mpp.Challenge)) mpp.Challenge { c := o.charge; f(&c); return c }
	withX := func(f func(r *x402.Requirements)) x402.Requirements {
		r := o.x402
		f(&r)
		return r
	}
	var wrong [32]byte
	copy(wrong[:], preimage[:])
	wrong[0] ^= 1
	twoCreds := chargeAuth(t, o.charge, preimage)
	twoCreds.Add("Authorization", twoCreds.Get("Authorization"))
	sessionCred := chargeAuth(t, with(func(c *mpp.Challenge) { c.Intent = mpp.IntentSession }), preimage)
	rows := []struct {
		name   string
		path   string
		header http.Header
		status int
	}{
		{"charge malformed", "/a/", auth("Payment not-base64!"), 402},
		{"charge malformed JSON", "/a/", auth("Payment " + mpp.EncodeBase64URL([]byte(`{"challenge":{}}`))), 402},
		{"charge tampered request", "/a/", chargeAuth(t, with(func(c *mpp.Challenge) { c.Request = used.charge.Request }), preimage), 402},
		{"charge tampered id", "/a/", chargeAuth(t, with(func(c *mpp.Challenge) { c.ID = used.charge.ID }), preimage), 402},
		{"charge tampered expiry", "/a/", chargeAuth(t, with(func(c *mpp.Challenge) { c.Expires = "2099-01-01T00:00:00Z" }), preimage), 402},
		{"charge expired", "/a/", chargeAuth(t, with(func(c *mpp.Challenge) { c.Expires = "2020-01-01T00:00:00Z" }), preimage), 402},
		{"charge wrong preimage", "/a/", chargeAuth(t, o.charge, wrong), 402},
		{"charge wrong realm", "/a/", chargeAuth(t, with(func(c *mpp.Challenge) { c.Realm = "b" }), preimage), 402},
		{"charge cross-route", "/b/", chargeAuth(t, o.charge, preimage), 402},
		{"charge wrong amount", "/a20/", chargeAuth(t, o.charge, preimage), 402},
		{"charge replayed", "/a/", chargeAuth(t, used.charge, usedPreimage), 402},
		{"charge intent not offered", "/a/", sessionCred, 400},
		{"charge twice", "/a/", twoCreds, 400},
		{"x402 malformed", "/a/", http.Header{x402.HeaderPaymentSignature: {"%%%"}}, 400},
		{"x402 malformed JSON", "/a/", http.Header{x402.HeaderPaymentSignature: {"W10="}}, 400},
		{"x402 no version", "/a/", http.Header{x402.HeaderPaymentSignature: {"e30="}}, 402},
		{"x402 two headers", "/a/", http.Header{x402.HeaderPaymentSignature: {"e30=", "e30="}}, 400},
		{"x402 tampered binding", "/a/", x402Header(t, withX(func(r *x402.Requirements) { r.Extra.Binding = usedX.x402.Extra.Binding })), 402},
		{"x402 tampered invoice", "/a/", x402Header(t, withX(func(r *x402.Requirements) { r.Extra.Invoice = usedX.x402.Extra.Invoice })), 402},
		{"x402 no binding", "/a/", x402Header(t, withX(func(r *x402.Requirements) { r.Extra.Binding = "" })), 402},
		{"x402 wrong amount claimed", "/a/", x402Header(t, withX(func(r *x402.Requirements) { r.Amount = "1000" })), 402},
		{"x402 wrong network", "/a/", x402Header(t, withX(func(r *x402.Requirements) { r.Network = x402.NetworkMainnet })), 402},
		{"x402 wrong version", "/a/", func() http.Header {
			v, _ := x402.PaymentPayload{X402Version: 2, Accepted: o.x402, Payload: x402.LightningPayload{Invoice: o.x402.Extra.Invoice}}.Encode()
			raw, _ := x402Decode(v)
			return http.Header{x402.HeaderPaymentSignature: {x402Encode(strings.Replace(raw, `"x402Version":2`, `"x402Version":1`, 1))}}
		}(), 402},
		{"x402 cross-route", "/b/", x402Header(t, o.x402), 402},
		{"x402 wrong price", "/a20/", x402Header(t, o.x402), 402},
		{"x402 replayed", "/a/", x402Header(t, usedX.x402), 402},
		{"l402 malformed", "/a/", auth("L402 !!!:" + hex.EncodeToString(preimage[:])), 401},
		{"l402 tampered", "/a/", auth(l402Auth(tampered(o.Body.Token), preimage)), 401},
		{"l402 wrong preimage", "/a/", auth(l402Auth(o.Body.Token, wrong)), 401},
		{"l402 cross-route", "/b/", auth(l402Auth(o.Body.Token, preimage)), 401},
		{"l402 wrong amount", "/a20/", auth(l402Auth(o.Body.Token, preimage)), 401},
		{"l402 replayed", "/a/", auth(l402Auth(used.Body.Token, usedPreimage)), 402},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			resp, body := get(t, base+row.path, row.header)
			if resp.StatusCode != row.status || strings.Contains(body, "paid ") {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			if row.status == http.StatusPaymentRequired && (len(resp.Header.Values("WWW-Authenticate")) != 3 || resp.Header.Get(x402.HeaderPaymentRequired) == "") {
				t.Errorf("no fresh challenges: %d lines", len(resp.Header.Values("WWW-Authenticate")))
			}
		})
	}
	// Expiry by the clock: the genuine challenge, answered after it expired.
	t.Run("expired by the clock", func(t *testing.T) {
		now = func() time.Time { return time.Now().Add(time.Hour + 10*time.Minute) }
		defer func() { now = time.Now }()
		for _, h := range []http.Header{chargeAuth(t, o.charge, preimage), x402Header(t, o.x402)} {
			if resp, body := get(t, base+"/a/", h); resp.StatusCode != http.StatusPaymentRequired {
				t.Errorf("%d %s", resp.StatusCode, body)
			}
		}
		now = func() time.Time { return time.Now().Add(2 * time.Hour) } // past the token's 1h10m
		getChallenge(t, base+"/a/", auth(l402Auth(o.Body.Token, preimage)), http.StatusUnauthorized)
	})
	// The genuine credential still works once: nothing above consumed it.
	if resp, body := get(t, base+"/a/", chargeAuth(t, o.charge, preimage)); resp.StatusCode != http.StatusOK {
		t.Errorf("genuine after the table: %d %s", resp.StatusCode, body)
	}
	if n := node.Calls("SendPaymentV2"); n != 0 {
		t.Errorf("%d payments sent", n)
	}
}

func x402Decode(v string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(v)
	return string(b), err
}

func x402Encode(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestOffersConfigErrors: the offers option names known dialects, each
// once; the one-time payments go with per_request and an invoice_expiry of
// at most a day.
func TestOffersConfigErrors(t *testing.T) {
	node := lndtest.Start(t)
	paywall := func(block string) string {
		return "\troute /paid/* {\n\t\tpaywall {\n" + block + "\n\t\t}\n\t\trespond \"x\"\n\t}"
	}
	for _, tt := range []struct{ name, site, want string }{
		{"unknown offer", paywall("price 1\nmode per_request\noffers l402 session"), `offers: "session" is not l402, charge or x402`},
		{"offer twice", paywall("price 1\nmode per_request\noffers charge charge"), "offers: charge is named twice"},
		{"no offer", paywall("price 1\nmode per_request\noffers"), "wrong argument count"},
		{"charge on a pass", paywall("price 1\noffers l402 charge"), "charge is a one-time payment, which goes with mode per_request"},
		{"x402 prepaid", paywall("price 1\nmode prepaid\noffers x402"), "x402 is a one-time payment"},
		{"long invoice", paywall("price 1\nmode per_request\ninvoice_expiry 25h"), "with charge, invoice_expiry may be at most 24h"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := validateConfig(t, node, "", tt.site)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	for _, block := range []string{"price 1\nmode per_request\noffers x402 charge", "price 1\noffers l402", "price 1\nmode prepaid", "price 1\nmode per_request\noffers l402\ninvoice_expiry 48h"} {
		if err := validateConfig(t, node, "", paywall(block)); err != nil {
			t.Errorf("%q: %v", block, err)
		}
	}
}

// TestChargeAcrossRotation: rotate_key rotates the challenge secret with
// the root keys: a charge challenge bound before a rotation is still paid
// for after it, and refused once drop_old drops the old secret; the status
// endpoint counts the secrets and lists each paywall's offers.
func TestChargeAcrossRotation(t *testing.T) {
	node := lndtest.Start(t)
	base, admin := startCaddyWithAdmin(t, t.TempDir(), lndOption(node),
		"\troute /paid/* {\n\t\tpaywall 10 {\n\t\t\tmode per_request\n\t\t\tservice api\n\t\t}\n\t\t"+upstream+"\n\t}")
	status := func() adminStatus {
		var st adminStatus
		if code := adminCall(t, http.MethodGet, admin+"/lightning/status", "", &st); code != http.StatusOK {
			t.Fatalf("status: %d", code)
		}
		return st
	}
	if st := status(); st.ChallengeSecrets != 1 || len(st.Paywalls) != 1 || strings.Join(st.Paywalls[0].Offers, " ") != "l402 charge x402" {
		t.Fatalf("status %+v", st)
	}
	before, dropped := getOffer(t, base+"/paid/"), getOffer(t, base+"/paid/")
	if code := adminCall(t, http.MethodPost, admin+"/lightning/rotate_key", `{}`, nil); code != http.StatusOK {
		t.Fatalf("rotate: %d", code)
	}
	after := getOffer(t, base+"/paid/")
	if st := status(); st.ChallengeSecrets != 2 || after.charge.ID == before.charge.ID {
		t.Fatalf("after a rotation: %d secrets", st.ChallengeSecrets)
	}
	for _, o := range []dialectOffer{before, after} {
		if resp, body := get(t, base+"/paid/", chargeAuth(t, o.charge, settleAndProve(t, node, o.challenge))); resp.StatusCode != http.StatusOK {
			t.Errorf("charge across the rotation: %d %s", resp.StatusCode, body)
		}
	}
	if code := adminCall(t, http.MethodPost, admin+"/lightning/rotate_key", `{"drop_old": true}`, nil); code != http.StatusOK {
		t.Fatalf("rotate: %d", code)
	}
	resp, body := get(t, base+"/paid/", chargeAuth(t, dropped.charge, settleAndProve(t, node, dropped.challenge)))
	if resp.StatusCode != http.StatusPaymentRequired || !strings.Contains(body, "unknown-challenge") || status().ChallengeSecrets != 1 {
		t.Errorf("charge of a dropped secret: %d %s", resp.StatusCode, body)
	}
}

// dialectCount reads paywall_dialect_total for service, dialect and result.
func dialectCount(t *testing.T, service, dialect, result string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(dialectRequests)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"service": service, "dialect": dialect, "result": result}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			match := true
			for _, l := range m.GetLabel() {
				match = match && want[l.GetName()] == l.GetValue()
			}
			if match {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// tampered changes one character in the middle of a base64 token.
func tampered(token string) string {
	b := []byte(token)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// TestDialectsAcrossInstances: two instances sharing Caddy's storage (the
// challenge secrets) and a ledger (as Redis is shared) honour each other's
// offers: a charge and an x402 payment from one instance's 402 admit one
// request on the other, and the payment is then spent on both.
func TestDialectsAcrossInstances(t *testing.T) {
	led := benchMemoryLedger(t)
	a, node := benchSellingPaywall(t, modePerRequest, led)
	appB := benchApp(t, a.node)
	appB.tokens = newTokenStore(a.tokens.storage, zap.NewNop())
	if err := appB.tokens.open(t.Context()); err != nil {
		t.Fatal(err)
	}
	b := *a
	b.app, b.tokens, b.settled = appB, appB.tokens, appB.settlements()
	b.verified, b.lookups, b.ready = newVerifiedCredentials(), newLookupGuard(&Rate{}), new(sync.Once)
	b.resolve()

	serve := func(p *Paywall, h http.Header) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/paid", nil)
		for k, v := range h {
			req.Header[http.CanonicalHeaderKey(k)] = v
		}
		rec := httptest.NewRecorder()
		if err := p.ServeHTTP(rec, req, okHandler); err != nil {
			t.Fatal(err)
		}
		return rec
	}
	offerOf := func(p *Paywall) dialectOffer {
		rec := serve(p, nil)
		o := dialectOffer{lines: rec.Header().Values("WWW-Authenticate")}
		o.Header = rec.Header()
		if err := json.Unmarshal(rec.Body.Bytes(), &o.Body); err != nil || rec.Code != http.StatusPaymentRequired {
			t.Fatalf("402: %d %v", rec.Code, err)
		}
		for _, c := range mpp.ParseChallenges(o.lines) {
			o.charge = c
		}
		req, err := x402.DecodePaymentRequired(rec.Header().Get(x402.HeaderPaymentRequired))
		if err != nil {
			t.Fatal(err)
		}
		o.x402 = req.Accepts[0]
		return o
	}

	charged := offerOf(a)
	preimage := settleAndProve(t, node, charged.challenge)
	if rec := serve(&b, chargeAuth(t, charged.charge, preimage)); rec.Code != http.StatusOK || rec.Header().Get(mpp.ReceiptHeader) == "" {
		t.Fatalf("A's charge on B: %d %s", rec.Code, rec.Body)
	}
	if rec := serve(a, chargeAuth(t, charged.charge, preimage)); rec.Code != http.StatusPaymentRequired {
		t.Errorf("the charge again on A: %d", rec.Code)
	}
	paid := offerOf(&b)
	settleAndProve(t, node, paid.challenge)
	if rec := serve(a, x402Header(t, paid.x402)); rec.Code != http.StatusOK || rec.Header().Get(x402.HeaderPaymentResponse) == "" {
		t.Fatalf("B's x402 offer on A: %d %s", rec.Code, rec.Body)
	}
	if rec := serve(&b, x402Header(t, paid.x402)); rec.Code != http.StatusPaymentRequired {
		t.Errorf("the x402 payment again on B: %d", rec.Code)
	}
}
