package api_test

import (
	"bytes"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"google.golang.org/grpc/codes"
)

// TestRESTGenerateAndCheckInvoice: alice's invoice from generateinvoice is
// what was asked for, bob pays it for real, and checkinvoice turns from
// false to true.
func TestRESTGenerateAndCheckInvoice(t *testing.T) {
	a := startAPI(t)
	const amount, memo = 2100, "e2e coffee"

	invoice := post(t, a.rest("generateinvoice"), map[string]any{"amount": "2100", "memo": memo}).field(t, "invoice")
	inv := decodeRegtest(t, invoice)
	if inv.MilliSat == nil || int64(inv.MilliSat.ToSatoshis()) != amount {
		t.Errorf("invoice amount %v, want %d sat", inv.MilliSat, amount)
	}
	if got := hex.EncodeToString(inv.Destination.SerializeCompressed()); got != network.Alice.Pubkey {
		t.Errorf("invoice payee %s, want alice %s", got, network.Alice.Pubkey)
	}
	if inv.Description == nil || *inv.Description != memo {
		t.Errorf("invoice memo %v, want %q", inv.Description, memo)
	}
	if inv.Expiry() != baseOptions.invoiceExpiry {
		t.Errorf("invoice expiry %v, want the configured %v", inv.Expiry(), baseOptions.invoiceExpiry)
	}

	// paid:false is emitted, as grpc-gateway does.
	if resp := post(t, a.rest("checkinvoice"), map[string]any{"invoice": invoice}); resp.Status != http.StatusOK || resp.Raw != `{"paid":false}` {
		t.Fatalf("checkinvoice before payment: %d %s", resp.Status, resp.Raw)
	}

	var preimage []byte
	timed(t, "bob pays alice's invoice", func() {
		var err error
		if preimage, err = network.Bob.PayInvoice(testContext(t), invoice); err != nil {
			t.Fatal(err)
		}
	})
	checkPreimage(t, hex.EncodeToString(preimage), inv.PaymentHash[:])

	// Alice settles the invoice before she gives bob the preimage, so the
	// first check after the payment must say paid.
	resp := post(t, a.rest("checkinvoice"), map[string]any{"invoice": invoice})
	if resp.Status != http.StatusOK || resp.Raw != `{"paid":true}` {
		t.Fatalf("checkinvoice after bob paid: %d %s", resp.Status, resp.Raw)
	}
}

// TestRESTPayInvoice: alice pays bob's invoice through payinvoice; the
// preimage hashes to the payment hash, bob's invoice is settled for its
// amount, and alice's balance dropped by amount and fees.
func TestRESTPayInvoice(t *testing.T) {
	a := startAPI(t)
	bob, alice := nodeClient(t, network.Bob), nodeClient(t, network.Alice)
	const amount = 1500
	inv := bobInvoice(t, bob, amount, "e2e payinvoice", 0)
	before := localBalance(t, alice)

	preimage := post(t, a.rest("payinvoice"), map[string]any{"invoice": inv.PaymentRequest}).field(t, "preimage")
	raw := checkPreimage(t, preimage, inv.RHash)

	settled := waitSettled(t, bob, inv.RHash)
	if settled.AmtPaidSat != amount || !bytes.Equal(settled.RPreimage, raw) {
		t.Errorf("bob's invoice: amt_paid_sat %d, preimage %x; want %d, %s", settled.AmtPaidSat, settled.RPreimage, amount, preimage)
	}
	fee := wantOnePayment(t, alice, inv.RHash, amount)
	waitBalanceDrop(t, alice, before, amount+fee)
}

// TestRESTPayInvoiceTwice: paying the same invoice again returns the same
// preimage and moves no money.
func TestRESTPayInvoiceTwice(t *testing.T) {
	a := startAPI(t)
	bob, alice := nodeClient(t, network.Bob), nodeClient(t, network.Alice)
	const amount = 2000
	inv := bobInvoice(t, bob, amount, "e2e pay twice", 0)
	before := localBalance(t, alice)

	first := post(t, a.rest("payinvoice"), map[string]any{"invoice": inv.PaymentRequest}).field(t, "preimage")
	checkPreimage(t, first, inv.RHash)
	second := post(t, a.rest("payinvoice"), map[string]any{"invoice": inv.PaymentRequest}).field(t, "preimage")
	if second != first {
		t.Errorf("second payinvoice preimage %s, want the first's %s", second, first)
	}

	if settled := waitSettled(t, bob, inv.RHash); settled.AmtPaidSat != amount {
		t.Errorf("bob's invoice amt_paid_sat %d, want %d (paid once)", settled.AmtPaidSat, amount)
	}
	fee := wantOnePayment(t, alice, inv.RHash, amount)
	waitBalanceDrop(t, alice, before, amount+fee)
}

