package dialects

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/lightningnetwork/lnd/lnrpc"

	"github.com/lightningcaddy/caddy-lightning/internal/albyinterop"
	"github.com/lightningcaddy/caddy-lightning/internal/caddyrun"
	mpp "github.com/lightningcaddy/caddy-lightning/payment"
	"github.com/lightningcaddy/caddy-lightning/x402"
)

// content is what the upstream answers a paid request.
const content = "paid content"

// site runs Caddy with alice as the node in front of a counting upstream:
// /api/* sells per request at 100 sats with the default offers (L402,
// charge, x402), /mpp/* with the charge first (offers charge l402 x402),
// /other/* like /api/* under another service.
type site struct {
	base     string
	admitted *atomic.Int64 // requests that reached the upstream
}

func startSite(t *testing.T) site {
	t.Helper()
	if network == nil {
		t.Skip("needs the regtest network; not started under -short")
	}
	var admitted atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		admitted.Add(1)
		_, _ = io.WriteString(w, content)
	}))
	t.Cleanup(up.Close)
	port, err := caddyrun.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	route := func(path, options string) string {
		return fmt.Sprintf("\troute %s {\n\t\tpaywall 100 {\n\t\t\tmode per_request\n%s\n\t\t}\n\t\treverse_proxy %s\n\t}\n",
			path, options, strings.TrimPrefix(up.URL, "http://"))
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
%s%s%s	respond "free"
}
`, t.TempDir(), network.Alice.CaddyLND(), port,
		route("/api/*", "\t\t\tservice api"), route("/mpp/*", "\t\t\tservice api\n\t\t\toffers charge l402 x402"),
		route("/other/*", "\t\t\tservice other"))
	if err := caddyrun.Load(string(caddyfile.Format([]byte(cfg)))); err != nil {
		t.Fatalf("%v\n%s", err, cfg)
	}
	t.Cleanup(func() {
		if err := caddyrun.Stop(); err != nil {
			t.Errorf("stop Caddy: %v", err)
		}
	})
	return site{base: fmt.Sprintf("http://127.0.0.1:%d", port), admitted: &admitted}
}

// interopResult is what interop/dialects.mjs prints.
type interopResult struct {
	Challenge struct {
		Status          int    `json:"status"`
		WWWAuthenticate string `json:"wwwAuthenticate"`
		PaymentRequired string `json:"paymentRequired"`
	} `json:"challenge"`
	FetchWithMpp  interopStep `json:"fetchWithMpp"`
	Fetch402Mpp   interopStep `json:"fetch402Mpp"`
	FetchWithX402 interopStep `json:"fetchWithX402"`
	Fetch402      interopStep `json:"fetch402"`
	Payments      int         `json:"payments"`
}

type interopStep struct {
	Status           int    `json:"status"`
	Body             string `json:"body"`
	Paid             bool   `json:"paid"`
	AmountSat        int64  `json:"amountSat"`
	Preimage         string `json:"preimage"`
	CredentialHeader string `json:"credentialHeader"`
	Credential       string `json:"credential"`
	Receipt          string `json:"receipt"`
	PaymentResponse  string `json:"paymentResponse"`
	Replay           struct {
		Status int    `json:"status"`
		Body   string `json:"body"`
	} `json:"replay"`
}

// TestInteropAlbyDialects pays with Alby's @getalby/lightning-tools 9.0.1
// (pinned in e2e/paywall/interop/package-lock.json) in Node, through bob's
// lnd: fetchWithMpp and fetch402 pay the Payment charge where it is the
// first offer, fetchWithX402 pays x402 and fetch402 pays L402 where L402
// comes first (the default); each gets the content once, with the
// dialect's receipt, and each credential presented again gets 402.
func TestInteropAlbyDialects(t *testing.T) {
	s := startSite(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	settledBefore := settledInvoices(t)
	start := time.Now()
	out := albyinterop.Run(ctx, t, "../paywall/interop", "dialects.mjs", network.Bob,
		"PAYWALL_URL="+s.base+"/api/x", "MPP_URL="+s.base+"/mpp/x")
	t.Logf("node dialects.mjs ran in %v", time.Since(start).Round(time.Millisecond))
	var res interopResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("dialects.mjs output: %v\n%s", err, out)
	}
	defer func() {
		if t.Failed() {
			t.Logf("dialects.mjs printed: %s", out)
		}
	}()

	// One 402, every offer, as fetch joins it: L402 first.
	c := res.Challenge
	if c.Status != 402 || !strings.HasPrefix(c.WWWAuthenticate, "LSAT ") || !strings.Contains(c.WWWAuthenticate, `, Payment id="`) ||
		!strings.Contains(c.WWWAuthenticate, `intent="charge"`) || c.PaymentRequired == "" {
		t.Errorf("the joined challenge: %d %q, PAYMENT-REQUIRED %q", c.Status, c.WWWAuthenticate, c.PaymentRequired)
	}
	for _, step := range []struct {
		name   string
		res    interopStep
		header string // the credential's header
		scheme string // its scheme (LSAT for L402: the first line is LSAT)
	}{
		{"fetchWithMpp", res.FetchWithMpp, "Authorization", "Payment "},
		{"fetch402 (charge first)", res.Fetch402Mpp, "Authorization", "Payment "},
		{"fetchWithX402", res.FetchWithX402, "payment-signature", ""},
		{"fetch402 (L402 first)", res.Fetch402, "Authorization", "LSAT "},
	} {
		r := step.res
		if r.Status != 200 || r.Body != content || !r.Paid || r.AmountSat != 100 {
			t.Errorf("%s: %d %q, paid %v, %d sat", step.name, r.Status, r.Body, r.Paid, r.AmountSat)
		}
		if !strings.EqualFold(r.CredentialHeader, step.header) || !strings.HasPrefix(r.Credential, step.scheme) {
			t.Errorf("%s: credential %s: %.40q…", step.name, r.CredentialHeader, r.Credential)
		}
		if r.Replay.Status != 402 || strings.Contains(r.Replay.Body, content) {
			t.Errorf("%s: the credential again: %d %.200q", step.name, r.Replay.Status, r.Replay.Body)
		}
	}
	for _, r := range []interopStep{res.FetchWithMpp, res.Fetch402Mpp} {
		receipt, err := mpp.ParseReceipt(r.Receipt)
		preimage, _ := hex.DecodeString(r.Preimage)
		if hash := sha256Hex(preimage); err != nil || receipt.Reference != hash || receipt.ChallengeID == "" {
			t.Errorf("Payment-Receipt %+v (%v); payment hash %s", receipt, err, hash)
		}
	}
	if resp, err := x402.DecodeSettlementResponse(res.FetchWithX402.PaymentResponse); err != nil || !resp.Success || resp.Network != x402.NetworkRegtest {
		t.Errorf("PAYMENT-RESPONSE %+v, %v", resp, err)
	}
	if res.Payments != 4 || s.admitted.Load() != 4 {
		t.Errorf("bob paid %d invoices and the upstream served %d requests; want 4 and 4", res.Payments, s.admitted.Load())
	}
	if n := settledInvoices(t) - settledBefore; n != 4 {
		t.Errorf("alice settled %d invoices, want 4", n)
	}
}

