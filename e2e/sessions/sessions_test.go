package sessions

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/lightningcaddy/caddy-lightning/internal/caddyrun"
	mpp "github.com/lightningcaddy/caddy-lightning/payment"
)

// price and deposit of the site's sessions, in sats.
const (
	price   = 7
	deposit = 100
)

// startCaddy runs Caddy with alice as the node and a route /s/ that sells
// sessions (service shop), until the test ends; it returns the route's URL.
func startCaddy(t *testing.T) string {
	t.Helper()
	return startCaddyWith(t, "")
}

// startCaddyWith is startCaddy with more routes in the site.
func startCaddyWith(t *testing.T, routes string) string {
	t.Helper()
	if network == nil {
		t.Skip("needs the regtest network; not started under -short")
	}
	port, err := caddyrun.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`{
	admin off
	auto_https off
	persist_config off
	storage file_system %s
	log {
		level WARN
	}
	lightning {
		%s
	}
}

http://127.0.0.1:%d {
	route /s/* {
		paywall %d {
			service shop
			session {
				deposit %d
			}
		}
		respond "content"
	}
%s
}
`, t.TempDir(), network.Alice.CaddyLND(), port, price, deposit, routes)
	if err := caddyrun.Load(string(caddyfile.Format([]byte(cfg)))); err != nil {
		t.Fatalf("%v\n%s", err, cfg)
	}
	t.Cleanup(func() {
		if err := caddyrun.Stop(); err != nil {
			t.Errorf("stop Caddy: %v", err)
		}
	})
	return fmt.Sprintf("http://127.0.0.1:%d/s/", port)
}

var client = &http.Client{Timeout: 2 * time.Minute}

// get sends a GET with an optional Authorization header and returns the
// status, headers and body.
func get(t *testing.T, url, authorization string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// sessionChallenge gets a 402 and returns its session challenge and
// request.
func sessionChallenge(t *testing.T, url string) (mpp.Challenge, mpp.SessionRequest) {
	t.Helper()
	status, h, body := get(t, url, "")
	if status != http.StatusPaymentRequired {
		t.Fatalf("status %d, want 402: %s", status, body)
	}
	for _, c := range mpp.ParseChallenges(h.Values("WWW-Authenticate")) {
		if c.Intent == mpp.IntentSession {
			req, err := mpp.DecodeSessionRequest(c.Request)
			if err != nil {
				t.Fatal(err)
			}
			return c, req
		}
	}
	t.Fatalf("no session challenge in %q", h.Values("WWW-Authenticate"))
	return mpp.Challenge{}, mpp.SessionRequest{}
}

// credential is the Authorization value of a session action.
func credential(t *testing.T, c mpp.Challenge, p mpp.SessionPayload) string {
	t.Helper()
	payload, err := mpp.SessionPayloadJSON(p)
	if err != nil {
		t.Fatal(err)
	}
	cred := mpp.Credential{Challenge: c, Payload: payload}
	v, err := cred.Format()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// payDeposit pays a deposit invoice from bob and returns the preimage.
func payDeposit(t *testing.T, req mpp.SessionRequest) [32]byte {
	t.Helper()
	raw, err := network.Bob.PayInvoice(testContext(t), req.DepositInvoice)
	if err != nil {
		t.Fatal(err)
	}
	var preimage [32]byte
	copy(preimage[:], raw)
	return preimage
}

// bobInvoice is an invoice of bob's, as lncli prints it.
type bobInvoice struct {
	PaymentRequest string `json:"payment_request"`
	RHash          string `json:"r_hash"`
	State          string `json:"state"`
	AmtPaidSat     string `json:"amt_paid_sat"`
}

// returnInvoice adds an amountless invoice on bob's node.
func returnInvoice(t *testing.T) bobInvoice {
	t.Helper()
	out, err := network.Bob.Lncli(testContext(t), "addinvoice", "--memo", "session refund", "--expiry", "86400")
	if err != nil {
		t.Fatal(err)
	}
	var inv bobInvoice
	if err := json.Unmarshal(out, &inv); err != nil || inv.PaymentRequest == "" {
		t.Fatalf("addinvoice: %s %v", out, err)
	}
	return inv
}

// lookup reads one of bob's invoices.
func lookup(t *testing.T, hash string) bobInvoice {
	t.Helper()
	out, err := network.Bob.Lncli(testContext(t), "lookupinvoice", hash)
	if err != nil {
		t.Fatal(err)
	}
	var inv bobInvoice
	if err := json.Unmarshal(out, &inv); err != nil {
		t.Fatalf("lookupinvoice: %s %v", out, err)
	}
	return inv
}

// TestSessionRefund: bob opens a session with a deposit of 100, uses it
// for the open and n more requests at 7 sats, closes it, and his return
// invoice is settled with exactly 100 - 7(n+1) sats; a second close pays
// nothing and the session admits nothing more.
func TestSessionRefund(t *testing.T) {
	url := startCaddy(t)
	const n = 5
	c, req := sessionChallenge(t, url)
	if req.Amount != price || req.DepositAmount != deposit || req.IdleTimeout != 300 {
		t.Fatalf("session request %+v", req)
	}
	preimage := payDeposit(t, req)
	ret := returnInvoice(t)
	status, _, body := get(t, url, credential(t, c, mpp.SessionPayload{Action: mpp.ActionOpen, Preimage: preimage, ReturnInvoice: ret.PaymentRequest}))
	if status != http.StatusOK || body != "content" {
		t.Fatalf("open: %d %s", status, body)
	}
	bearer := credential(t, c, mpp.SessionPayload{Action: mpp.ActionBearer, SessionID: req.PaymentHash, Preimage: preimage})
	for i := range n {
		status, h, body := get(t, url, bearer)
		if status != http.StatusOK || body != "content" || h.Get(mpp.ReceiptHeader) == "" {
			t.Fatalf("bearer %d: %d %s", i, status, body)
		}
	}
	closeCred := credential(t, c, mpp.SessionPayload{Action: mpp.ActionClose, SessionID: req.PaymentHash, Preimage: preimage})
	status, h, body := get(t, url, closeCred)
	want := deposit - price*(n+1)
	if status != http.StatusOK || body != fmt.Sprintf(`{"refundSats":%d,"refundStatus":"succeeded","status":"closed"}`+"\n", want) {
		t.Fatalf("close: %d %s", status, body)
	}
	rc, err := mpp.ParseReceipt(h.Get(mpp.ReceiptHeader))
	if err != nil || rc.RefundSats != int64(want) || rc.Reference != hex.EncodeToString(req.PaymentHash[:]) {
		t.Errorf("close receipt %+v %v", rc, err)
	}
	got := lookup(t, ret.RHash)
	if got.State != "SETTLED" || got.AmtPaidSat != fmt.Sprint(want) {
		t.Fatalf("bob's return invoice: %+v, want SETTLED with %d", got, want)
	}

	status, _, body = get(t, url, closeCred)
	if status != http.StatusPaymentRequired || !strings.Contains(body, "session-closed") {
		t.Errorf("second close: %d %s", status, body)
	}
	status, _, body = get(t, url, bearer)
	if status != http.StatusPaymentRequired || body == "content" {
		t.Errorf("bearer after the close: %d %s", status, body)
	}
	if again := lookup(t, ret.RHash); again.AmtPaidSat != fmt.Sprint(want) {
		t.Errorf("after a second close, bob's invoice holds %s sats, want %d", again.AmtPaidSat, want)
	}
}

// alicePayments counts the payments alice's node has made.
func alicePayments(t *testing.T) int {
	t.Helper()
	out, err := network.Alice.Lncli(testContext(t), "listpayments", "--include_incomplete", "--max_payments", "10000")
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Payments []json.RawMessage `json:"payments"`
	}
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatalf("listpayments: %s %v", out, err)
	}
	return len(list.Payments)
}

