package lightning

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/caddyserver/caddy/v2"
	"github.com/lightningnetwork/lnd/lnrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lightningcaddy/caddy-lightning/lnd"
	"github.com/lightningcaddy/caddy-lightning/lnd/lndtest"
)

// paymentsAPI serves the Lightning API, configured by handlerBlock, in
// front of node, with the admin API on and storage in storageDir; it
// returns the API's base URL and the admin API's URL.
func paymentsAPI(t *testing.T, node *lndtest.Node, storageDir, handlerBlock string) (string, string) {
	t.Helper()
	site, admin := startCaddyWithAdmin(t, storageDir, lndOption(node), "\tlightning "+handlerBlock)
	return site + "/v1/lightning/", admin
}

// paymentsAPIWithTimeout is paymentsAPI with a node call timeout of one
// second, so that a payment held past payment_timeout is answered within
// two.
func paymentsAPIWithTimeout(t *testing.T, node *lndtest.Node, storageDir, handlerBlock string) (string, string) {
	t.Helper()
	global := strings.Replace(lndOption(node), "\t\t\tmacaroon ", "\t\t\ttimeout 1s\n\t\t\tmacaroon ", 1)
	site, admin := startCaddyWithAdmin(t, storageDir, global, "\tlightning "+handlerBlock)
	return site + "/v1/lightning/", admin
}

// fastFollower makes the follower look for open payments every 50 ms
// until the test ends. Call it before Caddy starts.
func fastFollower(t *testing.T) {
	followInterval = 50 * time.Millisecond
	t.Cleanup(func() { followInterval = 10 * time.Second })
}

// adminStatusOf reads the admin status.
func adminStatusOf(t *testing.T, admin string) adminStatus {
	t.Helper()
	var st adminStatus
	if code := adminCall(t, http.MethodGet, admin+"/lightning/status", "", &st); code != http.StatusOK {
		t.Fatalf("status: %d", code)
	}
	if st.PaymentsError != "" {
		t.Fatalf("status: %s", st.PaymentsError)
	}
	return st
}

// waitStatus polls the admin status until cond holds (10 s at most).
func waitStatus(t *testing.T, admin string, what string, cond func(adminStatus) bool) adminStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := adminStatusOf(t, admin)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s; status %+v", what, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wantUnknown checks the answer to a payment whose outcome is unknown.
func (r apiResponse) wantUnknown(t *testing.T, parts ...string) {
	t.Helper()
	r.wantError(t, http.StatusGatewayTimeout, int(codes.DeadlineExceeded), "payment outcome unknown")
	for _, part := range append(parts, "may still complete") {
		if !strings.Contains(r.Raw, part) {
			t.Errorf("answer %s does not say %q", r.Raw, part)
		}
	}
}

// Failures for certain, TIMEOUT and ERROR included, are 4xx with lnd's
// reason and release the budget: with budget 220 and max_fee 10, two
// failed payments of 200 leave room for a third.
func TestFailedPaymentsReleaseBudget(t *testing.T) {
	node := lndtest.Start(t)
	api, admin := paymentsAPI(t, node, t.TempDir(), "{\n\t\tmax_payment 1000\n\t\tmax_fee 10\n\t\tbudget 220\n\t}")
	for _, tt := range []struct {
		reason  lnrpc.PaymentFailureReason
		message string
	}{
		{lnrpc.PaymentFailureReason_FAILURE_REASON_TIMEOUT, "no route succeeded before the payment timeout (FAILURE_REASON_TIMEOUT); no money moved, it is safe to try again"},
		{lnrpc.PaymentFailureReason_FAILURE_REASON_ERROR, "(FAILURE_REASON_ERROR); no money moved"},
	} {
		node.SetPaymentFailure(tt.reason)
		invoice, _ := node.NewPayableInvoice(200)
		post(t, api+"payinvoice", map[string]any{"invoice": invoice}).
			wantError(t, http.StatusBadRequest, int(codes.FailedPrecondition), tt.message)
	}
	node.SetPaymentFailure(lnrpc.PaymentFailureReason_FAILURE_REASON_NONE)
	invoice, _ := node.NewPayableInvoice(200)
	if r := post(t, api+"payinvoice", map[string]any{"invoice": invoice}); r.Status != http.StatusOK {
		t.Fatalf("payment after two failures: %d %s", r.Status, r.Raw)
	}
	st := adminStatusOf(t, admin)
	if len(st.Budgets) != 1 || st.Budgets[0] != (budgetStatus{LimitSat: 220, Window: "24h0m0s", SpentSat: 201, AvailableSat: 19}) ||
		len(st.OpenPayments) != 0 {
		t.Errorf("status budgets %+v, open payments %+v; want 201 of 220 spent, none open", st.Budgets, st.OpenPayments)
	}
}