// TestOnePaymentOneDialect: an invoice bob paid admits one request under
// the first dialect that presents it; under the others, and again, it gets
// 402. An unpaid invoice presented over x402 gets 402.
func TestOnePaymentOneDialect(t *testing.T) {
	s := startSite(t)
	o := offer(t, s.base+"/api/x")
	x402Sig := x402Signature(t, o.x402)
	if a := get(t, s.base+"/api/x", http.Header{x402.HeaderPaymentSignature: {x402Sig}}); a.status != http.StatusPaymentRequired {
		t.Fatalf("unpaid x402: %d %s", a.status, a.body)
	}
	preimage := pay(t, o.invoice)
	creds := []http.Header{
		{"Authorization": {chargeCredential(t, o.charge, preimage)}},
		{x402.HeaderPaymentSignature: {x402Sig}},
		{"Authorization": {"L402 " + o.token + ":" + hex.EncodeToString(preimage[:])}},
	}
	if a := get(t, s.base+"/api/x", creds[1]); a.status != http.StatusOK || a.body != content || a.header.Get(x402.HeaderPaymentResponse) == "" {
		t.Fatalf("x402: %d %s", a.status, a.body)
	}
	for i, h := range creds {
		if a := get(t, s.base+"/api/x", h); a.status != http.StatusPaymentRequired {
			t.Errorf("credential %d after the x402 redemption: %d %s", i, a.status, a.body)
		}
	}
	if n := s.admitted.Load(); n != 1 {
		t.Errorf("one payment admitted %d requests", n)
	}
}