// TestRESTPayInvoiceConcurrent: ten simultaneous payinvoice calls of one
// invoice move the money once; every caller gets the same preimage (or a
// clear 409 conflict).
func TestRESTPayInvoiceConcurrent(t *testing.T) {
	a := startAPI(t)
	bob, alice := nodeClient(t, network.Bob), nodeClient(t, network.Alice)
	const amount, callers = 3000, 10
	inv := bobInvoice(t, bob, amount, "e2e pay concurrently", 0)
	before := localBalance(t, alice)

	results := make([]apiResponse, callers)
	errs := make([]error, callers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			<-start
			results[i], errs[i] = postJSON(httpClient, a.rest("payinvoice"), map[string]any{"invoice": inv.PaymentRequest})
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	t.Logf("%d concurrent payinvoice calls of one invoice: %v in all", callers, time.Since(began).Round(time.Millisecond))

	preimages := map[string]int{}
	for i, r := range results {
		switch {
		case errs[i] != nil:
			t.Errorf("caller %d: %v", i, errs[i])
		case r.Status == http.StatusOK:
			p, _ := r.Body["preimage"].(string)
			preimages[p]++
			t.Logf("caller %d: 200 in %v", i, r.Latency.Round(time.Millisecond))
		case r.Status == http.StatusConflict:
			// Accepted only as a clear conflict in grpc-gateway's shape.
			code, _ := r.Body["code"].(float64)
			msg, _ := r.Body["message"].(string)
			if (codes.Code(code) != codes.AlreadyExists && codes.Code(code) != codes.Aborted) || msg == "" {
				t.Errorf("caller %d: unclear 409: %s", i, r.Raw)
			}
			t.Logf("caller %d: 409 in %v: %s", i, r.Latency.Round(time.Millisecond), r.Raw)
		default:
			t.Errorf("caller %d: %d %s", i, r.Status, r.Raw)
		}
	}
	if len(preimages) != 1 {
		t.Fatalf("callers got %d different preimages, want one: %v", len(preimages), preimages)
	}
	for p := range preimages {
		checkPreimage(t, p, inv.RHash)
	}

	if settled := waitSettled(t, bob, inv.RHash); settled.AmtPaidSat != amount {
		t.Errorf("bob's invoice amt_paid_sat %d, want %d (paid once)", settled.AmtPaidSat, amount)
	}
	fee := wantOnePayment(t, alice, inv.RHash, amount)
	waitBalanceDrop(t, alice, before, amount+fee)
}

// TestRESTKeysend: a keysend from alice shows up on bob as a settled
// keysend invoice of the amount, whose preimage is the one returned.
func TestRESTKeysend(t *testing.T) {
	a := startAPI(t)
	bob, alice := nodeClient(t, network.Bob), nodeClient(t, network.Alice)
	const amount = 1234
	before := localBalance(t, alice)

	preimage := post(t, a.rest("keysend"), map[string]any{"pubkey": network.Bob.Pubkey, "amount": amount}).field(t, "preimage")
	raw, err := hex.DecodeString(preimage)
	if err != nil || len(raw) != 32 {
		t.Fatalf("preimage %q is not 32 bytes of hex", preimage)
	}
	hash := sha256Sum(raw)

	keysend := bobKeysendInvoice(t, bob, hash)
	if !keysend.IsKeysend || keysend.Value != amount || keysend.AmtPaidSat != amount ||
		keysend.State != lnrpc.Invoice_SETTLED || !bytes.Equal(keysend.RPreimage, raw) {
		t.Errorf("bob's invoice for the keysend: is_keysend %t, value %d, amt_paid_sat %d, state %s, preimage %x; want true, %d, %d, SETTLED, %s",
			keysend.IsKeysend, keysend.Value, keysend.AmtPaidSat, keysend.State, keysend.RPreimage, amount, amount, preimage)
	}
	fee := wantOnePayment(t, alice, hash, amount)
	waitBalanceDrop(t, alice, before, amount+fee)
}

// TestRESTNodeErrors: failures of the real node reach REST clients as the
// documented JSON errors, and move no money.
func TestRESTNodeErrors(t *testing.T) {
	a := startAPI(t)
	bob, alice := nodeClient(t, network.Bob), nodeClient(t, network.Alice)

	// noMoneyMoved checks that alice made no successful payment to hash
	// and that bob's invoice with hash is unpaid (open, or canceled once
	// expired).
	noMoneyMoved := func(t *testing.T, hash []byte) {
		t.Helper()
		for _, p := range alicePayments(t, alice, hash) {
			if p.Status == lnrpc.Payment_SUCCEEDED || p.Status == lnrpc.Payment_IN_FLIGHT {
				t.Errorf("alice has a %s payment to %x", p.Status, hash)
			}
		}
		inv, err := bob.LookupInvoice(testContext(t), &lnrpc.PaymentHash{RHash: hash})
		if err != nil {
			t.Fatalf("bob: lookup invoice: %v", err)
		}
		if (inv.State != lnrpc.Invoice_OPEN && inv.State != lnrpc.Invoice_CANCELED) || inv.AmtPaidSat != 0 || len(inv.Htlcs) != 0 {
			t.Errorf("bob's invoice is %s with %d sat paid in %d HTLCs, want it unpaid", inv.State, inv.AmtPaidSat, len(inv.Htlcs))
		}
	}

	t.Run("no route: invoice above the channel capacity", func(t *testing.T) {
		const amount = 1_500_000 // more than both channels hold
		inv := bobInvoice(t, bob, amount, "e2e too big", 0)
		resp := post(t, a.whale("payinvoice"), map[string]any{"invoice": inv.PaymentRequest})
		// The README: "no route or too little balance → 9
		// FAILED_PRECONDITION (400)"; lnd finds too little balance first.
		resp.wantError(t, http.StatusBadRequest, int(codes.FailedPrecondition), "payment failed: ")
		if msg, _ := resp.Body["message"].(string); !strings.Contains(msg, "no route") && !strings.Contains(msg, "insufficient outbound balance") {
			t.Errorf("message %q names neither a missing route nor too little balance", msg)
		}
		t.Logf("message: %s", resp.Body["message"])
		noMoneyMoved(t, inv.RHash)
	})

	t.Run("no route: keysend to an unknown node", func(t *testing.T) {
		resp := post(t, a.rest("keysend"), map[string]any{"pubkey": randomPubkey(t), "amount": 100})
		resp.wantError(t, http.StatusBadRequest, int(codes.FailedPrecondition), "no route")
	})

	t.Run("expired invoice", func(t *testing.T) {
		inv := bobInvoice(t, bob, 100, "e2e expires", time.Second)
		time.Sleep(2 * time.Second)
		resp := post(t, a.rest("payinvoice"), map[string]any{"invoice": inv.PaymentRequest})
		resp.wantError(t, http.StatusBadRequest, int(codes.FailedPrecondition), "expired")
		noMoneyMoved(t, inv.RHash)
	})

	t.Run("mainnet invoice", func(t *testing.T) {
		invoice := mainnetInvoice(t, 100)
		for _, method := range []string{"payinvoice", "checkinvoice"} {
			post(t, a.rest(method), map[string]any{"invoice": invoice}).
				wantError(t, http.StatusBadRequest, int(codes.InvalidArgument), "invoice is for mainnet, the node is on regtest")
		}
	})

	t.Run("over max_payment", func(t *testing.T) {
		inv := bobInvoice(t, bob, maxPayment+1, "e2e over the limit", 0)
		post(t, a.rest("payinvoice"), map[string]any{"invoice": inv.PaymentRequest}).
			wantError(t, http.StatusForbidden, int(codes.PermissionDenied), "exceeds this server's max_payment of 50000")
		post(t, a.rest("keysend"), map[string]any{"pubkey": network.Bob.Pubkey, "amount": maxPayment + 1}).
			wantError(t, http.StatusForbidden, int(codes.PermissionDenied), "exceeds this server's max_payment of 50000")
		noMoneyMoved(t, inv.RHash)
	})

	t.Run("checkinvoice of an invoice alice does not know", func(t *testing.T) {
		inv := bobInvoice(t, bob, 100, "e2e bob's own", 0)
		post(t, a.rest("checkinvoice"), map[string]any{"invoice": inv.PaymentRequest}).
			wantError(t, http.StatusNotFound, int(codes.NotFound), "no invoice")
	})

	t.Run("payments disabled without max_payment", func(t *testing.T) {
		inv := bobInvoice(t, bob, 10, "e2e payments off", 0)
		post(t, a.noPayREST("payinvoice"), map[string]any{"invoice": inv.PaymentRequest}).
			wantError(t, http.StatusForbidden, int(codes.PermissionDenied), "max_payment")
		post(t, a.noPayREST("keysend"), map[string]any{"pubkey": network.Bob.Pubkey, "amount": 10}).
			wantError(t, http.StatusForbidden, int(codes.PermissionDenied), "max_payment")
		noMoneyMoved(t, inv.RHash)
		// Invoices still work there.
		post(t, a.noPayREST("generateinvoice"), map[string]any{"amount": 10}).field(t, "invoice")
	})
}