// The first case on the fake node: lnd shuts down while its HTLC
// is with the payee. The answer is "outcome unknown", not a refusal; the
// reservation stays and is listed as open; after the restart the payment
// completes, the follower books it once, and paying the invoice again
// returns its preimage without a second payment.
func TestPayerShutdownMidPayment(t *testing.T) {
	fastFollower(t)
	node := lndtest.Start(t)
	api, admin := paymentsAPI(t, node, t.TempDir(), "{\n\t\tmax_payment 1000\n\t\tmax_fee 10\n\t\tbudget 1000\n\t}")
	invoice, preimage := node.NewPayableInvoice(300, lndtest.InvoiceHeld())
	hash := sha256.Sum256(preimage[:])
	answer := make(chan apiResponse, 1)
	go func() { answer <- postAsync(api+"payinvoice", map[string]any{"invoice": invoice}) }()
	waitInFlight(t, node)
	node.Stop()
	(<-answer).wantUnknown(t, "routerrpc server shutting down", "repeat payinvoice with the same invoice", hex.EncodeToString(hash[:]))

	st := adminStatusOf(t, admin)
	if len(st.OpenPayments) != 1 || st.OpenPayments[0].PaymentHash != hex.EncodeToString(hash[:]) ||
		st.OpenPayments[0].ReservedSat != 310 || st.Budgets[0].ReservedSat != 310 || st.Budgets[0].SpentSat != 0 {
		t.Fatalf("status after the shutdown: budgets %+v, open %+v; want 310 reserved by the open payment", st.Budgets, st.OpenPayments)
	}
	if err := node.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := node.SettleHeld(hash); err != nil {
		t.Fatal(err)
	}
	st = waitStatus(t, admin, "the follower books the payment", func(st adminStatus) bool { return len(st.OpenPayments) == 0 })
	if st.Budgets[0].SpentSat != 301 || st.Budgets[0].ReservedSat != 0 {
		t.Errorf("budget after the payment completed: %+v, want 301 spent", st.Budgets[0])
	}
	again := post(t, api+"payinvoice", map[string]any{"invoice": invoice})
	if again.Status != http.StatusOK || again.Body["preimage"] != hex.EncodeToString(preimage[:]) {
		t.Fatalf("repeat: %d %s, want the preimage", again.Status, again.Raw)
	}
	if p := node.Payments(); len(p) != 1 || p[0].Attempts != 1 || p[0].Status != lnrpc.Payment_SUCCEEDED {
		t.Errorf("node payments %+v, want one attempt, succeeded", p)
	}
	if st := adminStatusOf(t, admin); st.Budgets[0].SpentSat != 301 {
		t.Errorf("the repeat changed the budget: %+v", st.Budgets[0])
	}
}