// TestBadCredentials: malformed, tampered, expired, wrong-realm,
// wrong-amount, cross-route and replayed credentials of the Payment charge
// and of x402, for invoices bob really paid, get 400 or 402 as the dialect
// says; none reaches the upstream and alice pays nothing.
func TestBadCredentials(t *testing.T) {
	s := startSite(t)
	paymentsBefore := alicePayments(t)
	o := offer(t, s.base+"/api/x")
	preimage := pay(t, o.invoice)
	used := offer(t, s.base+"/api/x")
	usedPreimage := pay(t, used.invoice)
	usedCharge := chargeCredential(t, used.charge, usedPreimage)
	if a := get(t, s.base+"/api/x", http.Header{"Authorization": {usedCharge}}); a.status != http.StatusOK {
		t.Fatalf("first use: %d %s", a.status, a.body)
	}
	usedX := offer(t, s.base+"/api/x")
	pay(t, usedX.invoice)
	usedSig := x402Signature(t, usedX.x402)
	if a := get(t, s.base+"/api/x", http.Header{x402.HeaderPaymentSignature: {usedSig}}); a.status != http.StatusOK {
		t.Fatalf("first use: %d %s", a.status, a.body)
	}
	admitted := s.admitted.Load()

	charge := func(f func(c *mpp.Challenge), pre [32]byte) http.Header {
		c := o.charge
		f(&c)
		return http.Header{"Authorization": {chargeCredential(t, c, pre)}}
	}
	sig := func(f func(r *x402.Requirements)) http.Header {
		r := o.x402
		f(&r)
		return http.Header{x402.HeaderPaymentSignature: {x402Signature(t, r)}}
	}
	same := func(*mpp.Challenge) {}
	wrong := preimage
	wrong[31] ^= 1
	rows := []struct {
		name   string
		path   string
		header http.Header
		status int
	}{
		{"charge malformed", "/api/x", http.Header{"Authorization": {"Payment %%%"}}, 402},
		{"charge tampered request", "/api/x", charge(func(c *mpp.Challenge) { c.Request = used.charge.Request }, preimage), 402},
		{"charge tampered expiry", "/api/x", charge(func(c *mpp.Challenge) { c.Expires = "2099-01-01T00:00:00Z" }, preimage), 402},
		{"charge expired", "/api/x", charge(func(c *mpp.Challenge) { c.Expires = "2000-01-01T00:00:00Z" }, preimage), 402},
		{"charge wrong preimage", "/api/x", charge(same, wrong), 402},
		{"charge wrong realm", "/api/x", charge(func(c *mpp.Challenge) { c.Realm = "other" }, preimage), 402},
		{"charge cross-route", "/other/x", charge(same, preimage), 402},
		{"charge replayed", "/api/x", http.Header{"Authorization": {usedCharge}}, 402},
		{"x402 malformed", "/api/x", http.Header{x402.HeaderPaymentSignature: {"%%%"}}, 400},
		{"x402 tampered binding", "/api/x", sig(func(r *x402.Requirements) { r.Extra.Binding = usedX.x402.Extra.Binding }), 402},
		{"x402 wrong amount", "/api/x", sig(func(r *x402.Requirements) { r.Amount = "1000" }), 402},
		{"x402 wrong network", "/api/x", sig(func(r *x402.Requirements) { r.Network = x402.NetworkMainnet }), 402},
		{"x402 cross-route", "/other/x", sig(func(*x402.Requirements) {}), 402},
		{"x402 replayed", "/api/x", http.Header{x402.HeaderPaymentSignature: {usedSig}}, 402},
	}
	for _, row := range rows {
		if a := get(t, s.base+row.path, row.header); a.status != row.status || a.body == content {
			t.Errorf("%s: %d %.200s", row.name, a.status, a.body)
		}
	}
	if n := s.admitted.Load() - admitted; n != 0 {
		t.Errorf("bad credentials admitted %d requests", n)
	}
	if n := alicePayments(t) - paymentsBefore; n != 0 {
		t.Errorf("alice made %d payments", n)
	}
	// The genuine credential, untouched by the table, still buys its one request.
	if a := get(t, s.base+"/api/x", charge(same, preimage)); a.status != http.StatusOK {
		t.Errorf("the genuine credential after the table: %d %s", a.status, a.body)
	}
}