// TestSessionBadInput: on the real network, session credentials that must
// not admit anything get 402 or 400 with a problem, are never served, and
// move no sats: alice pays nothing, bob's return invoice stays unpaid and
// the open session's balance is what it was.
func TestSessionBadInput(t *testing.T) {
	url := startCaddyWith(t, fmt.Sprintf(`	route /other/* {
		paywall %d {
			service other
			session
		}
		respond "other"
	}
	route /pricier/* {
		paywall %d {
			service shop
			session {
				deposit %d
			}
		}
		respond "pricier"
	}`, price, 2*price, deposit))
	base := strings.TrimSuffix(url, "/s/")
	c, req := sessionChallenge(t, url)
	preimage := payDeposit(t, req)
	ret := returnInvoice(t)
	open := func(ch mpp.Challenge, pre [32]byte) string {
		return credential(t, ch, mpp.SessionPayload{Action: mpp.ActionOpen, Preimage: pre, ReturnInvoice: ret.PaymentRequest})
	}
	if status, _, body := get(t, url, open(c, preimage)); status != http.StatusOK {
		t.Fatalf("open: %d %s", status, body)
	}
	bearer := func(ch mpp.Challenge, pre [32]byte) string {
		return credential(t, ch, mpp.SessionPayload{Action: mpp.ActionBearer, SessionID: req.PaymentHash, Preimage: pre})
	}
	paymentsBefore := alicePayments(t)

	fresh, freshReq := sessionChallenge(t, url)
	tampered := fresh
	tampered.Request = c.Request
	other, _ := sessionChallenge(t, base+"/other/")
	pricier, _ := sessionChallenge(t, base+"/pricier/")
	var wrong [32]byte
	for _, tt := range []struct {
		name, url, authorization string
		status                   int
		problem                  string
	}{
		{"malformed", url, "Payment e30", 402, "lightning/malformed-credential"},
		{"tampered", url, open(tampered, payDeposit(t, freshReq)), 402, "lightning/unknown-challenge"},
		{"wrong preimage", url, bearer(c, wrong), 402, "lightning/invalid-preimage"},
		{"wrong realm", url, bearer(other, preimage), 402, "lightning/unknown-challenge"},
		{"wrong amount", url, open(pricier, preimage), 402, "verification-failed"},
		{"cross-route", base + "/other/", bearer(other, preimage), 402, "lightning/session-not-found"},
		{"replayed open", url, open(c, preimage), 402, "lightning/unknown-challenge"},
	} {
		status, _, body := get(t, tt.url, tt.authorization)
		if status != tt.status || !strings.Contains(body, `"type":"`+mpp.ProblemBase+tt.problem+`"`) {
			t.Errorf("%s: %d %s, want %d %s", tt.name, status, body, tt.status, tt.problem)
		}
	}
	if n := alicePayments(t); n != paymentsBefore {
		t.Errorf("alice made %d payments during the bad input", n-paymentsBefore)
	}
	if got := lookup(t, ret.RHash); got.State == "SETTLED" {
		t.Errorf("bob's return invoice was paid: %+v", got)
	}
	// The balance is untouched: the close refunds deposit minus the open.
	status, _, body := get(t, url, credential(t, c, mpp.SessionPayload{Action: mpp.ActionClose, SessionID: req.PaymentHash, Preimage: preimage}))
	if status != http.StatusOK || !strings.Contains(body, fmt.Sprintf(`"refundSats":%d`, deposit-price)) {
		t.Errorf("close: %d %s", status, body)
	}
}