// A payment the payee holds past payment_timeout is answered as unknown;
// it stays reserved (also across a Caddy restart, from the ledger in
// storage) until the payee ends it, and a repeat returns the outcome.
func TestHeldPaymentFollowedAcrossRestart(t *testing.T) {
	fastFollower(t)
	node := lndtest.Start(t)
	storage := t.TempDir()
	block := "{\n\t\tmax_payment 1000\n\t\tmax_fee 10\n\t\tpayment_timeout 1s\n\t\tbudget 500 1h\n\t}"
	api, admin := paymentsAPIWithTimeout(t, node, storage, block)
	invoice, preimage := node.NewPayableInvoice(400, lndtest.InvoiceHeld())
	hash := sha256.Sum256(preimage[:])
	post(t, api+"payinvoice", map[string]any{"invoice": invoice}).wantUnknown(t, "in flight")
	other, _ := node.NewPayableInvoice(100)
	post(t, api+"payinvoice", map[string]any{"invoice": other}).
		wantError(t, http.StatusTooManyRequests, int(codes.ResourceExhausted), "410 reserved by payments in flight")

	api, admin = paymentsAPIWithTimeout(t, node, storage, block) // Caddy restarts
	if st := adminStatusOf(t, admin); len(st.OpenPayments) != 1 || st.Budgets[0].ReservedSat != 410 {
		t.Fatalf("after the restart: budgets %+v, open %+v", st.Budgets, st.OpenPayments)
	}
	if err := node.CancelHeld(hash); err != nil {
		t.Fatal(err)
	}
	st := waitStatus(t, admin, "the follower releases the failed payment", func(st adminStatus) bool { return len(st.OpenPayments) == 0 })
	if st.Budgets[0].SpentSat != 0 || st.Budgets[0].AvailableSat != 500 {
		t.Errorf("budget after the payee canceled: %+v", st.Budgets[0])
	}
	if r := post(t, api+"payinvoice", map[string]any{"invoice": other}); r.Status != http.StatusOK {
		t.Errorf("payment within the released budget: %d %s", r.Status, r.Raw)
	}
}

// A payment whose request never reached the node (the stream broke before
// lnd saw it) is unknown at first; once its request has certainly ended
// and the node has twice said it knows no such payment, the follower
// releases it, and the invoice can be paid.
func TestNeverStartedPaymentReleased(t *testing.T) {
	fastFollower(t)
	advance := fakeNow(t)
	node := lndtest.Start(t)
	api, admin := paymentsAPI(t, node, t.TempDir(), "{\n\t\tmax_payment 1000\n\t\tbudget 1000\n\t}")
	invoice, preimage := node.NewPayableInvoice(100)
	node.SetErrorOnce("SendPaymentV2", status.Error(codes.Unavailable, "connection reset"))
	post(t, api+"payinvoice", map[string]any{"invoice": invoice}).wantUnknown(t, "no record of the payment yet")
	if st := adminStatusOf(t, admin); len(st.OpenPayments) != 1 {
		t.Fatalf("open payments %+v, want the one the node has not seen", st.OpenPayments)
	}
	advance(10 * time.Minute) // the request has certainly ended
	waitStatus(t, admin, "the follower releases the payment", func(st adminStatus) bool {
		advance(time.Second)
		return len(st.OpenPayments) == 0
	})
	r := post(t, api+"payinvoice", map[string]any{"invoice": invoice})
	if r.Status != http.StatusOK || r.Body["preimage"] != hex.EncodeToString(preimage[:]) {
		t.Fatalf("paying after the release: %d %s", r.Status, r.Raw)
	}
	if st := adminStatusOf(t, admin); st.Budgets[0].SpentSat != 101 || st.Budgets[0].ReservedSat != 0 {
		t.Errorf("budget %+v, want 101 spent", st.Budgets[0])
	}
}

