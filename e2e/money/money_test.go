// Package money checks, against a real regtest network, that money moves
// exactly as the Lightning API books it: a payment whose outcome is open
// (the payer restarted, the payee frozen) is answered as such, followed
// until it ends and booked once; a definite failure releases its
// reservation; budgets with different windows on one storage both hold;
// keysend idempotency keys pay once; a secret that resolves empty refuses
// to load.
//
// Each test logs a row of the table "case | answer | budget before |
// budget after | payments on alice" (lncli listpayments).
package money

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"

	"github.com/lightningcaddy/caddy-lightning/internal/caddyrun"
	"github.com/lightningcaddy/caddy-lightning/internal/regtest"
)

var network *regtest.Network // nil under -short

func TestMain(m *testing.M) {
	code := regtest.RunTests(m, func(n *regtest.Network) { network = n })
	_ = caddyrun.Stop()
	os.Exit(code)
}

// site is a running Caddy in front of alice with the admin API on.
type site struct {
	base, admin string
}

// startSite loads a Caddy config with a fresh storage whose site serves
// the Lightning API at /v1/lightning/ with handlerOptions, at
// /short/v1/lightning/ with a 1,000-sat budget over 2 s and at
// /long/v1/lightning/ with a 1,000-sat budget over an hour. Calls to alice
// time out after 2 s.
func startSite(t *testing.T, handlerOptions string) *site {
	t.Helper()
	if network == nil {
		t.Skip("needs the regtest network; not started under -short")
	}
	ports := make([]int, 2)
	for i := range ports {
		var err error
		if ports[i], err = caddyrun.FreePort(); err != nil {
			t.Fatal(err)
		}
	}
	a := network.Alice
	config := fmt.Sprintf(`{
	admin 127.0.0.1:%d
	persist_config off
	auto_https off
	storage file_system %s
	lightning {
		%s
	}
}

http://127.0.0.1:%d {
	route /v1/lightning/* {
		lightning {
%s
		}
	}
	route /short/v1/lightning/* {
		lightning {
			max_payment 100000
			budget 1000 2s
		}
	}
	route /long/v1/lightning/* {
		lightning {
			max_payment 100000
			budget 1000 1h
		}
	}
}
`, ports[0], t.TempDir(), a.CaddyLND("timeout 2s"), ports[1], handlerOptions)
	if err := caddyrun.Load(config); err != nil {
		t.Fatalf("%v\n%s", err, config)
	}
	t.Cleanup(func() { _ = caddyrun.Stop() })
	return &site{base: fmt.Sprintf("http://127.0.0.1:%d", ports[1]), admin: fmt.Sprintf("http://127.0.0.1:%d", ports[0])}
}

func (s *site) api(method string) string { return s.base + "/v1/lightning/" + method }

// response is an answer of the REST API.
type response struct {
	Status int
	Body   map[string]any
	Raw    string
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.Status, strings.TrimSpace(r.Raw)) }

var client = &http.Client{Timeout: 2 * time.Minute}

// postJSON is safe in any goroutine: errors come back in Raw, with status 0.
func postJSON(url string, body any) response {
	payload, err := json.Marshal(body)
	if err != nil {
		return response{Raw: err.Error()}
	}
	resp, err := client.Post(url, "application/json", strings.NewReader(string(payload)))
	if err != nil {
		return response{Raw: err.Error()}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{Status: resp.StatusCode, Raw: string(raw)}
	_ = json.Unmarshal(raw, &r.Body)
	return r
}

func post(t *testing.T, url string, body any) response {
	t.Helper()
	r := postJSON(url, body)
	if r.Status == 0 {
		t.Fatalf("POST %s: %s", url, r.Raw)
	}
	return r
}

// wantStatus checks an answer's HTTP status and that its body holds parts.
func (r response) want(t *testing.T, status int, parts ...string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("answer %s, want %d", r, status)
	}
	for _, p := range parts {
		if !strings.Contains(r.Raw, p) {
			t.Errorf("answer %s does not contain %q", r, p)
		}
	}
}