// answer is a response with its body read.
type answer struct {
	status int
	header http.Header
	body   string
}

var client = &http.Client{Timeout: time.Minute}

func get(t *testing.T, url string, header http.Header) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, string(body)}
}

// offers is a 402 read in every dialect.
type offers struct {
	invoice, token string
	charge         mpp.Challenge
	x402           x402.Requirements
}

func offer(t *testing.T, url string) offers {
	t.Helper()
	a := get(t, url, nil)
	var body struct{ Invoice, Token string }
	if a.status != http.StatusPaymentRequired || json.Unmarshal([]byte(a.body), &body) != nil {
		t.Fatalf("%d %s", a.status, a.body)
	}
	o := offers{invoice: body.Invoice, token: body.Token}
	for _, c := range mpp.ParseChallenges(a.header.Values("WWW-Authenticate")) {
		if c.Intent == mpp.IntentCharge {
			o.charge = c
		}
	}
	req, err := x402.DecodePaymentRequired(a.header.Get(x402.HeaderPaymentRequired))
	if err != nil || o.charge.ID == "" {
		t.Fatalf("offers: %v, charge %+v", err, o.charge)
	}
	o.x402 = req.Accepts[0]
	return o
}

// pay pays invoice from bob and returns the preimage.
func pay(t *testing.T, invoice string) [32]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	raw, err := network.Bob.PayInvoice(ctx, invoice)
	if err != nil {
		t.Fatal(err)
	}
	var p [32]byte
	copy(p[:], raw)
	return p
}

func chargeCredential(t *testing.T, c mpp.Challenge, preimage [32]byte) string {
	t.Helper()
	v, err := (&mpp.Credential{Challenge: c, Payload: mpp.ChargePayloadJSON(preimage)}).Format()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// x402Signature is PAYMENT-SIGNATURE for the offer, as Alby builds it.
func x402Signature(t *testing.T, r x402.Requirements) string {
	t.Helper()
	v, err := x402.PaymentPayload{Scheme: r.Scheme, Network: r.Network, Accepted: r, Payload: x402.LightningPayload{Invoice: r.Extra.Invoice}}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// alice is a Lightning client of alice's node.
func alice(t *testing.T) lnrpc.LightningClient {
	t.Helper()
	conn, err := network.Alice.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return lnrpc.NewLightningClient(conn)
}

// alicePayments counts the payments alice's node made.
func alicePayments(t *testing.T) int {
	t.Helper()
	resp, err := alice(t).ListPayments(context.Background(), &lnrpc.ListPaymentsRequest{IncludeIncomplete: true, MaxPayments: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(resp.Payments)
}

// settledInvoices counts the invoices alice's node settled.
func settledInvoices(t *testing.T) int {
	t.Helper()
	resp, err := alice(t).ListInvoices(context.Background(), &lnrpc.ListInvoiceRequest{NumMaxInvoices: 10000})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, inv := range resp.Invoices {
		if inv.State == lnrpc.Invoice_SETTLED {
			n++
		}
	}
	return n
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