// A keysend idempotency key makes repeats return the first payment's
// outcome: after a success, after a failure, and while the outcome is
// unknown; without one, every keysend is a payment.
func TestKeysendIdempotencyKey(t *testing.T) {
	node := lndtest.Start(t)
	api, _ := paymentsAPI(t, node, t.TempDir(), "{\n\t\tmax_payment 1000\n\t\tpayment_timeout 10s\n\t}")
	send := func(amount int, key string) apiResponse {
		body := map[string]any{"pubkey": node.PeerPubkey(), "amount": amount}
		if key != "" {
			body["idempotency_key"] = key
		}
		return post(t, api+"keysend", body)
	}
	first := send(21, "order-1")
	if first.Status != http.StatusOK {
		t.Fatalf("keysend: %d %s", first.Status, first.Raw)
	}
	if again := send(21, "order-1"); again.Status != http.StatusOK || again.Body["preimage"] != first.Body["preimage"] {
		t.Fatalf("repeat: %d %s, want the first preimage %v", again.Status, again.Raw, first.Body["preimage"])
	}
	send(22, "order-1").wantError(t, http.StatusConflict, int(codes.AlreadyExists), "another destination or of another amount")
	send(21, "bad key").wantError(t, http.StatusBadRequest, int(codes.InvalidArgument), "visible ASCII")
	send(21, strings.Repeat("k", 256)).wantError(t, http.StatusBadRequest, int(codes.InvalidArgument), "longer than 255")
	send(21, "")
	send(21, "")
	if p := node.Payments(); len(p) != 3 {
		t.Errorf("node payments %d, want 3: one keyed keysend and two without a key", len(p))
	}

	node.SetPaymentFailure(lnrpc.PaymentFailureReason_FAILURE_REASON_NO_ROUTE)
	send(30, "order-2").wantError(t, http.StatusBadRequest, int(codes.FailedPrecondition), "it is safe to try again")
	node.SetPaymentFailure(lnrpc.PaymentFailureReason_FAILURE_REASON_NONE)
	send(30, "order-2").wantError(t, http.StatusBadRequest, int(codes.FailedPrecondition), "this idempotency_key keeps this result: use a new one")

	// The node shuts down mid-keysend: unknown; a repeat after the
	// restart returns the payment's outcome, made once.
	node.SetPaymentLatency(time.Second)
	answer := make(chan apiResponse, 1)
	go func() {
		answer <- postAsync(api+"keysend", map[string]any{"pubkey": node.PeerPubkey(), "amount": 40, "idempotency_key": "order-3"})
	}()
	waitInFlight(t, node)
	node.Stop()
	(<-answer).wantUnknown(t, "repeat keysend with the same idempotency_key")
	if err := node.Restart(); err != nil {
		t.Fatal(err)
	}
	waitReachable(t, api)
	r := send(40, "order-3")
	if r.Status != http.StatusOK {
		t.Fatalf("repeat after the restart: %d %s", r.Status, r.Raw)
	}
	raw, _ := hex.DecodeString(r.Body["preimage"].(string))
	var last lndtest.PaymentRecord
	for _, p := range node.Payments() {
		if p.Hash == sha256.Sum256(raw) {
			last = p
		}
	}
	if last.Attempts != 1 || last.Status != lnrpc.Payment_SUCCEEDED || last.ValueSat != 40 {
		t.Errorf("the keysend on the node: %+v, want one attempt of 40 sat, succeeded", last)
	}

	// Without a key, the unknown answer says repeats are not safe.
	answer = make(chan apiResponse, 1)
	go func() {
		answer <- postAsync(api+"keysend", map[string]any{"pubkey": node.PeerPubkey(), "amount": 41})
	}()
	waitInFlight(t, node)
	node.Stop()
	(<-answer).wantUnknown(t, "without an idempotency_key is another payment")
	if err := node.Restart(); err != nil {
		t.Fatal(err)
	}
}

// cltv_limit bounds every payment's time lock: 1008 blocks by default.
func TestCLTVLimit(t *testing.T) {
	node := lndtest.Start(t)
	api, _ := paymentsAPI(t, node, t.TempDir(), "{\n\t\tmax_payment 1000\n\t\tcltv_limit 300\n\t}")
	invoice, _ := node.NewPayableInvoice(10)
	post(t, api+"payinvoice", map[string]any{"invoice": invoice})
	node2 := lndtest.Start(t)
	api2, _ := paymentsAPI(t, node2, t.TempDir(), "{\n\t\tmax_payment 1000\n\t}")
	invoice2, _ := node2.NewPayableInvoice(10)
	post(t, api2+"payinvoice", map[string]any{"invoice": invoice2})
	if p, p2 := node.Payments(), node2.Payments(); len(p) != 1 || p[0].CLTVLimit != 300 || len(p2) != 1 || p2[0].CLTVLimit != 1008 {
		t.Errorf("cltv limits %+v and %+v, want 300 and the default 1008", p, p2)
	}
}