// ledgerStatus is the part of the admin status about payments.
type ledgerStatus struct {
	Budgets []struct {
		LimitSat    int64  `json:"limit_sat"`
		Window      string `json:"window"`
		SpentSat    int64  `json:"spent_sat"`
		ReservedSat int64  `json:"reserved_sat"`
	} `json:"budgets"`
	OpenPayments []struct {
		PaymentHash string `json:"payment_hash"`
		ReservedSat int64  `json:"reserved_sat"`
	} `json:"open_payments"`
	LedgerError string `json:"ledger_error"`
}

func (s *site) status(t *testing.T) ledgerStatus {
	t.Helper()
	resp, err := client.Get(s.admin + "/lightning/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st ledgerStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || st.LedgerError != "" {
		t.Fatalf("status: %v %s", err, st.LedgerError)
	}
	return st
}

// budget describes the budget of window as the table shows it.
func (st ledgerStatus) budget(window string) string {
	for _, b := range st.Budgets {
		if b.Window == window {
			return fmt.Sprintf("spent %d, reserved %d of %d/%s; %d open", b.SpentSat, b.ReservedSat, b.LimitSat, window, len(st.OpenPayments))
		}
	}
	return "no budget " + window
}

// waitStatus polls the status until cond holds, for up to three minutes
// (the follower looks at open payments every 10 s; lnd may take a minute
// or two to resume an HTLC after a restart).
func (s *site) waitStatus(t *testing.T, what string, cond func(ledgerStatus) bool) ledgerStatus {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		st := s.status(t)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within three minutes; status %+v", what, st)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// lightning returns a Lightning client of node.
func lightning(t *testing.T, node *regtest.Node) lnrpc.LightningClient {
	t.Helper()
	conn, err := node.Dial(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return lnrpc.NewLightningClient(conn)
}

// bobInvoice is an invoice of bob's for sat.
func bobInvoice(t *testing.T, sat int64, memo string) *lnrpc.AddInvoiceResponse {
	t.Helper()
	inv, err := lightning(t, network.Bob).AddInvoice(testContext(t), &lnrpc.Invoice{Value: sat, Memo: memo})
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// alicePayment is one entry of lncli listpayments on alice.
type alicePayment struct {
	Hash     string `json:"payment_hash"`
	Status   string `json:"status"`
	ValueSat string `json:"value_sat"`
	FeeSat   string `json:"fee_sat"`
	Reason   string `json:"failure_reason"`
	HTLCs    []struct {
		Status string `json:"status"`
	} `json:"htlcs"`
}

func (p alicePayment) String() string {
	s := fmt.Sprintf("%s… %s %s sat + %s fee, %d HTLC(s)", p.Hash[:8], p.Status, p.ValueSat, p.FeeSat, len(p.HTLCs))
	if p.Status == "FAILED" {
		s += " " + p.Reason
	}
	return s
}

// alicePayments lists alice's payments to hashes (lncli listpayments).
func alicePayments(t *testing.T, hashes ...string) []alicePayment {
	t.Helper()
	out, err := network.Alice.Lncli(testContext(t), "listpayments", "--include_incomplete")
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Payments []alicePayment `json:"payments"`
	}
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatal(err)
	}
	var found []alicePayment
	for _, p := range list.Payments {
		for _, h := range hashes {
			if p.Hash == h {
				found = append(found, p)
			}
		}
	}
	return found
}

// waitAliceInFlight waits until alice has dispatched an HTLC of the
// payment to hash.
func waitAliceInFlight(t *testing.T, hash []byte) {
	t.Helper()
	conn, err := network.Alice.Dial(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(testContext(t), 2*time.Second)
		stream, err := routerrpc.NewRouterClient(conn).TrackPaymentV2(ctx, &routerrpc.TrackPaymentRequest{PaymentHash: hash})
		if err == nil {
			var p *lnrpc.Payment
			if p, err = stream.Recv(); err == nil && p.Status == lnrpc.Payment_IN_FLIGHT && len(p.Htlcs) > 0 {
				cancel()
				return
			}
		}
		cancel()
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("alice has no HTLC in flight for %x within 30 s", hash)
}

// connectAliceToBob makes sure alice is connected to bob, without waiting
// for lnd's reconnection backoff.
func connectAliceToBob(t *testing.T) {
	t.Helper()
	_, err := network.Alice.Lncli(testContext(t), "connect", network.Bob.Pubkey+"@"+network.Bob.P2PAddr)
	if err != nil && !strings.Contains(err.Error(), "already connected") {
		t.Fatal(err)
	}
}

// freezeBob suspends bob (SIGSTOP) and returns the function that resumes
// him; he is resumed at the end of the test in any case.
//
// It first lets the channels come to rest: a channel has one commitment in
// flight at a time, so an HTLC added while bob owes alice a revocation
// (from the payment just before) would never be signed, and an alice
// stopped then would keep its payment IN_FLIGHT for good (lnd trims the
// unsigned HTLC but not the attempt). The exchange takes milliseconds.
func freezeBob(t *testing.T) (thaw func()) {
	t.Helper()
	time.Sleep(time.Second)
	if err := network.Bob.Freeze(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	thaw = func() {
		once.Do(func() {
			if err := network.Bob.Thaw(); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(thaw)
	return thaw
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// row logs one row of the table.
func row(t *testing.T, what string, answer response, before, after string, payments []alicePayment) {
	t.Helper()
	var ps []string
	for _, p := range payments {
		ps = append(ps, p.String())
	}
	if len(ps) == 0 {
		ps = []string{"none"}
	}
	t.Logf("TABLE | %s | %s | %s | %s | %s |", what, answer, before, after, strings.Join(ps, "; "))
}

// TestPayerRestartedMidPayment is the first case: alice's HTLC is
// with bob, who is frozen (SIGSTOP), when alice is restarted. The answer
// is "outcome unknown", not a refusal; the reservation stays; once alice
// is back and bob thaws, the payment completes and the follower books it
// once; paying the invoice again returns its preimage.
func TestPayerRestartedMidPayment(t *testing.T) {
	s := startSite(t, "\t\t\tmax_payment 100000\n\t\t\tmax_fee 100\n\t\t\tbudget 20000")
	inv := bobInvoice(t, 5000, "payer restarted mid-payment")
	hash := hex.EncodeToString(inv.RHash)
	before := s.status(t).budget("24h0m0s")

	thaw := freezeBob(t)
	answer := make(chan response, 1)
	go func() { answer <- postJSON(s.api("payinvoice"), map[string]any{"invoice": inv.PaymentRequest}) }()
	waitAliceInFlight(t, inv.RHash)
	// lnd records the attempt before its link sends the HTLC; stopped in
	// between, it keeps the payment IN_FLIGHT for good (lnd#8146: the API
	// then keeps it open and reserved). Give the HTLC time to reach bob.
	time.Sleep(time.Second)
	stopped := time.Now()
	if err := network.Alice.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("alice stopped in %s", time.Since(stopped).Round(time.Millisecond))
	r := <-answer
	r.want(t, http.StatusGatewayTimeout, "payment outcome unknown", "may still complete", "repeat payinvoice with the same invoice", hash)
	mid := s.status(t)
	if len(mid.OpenPayments) != 1 || mid.OpenPayments[0].PaymentHash != hash || mid.OpenPayments[0].ReservedSat != 5100 {
		t.Errorf("status while alice is down: %+v, want the payment open with 5,100 reserved", mid)
	}

	// Bob resumes first, then alice: she reconnects to him at start, and
	// the channel resumes the HTLC.
	thaw()
	restarted := time.Now()
	if err := network.Alice.Start(testContext(t)); err != nil {
		t.Fatal(err)
	}
	connectAliceToBob(t)
	after := s.waitStatus(t, "the payment is booked", func(st ledgerStatus) bool { return len(st.OpenPayments) == 0 })
	t.Logf("booked %s after alice's restart", time.Since(restarted).Round(time.Millisecond))
	if got := after.budget("24h0m0s"); !strings.HasPrefix(got, "spent 5000, reserved 0 ") {
		t.Errorf("budget after the payment completed: %s, want 5,000 spent (no fee on the direct channel)", got)
	}
	again := post(t, s.api("payinvoice"), map[string]any{"invoice": inv.PaymentRequest})
	again.want(t, http.StatusOK)
	bobInv, err := lightning(t, network.Bob).LookupInvoice(testContext(t), &lnrpc.PaymentHash{RHash: inv.RHash})
	if err != nil {
		t.Fatal(err)
	}
	if again.Body["preimage"] != hex.EncodeToString(bobInv.RPreimage) || bobInv.State != lnrpc.Invoice_SETTLED {
		t.Errorf("repeat returned %v; bob's invoice is %s with preimage %x", again.Body["preimage"], bobInv.State, bobInv.RPreimage)
	}
	final := s.status(t)
	if got := final.budget("24h0m0s"); !strings.HasPrefix(got, "spent 5000, reserved 0 ") {
		t.Errorf("the repeat changed the budget: %s", got)
	}
	payments := alicePayments(t, hash)
	if len(payments) != 1 || payments[0].Status != "SUCCEEDED" {
		t.Errorf("alice's payments to the invoice: %v, want one, SUCCEEDED", payments)
	}
	row(t, "payer (alice) restarted while bob holds the HTLC (frozen)", r, before, mid.budget("24h0m0s"), nil)
	row(t, "... after alice restarted and bob thawed: booked by the follower", response{Raw: "(no call)"}, mid.budget("24h0m0s"), after.budget("24h0m0s"), payments)
	row(t, "... payinvoice again with the same invoice", again, after.budget("24h0m0s"), final.budget("24h0m0s"), payments)
}

// TestPayeeHoldsPayment: bob is frozen while alice's HTLC is with him, past
// payment_timeout. The answer is "outcome unknown, in flight"; the
// reservation holds the budget (another payment that would exceed it is
// refused); when bob thaws the payment completes and is booked once.
func TestPayeeHoldsPayment(t *testing.T) {
	s := startSite(t, "\t\t\tmax_payment 100000\n\t\t\tmax_fee 100\n\t\t\tpayment_timeout 2s\n\t\t\tbudget 8000")
	inv := bobInvoice(t, 5000, "payee frozen")
	other := bobInvoice(t, 3000, "over the budget while the first is open")
	hash := hex.EncodeToString(inv.RHash)
	before := s.status(t).budget("24h0m0s")
	thaw := freezeBob(t)
	r := post(t, s.api("payinvoice"), map[string]any{"invoice": inv.PaymentRequest})
	r.want(t, http.StatusGatewayTimeout, "payment outcome unknown", "in flight", "may still complete")
	mid := s.status(t)
	refused := post(t, s.api("payinvoice"), map[string]any{"invoice": other.PaymentRequest})
	refused.want(t, http.StatusTooManyRequests, "5100 reserved by payments in flight")

	thaw()
	after := s.waitStatus(t, "the held payment is booked", func(st ledgerStatus) bool { return len(st.OpenPayments) == 0 })
	if got := after.budget("24h0m0s"); !strings.HasPrefix(got, "spent 5000, reserved 0 ") {
		t.Errorf("budget after bob thawed: %s, want 5,000 spent", got)
	}
	again := post(t, s.api("payinvoice"), map[string]any{"invoice": inv.PaymentRequest})
	again.want(t, http.StatusOK)
	payments := alicePayments(t, hash, hex.EncodeToString(other.RHash))
	if len(payments) != 1 || payments[0].Status != "SUCCEEDED" {
		t.Errorf("alice's payments: %v, want only the first, SUCCEEDED", payments)
	}
	row(t, "payee (bob) frozen past payment_timeout 2s", r, before, mid.budget("24h0m0s"), nil)
	row(t, "... another payment while the first is open", refused, mid.budget("24h0m0s"), mid.budget("24h0m0s"), nil)
	row(t, "... after bob thawed: booked by the follower; payinvoice again", again, mid.budget("24h0m0s"), s.status(t).budget("24h0m0s"), payments)
}

// TestDefiniteFailureReleases: payments that fail for certain answer 4xx
// with lnd's reason and leave the budget as it was.
func TestDefiniteFailureReleases(t *testing.T) {
	s := startSite(t, "\t\t\tmax_payment 2000000\n\t\t\tmax_fee 100\n\t\t\tbudget 3000000")
	before := s.status(t).budget("24h0m0s")
	stranger, err := btcec.NewPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	noRoute := post(t, s.api("keysend"), map[string]any{"pubkey": hex.EncodeToString(stranger.PubKey().SerializeCompressed()), "amount": 1000})
	noRoute.want(t, http.StatusBadRequest, "FAILURE_REASON_NO_ROUTE", "no money moved")
	after := s.status(t).budget("24h0m0s")
	if after != before {
		t.Errorf("budget %s after a failed keysend, want %s", after, before)
	}
	row(t, "keysend to an unknown node (no route)", noRoute, before, after, nil)

	whale := bobInvoice(t, 1_500_000, "above alice's balance")
	tooBig := post(t, s.api("payinvoice"), map[string]any{"invoice": whale.PaymentRequest})
	tooBig.want(t, http.StatusBadRequest, "payment failed", "no money moved")
	final := s.status(t).budget("24h0m0s")
	if final != before {
		t.Errorf("budget %s after a failed payment, want %s", final, before)
	}
	row(t, "invoice above alice's outbound balance", tooBig, after, final, alicePayments(t, hex.EncodeToString(whale.RHash)))
}

// TestBudgetsWithDifferentWindows: a 2 s budget and a 1 h budget on one
// storage. The short one's payments after its window passed must not drop
// what the long one counts.
func TestBudgetsWithDifferentWindows(t *testing.T) {
	s := startSite(t, "\t\t\tmax_payment 100000")
	long := func(method string) string { return s.base + "/long/v1/lightning/" + method }
	short := func(method string) string { return s.base + "/short/v1/lightning/" + method }
	before := s.status(t)
	first := bobInvoice(t, 600, "long window")
	post(t, long("payinvoice"), map[string]any{"invoice": first.PaymentRequest}).want(t, http.StatusOK)
	time.Sleep(3 * time.Second) // past the short window
	second := bobInvoice(t, 300, "short window")
	r := post(t, short("payinvoice"), map[string]any{"invoice": second.PaymentRequest})
	r.want(t, http.StatusOK)
	mid := s.status(t)
	third := bobInvoice(t, 100, "over the long budget")
	refused := post(t, long("payinvoice"), map[string]any{"invoice": third.PaymentRequest})
	refused.want(t, http.StatusTooManyRequests, "900 of 1000 sats spent in the last 1h0m0s")
	time.Sleep(3 * time.Second)
	fourth := bobInvoice(t, 500, "short window again")
	shortOK := post(t, short("payinvoice"), map[string]any{"invoice": fourth.PaymentRequest})
	shortOK.want(t, http.StatusOK)
	after := s.status(t)
	if got := after.budget("1h0m0s"); !strings.HasPrefix(got, "spent 1400, reserved 0") {
		t.Errorf("long budget %s, want 1,400 spent", got)
	}
	row(t, "2 s budget pays 300 after its window passed (1 h budget had 600)", r, before.budget("1h0m0s"), mid.budget("1h0m0s"), nil)
	row(t, "... 1 h budget then refuses 100 (with a 10 sat fee limit)", refused, mid.budget("1h0m0s"), mid.budget("1h0m0s"), nil)
	row(t, "... 2 s budget pays 500 once its window passed again", shortOK, mid.budget("2s"), after.budget("2s")+"; "+after.budget("1h0m0s"),
		alicePayments(t, hex.EncodeToString(first.RHash), hex.EncodeToString(second.RHash), hex.EncodeToString(third.RHash), hex.EncodeToString(fourth.RHash)))
}

// TestKeysendIdempotencyKey: the same key pays once and returns the same
// preimage.
func TestKeysendIdempotencyKey(t *testing.T) {
	s := startSite(t, "\t\t\tmax_payment 100000\n\t\t\tbudget 20000")
	before := s.status(t).budget("24h0m0s")
	req := map[string]any{"pubkey": network.Bob.Pubkey, "amount": 777, "idempotency_key": fmt.Sprintf("e2e-%d", time.Now().UnixNano())}
	first := post(t, s.api("keysend"), req)
	first.want(t, http.StatusOK)
	again := post(t, s.api("keysend"), req)
	again.want(t, http.StatusOK)
	if again.Body["preimage"] != first.Body["preimage"] {
		t.Errorf("repeat preimage %v, want %v", again.Body["preimage"], first.Body["preimage"])
	}
	after := s.status(t).budget("24h0m0s")
	preimage, _ := hex.DecodeString(first.Body["preimage"].(string))
	hash := sha256Hex(preimage)
	payments := alicePayments(t, hash)
	if len(payments) != 1 || payments[0].Status != "SUCCEEDED" || payments[0].ValueSat != "777" {
		t.Errorf("alice's keysends: %v, want one of 777 sat", payments)
	}
	if !strings.HasPrefix(after, "spent 777,") {
		t.Errorf("budget %s, want 777 spent", after)
	}
	row(t, "keysend 777 sat with an idempotency_key, twice", again, before, after, payments)
}

// TestAMPInvoicePaid: an AMP invoice of alice's, paid by bob, is reported
// paid by checkinvoice.
func TestAMPInvoicePaid(t *testing.T) {
	s := startSite(t, "\t\t\tmax_payment 1000")
	out, err := network.Alice.Lncli(testContext(t), "addinvoice", "--amp", "--amt", "1234")
	if err != nil {
		t.Fatal(err)
	}
	var inv struct {
		PaymentRequest string `json:"payment_request"`
	}
	if err := json.Unmarshal(out, &inv); err != nil {
		t.Fatal(err)
	}
	post(t, s.api("checkinvoice"), map[string]any{"invoice": inv.PaymentRequest}).want(t, http.StatusOK, `"paid":false`)
	if _, err := network.Bob.Lncli(testContext(t), "payinvoice", "--amp", "--force", inv.PaymentRequest); err != nil {
		t.Fatal(err)
	}
	r := post(t, s.api("checkinvoice"), map[string]any{"invoice": inv.PaymentRequest})
	r.want(t, http.StatusOK, `"paid":true`)
	row(t, "checkinvoice of an AMP invoice bob paid", r, "-", "-", nil)
}

// TestEmptyAPIKeyRefusesToLoad: api_key {env.X} with X unset stops the
// config from loading instead of turning authentication off.
func TestEmptyAPIKeyRefusesToLoad(t *testing.T) {
	if network == nil {
		t.Skip("needs the regtest network; not started under -short")
	}
	const unset = "{env.CADDY_LIGHTNING_E2E_UNSET_KEY}"
	if os.Getenv("CADDY_LIGHTNING_E2E_UNSET_KEY") != "" {
		t.Skip("CADDY_LIGHTNING_E2E_UNSET_KEY is set")
	}
	port, err := caddyrun.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	a := network.Alice
	err = caddyrun.Load(fmt.Sprintf(`{
	admin off
	persist_config off
	lightning {
		%s
	}
}

http://127.0.0.1:%d {
	lightning {
		max_payment 1000
		api_key %s
	}
}
`, a.CaddyLND(), port, unset))
	if err == nil {
		_ = caddyrun.Stop()
		t.Fatal("a config whose api_key resolves empty loaded")
	}
	if !strings.Contains(err.Error(), `api_key "`+unset+`" resolves to an empty value`) {
		t.Errorf("error %q does not name the option and the placeholder", err)
	}
	resp, getErr := client.Post(fmt.Sprintf("http://127.0.0.1:%d/v1/lightning/keysend", port), "application/json", strings.NewReader(`{}`))
	if getErr == nil {
		resp.Body.Close()
		t.Errorf("something answers on the refused site: %d", resp.StatusCode)
	}
	t.Logf("TABLE | api_key %s with the variable unset | config refused: %s | - | - | none |", unset, err)
}