// Generated invoices state their expiry (default an hour), and paid AMP
// invoices are reported paid.
func TestInvoiceExpiryAndAMP(t *testing.T) {
	api, node := startAPI(t, "")
	resp := post(t, api+"generateinvoice", `{"amount": 5}`)
	invoice, _ := resp.Body["invoice"].(string)
	inv, err := lnd.DecodeInvoice(invoice, &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(inv.ExpiresAt); d > time.Hour || d < time.Hour-time.Minute {
		t.Errorf("generated invoice expires in %s, want an hour", d)
	}
	amp, err := lnrpc.NewLightningClient(node.Dial(t)).AddInvoice(t.Context(), &lnrpc.Invoice{Value: 1000, IsAmp: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Settle([32]byte(amp.RHash)); err != nil {
		t.Fatal(err)
	}
	if r := post(t, api+"checkinvoice", map[string]any{"invoice": amp.PaymentRequest}); r.Raw != `{"paid":true}` {
		t.Errorf("checkinvoice of a paid AMP invoice: %d %s", r.Status, r.Raw)
	}
}

// A configured secret that resolves to nothing stops the config from
// loading, with an error naming the option and the placeholder; so do
// durations below a second and time-lock bounds lnd would refuse.
func TestConfigRefusals(t *testing.T) {
	const unset = "{env.CADDY_LIGHTNING_TEST_UNSET}"
	if os.Getenv("CADDY_LIGHTNING_TEST_UNSET") != "" {
		t.Skip("CADDY_LIGHTNING_TEST_UNSET is set")
	}
	node := lndtest.Start(t)
	nodeOption := lndOption(node)
	for _, tt := range []struct {
		name, global, site, want string
	}{
		{"empty api_key", nodeOption, "\tlightning {\n\t\tapi_key " + unset + "\n\t}",
			`api_key "` + unset + `" resolves to an empty value`},
		{"empty macaroon", strings.Replace(nodeOption, node.MacaroonPath(), unset, 1), "\tlightning",
			`macaroon "` + unset + `" resolves to an empty value`},
		{"empty root_key", nodeOption, "\tpaywall 10 {\n\t\troot_key " + unset + "\n\t}\n\trespond ok",
			`root_key "` + unset + `" resolves to an empty value`},
		{"sub-second invoice_expiry", nodeOption, "\tlightning {\n\t\tinvoice_expiry 500ms\n\t}", "invoice_expiry must be at least one second"},
		{"sub-second payment_timeout", nodeOption, "\tlightning {\n\t\tpayment_timeout 999ms\n\t}", "payment_timeout must be at least one second"},
		{"sub-second budget window", nodeOption, "\tlightning {\n\t\tbudget 100 10ms\n\t}", "window must be at least one second"},
		{"cltv_limit too low", nodeOption, "\tlightning {\n\t\tcltv_limit 99\n\t}", "cltv_limit must be between 100 and 2016"},
		{"cltv_limit too high", nodeOption, "\tlightning {\n\t\tcltv_limit 2017\n\t}", "cltv_limit must be between 100 and 2016"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := loadConfig(t, tt.global, tt.site)
			if err == nil {
				_ = caddy.Stop()
				t.Fatal("the config loaded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

// loadConfig loads a Caddyfile like startCaddy's and returns the error.
func loadConfig(t *testing.T, globalOptions, siteBody string) error {
	t.Helper()
	cfg, _, err := adaptCaddyfile("{\n\tadmin off\n\tstorage file_system " + t.TempDir() + "\n" + globalOptions +
		"\n}\nhttp://127.0.0.1:1 {\n" + siteBody + "\n}\n")
	if err != nil {
		return err
	}
	return caddy.Load(cfg, true)
}

// waitReachable waits until the API reaches the node again after a
// restart (its connection comes back with gRPC's backoff).
func waitReachable(t *testing.T, api string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for post(t, api+"generateinvoice", `{"amount": 1}`).Status != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("the node is not reachable within 10 s of its restart")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// postAsync is post for goroutines: no t, errors as a status 0 answer.
func postAsync(url string, body map[string]any) apiResponse {
	payload, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(payload))
	if err != nil {
		return apiResponse{Raw: err.Error()}
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	out := apiResponse{Status: resp.StatusCode, Header: resp.Header, Raw: buf.String()}
	_ = json.Unmarshal(buf.Bytes(), &out.Body)
	return out
}

// waitInFlight waits until the node's latest payment is in flight.
func waitInFlight(t *testing.T, node *lndtest.Node) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p := node.Payments()
		if len(p) > 0 && p[len(p)-1].Status == lnrpc.Payment_IN_FLIGHT {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no payment in flight within 10 s: %+v", p)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
