package lndtest

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
	"github.com/lightningnetwork/lnd/record"
	"google.golang.org/grpc/codes"
)

const failNoRoute = lnrpc.PaymentFailureReason_FAILURE_REASON_NO_ROUTE

// payFinal pays and returns the final update, checking the stream shape.
func payFinal(t *testing.T, c clients, req *routerrpc.SendPaymentRequest) *lnrpc.Payment {
	t.Helper()
	ups, err := pay(t, c, req)
	return final(t, ups, err)
}

// final returns the last update and checks the stream shape: IN_FLIGHT
// updates, then exactly one final one.
func final(t *testing.T, ups []*lnrpc.Payment, err error) *lnrpc.Payment {
	t.Helper()
	if err != nil {
		t.Fatalf("payment stream: %v", err)
	}
	if len(ups) < 2 || ups[0].Status != lnrpc.Payment_IN_FLIGHT {
		t.Fatalf("want IN_FLIGHT then a final update, got %v", ups)
	}
	return ups[len(ups)-1]
}

func TestPayInvoice(t *testing.T) {
	n, c := startWithClients(t)
	payreq, preimage := n.NewPayableInvoice(250, InvoiceMemo("beer"))

	p := payFinal(t, c, routerrpcReq(payreq))
	hash := sha(preimage[:])
	if p.Status != lnrpc.Payment_SUCCEEDED || p.PaymentPreimage != hex.EncodeToString(preimage[:]) ||
		p.PaymentHash != hex.EncodeToString(hash[:]) || p.ValueSat != 250 || p.ValueMsat != 250_000 ||
		p.FeeMsat != 1000 || p.FeeSat != 1 || p.PaymentRequest != payreq || p.PaymentIndex != 1 {
		t.Fatalf("payment %v", p)
	}
	if n.Calls("SendPaymentV2") != 1 {
		t.Fatal("SendPaymentV2 not counted")
	}

	// Paying again: AlreadyExists on the first Recv.
	_, err := pay(t, c, routerrpcReq(payreq))
	wantStatus(t, err, codes.AlreadyExists, "invoice is already paid")

	// TrackPaymentV2 gives the final state with the preimage.
	tr, err := c.router.TrackPaymentV2(ctxT(t), &routerrpc.TrackPaymentRequest{PaymentHash: hash[:]})
	if err != nil {
		t.Fatal(err)
	}
	ups, err := recvAll(t, tr)
	if err != nil || len(ups) != 1 || ups[0].Status != lnrpc.Payment_SUCCEEDED ||
		ups[0].PaymentPreimage != hex.EncodeToString(preimage[:]) {
		t.Fatalf("track %v %v", ups, err)
	}

	var unknown [32]byte
	tr, err = c.router.TrackPaymentV2(ctxT(t), &routerrpc.TrackPaymentRequest{PaymentHash: unknown[:]})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tr.Recv()
	wantStatus(t, err, codes.NotFound, "payment isn't initiated")

	// no_inflight_updates: only the final update.
	payreq2, _ := n.NewPayableInvoice(1)
	req := routerrpcReq(payreq2)
	req.NoInflightUpdates = true
	ups, err = pay(t, c, req)
	if err != nil || len(ups) != 1 || ups[0].Status != lnrpc.Payment_SUCCEEDED {
		t.Fatalf("no_inflight_updates %v %v", ups, err)
	}
}

func TestPayZeroAmountInvoice(t *testing.T) {
	n, c := startWithClients(t)
	payreq, _ := n.NewPayableInvoice(0)
	_, err := pay(t, c, routerrpcReq(payreq))
	wantStatus(t, err, codes.Unknown, "amount must be specified when paying a zero amount invoice")

	req := routerrpcReq(payreq)
	req.Amt = 42
	p := payFinal(t, c, req)
	if p.Status != lnrpc.Payment_SUCCEEDED || p.ValueSat != 42 {
		t.Fatalf("payment %v", p)
	}

	payreq2, _ := n.NewPayableInvoice(5)
	req = routerrpcReq(payreq2)
	req.Amt = 5
	_, err = pay(t, c, req)
	wantStatus(t, err, codes.Unknown, "amount must not be specified when paying a non-zero amount invoice")
}

func TestPayFailures(t *testing.T) {
	clock := newFakeClock()
	n, c := startWithClients(t, WithClock(clock.Now))

	// Own invoice: lnd refuses self-payments.
	own, _ := addInvoice(t, c, 10, "mine")
	_, err := pay(t, c, routerrpcReq(own.PaymentRequest))
	wantStatus(t, err, codes.Unknown, "self-payments not allowed")

	// An invoice of a node we have no route to.
	stranger := Start(t)
	payreq, _ := stranger.NewPayableInvoice(10)
	p := payFinal(t, c, routerrpcReq(payreq))
	if p.Status != lnrpc.Payment_FAILED || p.FailureReason != failNoRoute ||
		p.PaymentPreimage != strings.Repeat("0", 64) {
		t.Fatalf("unknown invoice %v", p)
	}

	// Wrong network.
	mainnet := Start(t, WithNetwork("mainnet"))
	mainReq, _ := mainnet.NewPayableInvoice(10)
	_, err = pay(t, c, routerrpcReq(mainReq))
	wantStatus(t, err, codes.Unknown, "invoice not for current active network 'regtest'")

	// Garbage.
	_, err = pay(t, c, routerrpcReq("lnbcrt1garbage"))
	wantStatus(t, err, codes.Unknown, "")

	// Expired.
	expiring, _ := n.NewPayableInvoice(10, InvoiceExpiry(time.Minute))
	clock.Advance(2 * time.Minute)
	_, err = pay(t, c, routerrpcReq(expiring))
	wantStatus(t, err, codes.Unknown, "invoice expired. Valid until")
	old, _ := n.NewPayableInvoice(10, InvoiceTimestamp(clock.Now().Add(-48*time.Hour)))
	_, err = pay(t, c, routerrpcReq(old))
	wantStatus(t, err, codes.Unknown, "invoice expired")

	// Fee limit 0 means zero-fee routes only: no route.
	payable, _ := n.NewPayableInvoice(10)
	req := routerrpcReq(payable)
	req.FeeLimitSat = 0
	p = payFinal(t, c, req)
	if p.Status != lnrpc.Payment_FAILED || p.FailureReason != failNoRoute {
		t.Fatalf("fee limit 0: %v", p)
	}
	// A FAILED payment may be retried.
	p = payFinal(t, c, routerrpcReq(payable))
	if p.Status != lnrpc.Payment_SUCCEEDED || p.PaymentIndex != 3 {
		t.Fatalf("retry: %v", p)
	}

	// Injected failures: per invoice and node-wide.
	broke, _ := n.NewPayableInvoice(10, InvoiceFailure(lnrpc.PaymentFailureReason_FAILURE_REASON_INSUFFICIENT_BALANCE))
	p = payFinal(t, c, routerrpcReq(broke))
	if p.FailureReason != lnrpc.PaymentFailureReason_FAILURE_REASON_INSUFFICIENT_BALANCE {
		t.Fatalf("invoice failure: %v", p)
	}
	n.SetPaymentFailure(lnrpc.PaymentFailureReason_FAILURE_REASON_TIMEOUT)
	fine, _ := n.NewPayableInvoice(10)
	p = payFinal(t, c, routerrpcReq(fine))
	if p.FailureReason != lnrpc.PaymentFailureReason_FAILURE_REASON_TIMEOUT {
		t.Fatalf("node failure: %v", p)
	}
	n.SetPaymentFailure(lnrpc.PaymentFailureReason_FAILURE_REASON_NONE)
	if p = payFinal(t, c, routerrpcReq(fine)); p.Status != lnrpc.Payment_SUCCEEDED {
		t.Fatalf("after clearing failure: %v", p)
	}

	// Request validation.
	bad := []struct {
		req  *routerrpc.SendPaymentRequest
		want string
	}{
		{&routerrpc.SendPaymentRequest{PaymentRequest: fine, Dest: make([]byte, 33)}, "dest and payment_request cannot appear together"},
		{&routerrpc.SendPaymentRequest{PaymentRequest: fine, FeeLimitSat: 1, FeeLimitMsat: 1}, "sat and msat arguments are mutually exclusive"},
		{&routerrpc.SendPaymentRequest{PaymentRequest: fine, Amt: -1}, "amount cannot be negative"},
		{&routerrpc.SendPaymentRequest{Dest: []byte{2}, Amt: 1}, "invalid vertex length of 1, want 33"},
	}
	for _, tc := range bad {
		_, err = pay(t, c, tc.req)
		wantStatus(t, err, codes.Unknown, tc.want)
	}
	n.SetError("SendPaymentV2", errUnavailable)
	_, err = pay(t, c, routerrpcReq(fine))
	wantStatus(t, err, codes.Unavailable, "injected")
}

func TestPaymentInFlight(t *testing.T) {
	n, c := startWithClients(t)
	n.SetPaymentLatency(300 * time.Millisecond)
	payreq, preimage := n.NewPayableInvoice(10)
	hash := sha(preimage[:])

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := c.router.SendPaymentV2(ctx, routerrpcReq(payreq))
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.Recv()
	if err != nil || first.Status != lnrpc.Payment_IN_FLIGHT {
		t.Fatalf("first update %v %v", first, err)
	}

	_, err = pay(t, c, routerrpcReq(payreq))
	wantStatus(t, err, codes.AlreadyExists, "payment is in transition")

	// The client gives up; the payment still completes, and
	// TrackPaymentV2 sees IN_FLIGHT then SUCCEEDED.
	cancel()
	tr, err := c.router.TrackPaymentV2(ctxT(t), &routerrpc.TrackPaymentRequest{PaymentHash: hash[:]})
	if err != nil {
		t.Fatal(err)
	}
	ups, err := recvAll(t, tr)
	p := final(t, ups, err)
	if p.Status != lnrpc.Payment_SUCCEEDED || p.PaymentPreimage != hex.EncodeToString(preimage[:]) {
		t.Fatalf("tracked %v", p)
	}

	// A cancelable payment whose stream ends fails with CANCELED.
	payreq2, preimage2 := n.NewPayableInvoice(10)
	ctx2, cancel2 := context.WithCancel(context.Background())
	req := routerrpcReq(payreq2)
	req.Cancelable = true
	s2, err := c.router.SendPaymentV2(ctx2, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel2()
	hash2 := sha(preimage2[:])
	tr, err = c.router.TrackPaymentV2(ctxT(t), &routerrpc.TrackPaymentRequest{PaymentHash: hash2[:], NoInflightUpdates: true})
	if err != nil {
		t.Fatal(err)
	}
	ups, err = recvAll(t, tr)
	if err != nil || len(ups) != 1 || ups[0].FailureReason != lnrpc.PaymentFailureReason_FAILURE_REASON_CANCELED {
		t.Fatalf("cancelable %v %v", ups, err)
	}
}

func TestKeysend(t *testing.T) {
	n, c := startWithClients(t)
	peer, _ := hex.DecodeString(n.PeerPubkey())
	self, _ := hex.DecodeString(n.Pubkey())
	preimage := make([]byte, 32)
	preimage[31] = 9
	hash := sha(preimage)
	keysend := func(dest []byte, h [32]byte, pre []byte) *routerrpc.SendPaymentRequest {
		return &routerrpc.SendPaymentRequest{
			Dest: dest, Amt: 21, PaymentHash: h[:], FeeLimitSat: 10, TimeoutSeconds: 30,
			DestCustomRecords: map[uint64][]byte{record.KeySendType: pre},
		}
	}

	p := payFinal(t, c, keysend(peer, hash, preimage))
	if p.Status != lnrpc.Payment_SUCCEEDED || p.PaymentPreimage != hex.EncodeToString(preimage) || p.ValueSat != 21 {
		t.Fatalf("keysend %v", p)
	}
	_, err := pay(t, c, keysend(peer, hash, preimage))
	wantStatus(t, err, codes.AlreadyExists, "invoice is already paid")

	// Hash that does not match the preimage: the receiver rejects it.
	other := make([]byte, 32)
	p = payFinal(t, c, keysend(peer, sha([]byte("x")), other))
	if p.Status != lnrpc.Payment_FAILED || p.FailureReason != lnrpc.PaymentFailureReason_FAILURE_REASON_INCORRECT_PAYMENT_DETAILS {
		t.Fatalf("mismatch %v", p)
	}

	// Unknown destination: no route.
	stranger, _ := hex.DecodeString(Start(t).Pubkey())
	pre2 := make([]byte, 32)
	pre2[0] = 2
	p = payFinal(t, c, keysend(stranger, sha(pre2), pre2))
	if p.FailureReason != failNoRoute {
		t.Fatalf("unknown dest %v", p)
	}

	_, err = pay(t, c, keysend(self, sha(pre2), pre2))
	wantStatus(t, err, codes.Unknown, "self-payments not allowed")

	req := keysend(peer, sha(pre2), pre2)
	req.Amt = 0
	_, err = pay(t, c, req)
	wantStatus(t, err, codes.Unknown, "amount must be specified")

	req = keysend(peer, sha(pre2), pre2)
	req.PaymentHash = []byte{1}
	_, err = pay(t, c, req)
	wantStatus(t, err, codes.Unknown, "invalid hash length of 1, want 32")

	req = keysend(peer, sha(pre2), pre2)
	req.DestCustomRecords[5] = []byte{1}
	_, err = pay(t, c, req)
	wantStatus(t, err, codes.Unknown, "no custom records with types below 65536 allowed")
}

// TestPaymentSurvivesRestart: a payment in flight while the node is down
// is final when it comes back.
func TestPaymentSurvivesRestart(t *testing.T) {
	n, c := startWithClients(t)
	n.SetPaymentLatency(100 * time.Millisecond)
	payreq, preimage := n.NewPayableInvoice(10)
	s, err := c.router.SendPaymentV2(ctxT(t), routerrpcReq(payreq))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}
	n.Stop()
	if _, err := s.Recv(); err == nil {
		t.Fatal("stream survived Stop")
	}
	time.Sleep(150 * time.Millisecond)
	if err := n.Restart(); err != nil {
		t.Fatal(err)
	}
	hash := sha(preimage[:])
	tr, err := c.router.TrackPaymentV2(ctxT(t), &routerrpc.TrackPaymentRequest{PaymentHash: hash[:]})
	if err != nil {
		t.Fatal(err)
	}
	ups, err := recvAll(t, tr)
	if err != nil || len(ups) != 1 || ups[0].Status != lnrpc.Payment_SUCCEEDED {
		t.Fatalf("after restart %v %v", ups, err)
	}
}

// TestShutdownMidPayment: lnd ends the streams of a payment in flight with
// a plain "routerrpc server shutting down" (codes.Unknown) when it stops,
// though the payment goes on: after a restart it completes.
func TestShutdownMidPayment(t *testing.T) {
	n, c := startWithClients(t)
	payreq, preimage := n.NewPayableInvoice(10, InvoiceHeld())
	hash := sha(preimage[:])
	s, err := c.router.SendPaymentV2(ctxT(t), routerrpcReq(payreq))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := s.Recv(); err != nil || p.Status != lnrpc.Payment_IN_FLIGHT {
		t.Fatalf("first update %v %v", p, err)
	}
	tr, err := c.router.TrackPaymentV2(ctxT(t), &routerrpc.TrackPaymentRequest{PaymentHash: hash[:], NoInflightUpdates: true})
	if err != nil {
		t.Fatal(err)
	}
	waitCalls(t, n, "TrackPaymentV2", 1)
	n.Stop()
	_, err = s.Recv()
	wantStatus(t, err, codes.Unknown, "routerrpc server shutting down")
	_, err = tr.Recv()
	wantStatus(t, err, codes.Unknown, "routerrpc server shutting down")

	if err := n.Restart(); err != nil {
		t.Fatal(err)
	}
	c = clients{router: routerrpc.NewRouterClient(n.Dial(t))}
	tr, err = c.router.TrackPaymentV2(ctxT(t), &routerrpc.TrackPaymentRequest{PaymentHash: hash[:]})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := tr.Recv(); err != nil || p.Status != lnrpc.Payment_IN_FLIGHT {
		t.Fatalf("after restart %v %v, want IN_FLIGHT", p, err)
	}
	if err := n.SettleHeld(hash); err != nil {
		t.Fatal(err)
	}
	if p, err := tr.Recv(); err != nil || p.Status != lnrpc.Payment_SUCCEEDED || p.PaymentPreimage != hex.EncodeToString(preimage[:]) {
		t.Fatalf("after the payee settled %v %v", p, err)
	}
	if got := n.Payments(); len(got) != 1 || got[0].Attempts != 1 || got[0].Status != lnrpc.Payment_SUCCEEDED || got[0].ValueSat != 10 {
		t.Errorf("payments %+v, want one attempt, SUCCEEDED", got)
	}
	if err := n.SettleHeld(hash); err == nil {
		t.Error("settled a held payment twice")
	}
}

// TestHeldPaymentCanceled: a payee that cancels a held payment fails it
// with FAILURE_REASON_INCORRECT_PAYMENT_DETAILS, and it may be retried.
func TestHeldPaymentCanceled(t *testing.T) {
	n, c := startWithClients(t)
	payreq, preimage := n.NewPayableInvoice(10, InvoiceHeld())
	hash := sha(preimage[:])
	// The payment runs in the background; Payments shows it held.
	ctx := ctxT(t)
	send := func() {
		s, err := c.router.SendPaymentV2(ctx, routerrpcReq(payreq))
		for err == nil {
			_, err = s.Recv()
		}
	}
	go send()
	for n.CancelHeld(hash) != nil {
		time.Sleep(5 * time.Millisecond)
	}
	waitFor(t, func() bool { p := n.Payments(); return len(p) == 1 && p[0].Status == lnrpc.Payment_FAILED })
	if p := n.Payments()[0]; p.Reason != lnrpc.PaymentFailureReason_FAILURE_REASON_INCORRECT_PAYMENT_DETAILS {
		t.Fatalf("canceled held payment %+v", p)
	}
	go send()
	for n.SettleHeld(hash) != nil {
		time.Sleep(5 * time.Millisecond)
	}
	waitFor(t, func() bool { p := n.Payments(); return len(p) == 1 && p[0].Status == lnrpc.Payment_SUCCEEDED })
	if p := n.Payments()[0]; p.Attempts != 2 {
		t.Errorf("attempts %d, want 2 (one canceled, one settled)", p.Attempts)
	}
}

// TestCLTVLimit: cltv_limit is checked as lnd checks it and kept with the
// payment.
func TestCLTVLimit(t *testing.T) {
	n, c := startWithClients(t)
	payreq, _ := n.NewPayableInvoice(10)
	req := routerrpcReq(payreq)
	req.CltvLimit = 2017
	_, err := pay(t, c, req)
	wantStatus(t, err, codes.Unknown, "total time lock of 2017 exceeds max allowed 2016")
	req.CltvLimit = 83
	_, err = pay(t, c, req)
	wantStatus(t, err, codes.Unknown, "cltv limit 83 should be greater than 83")
	req.CltvLimit = 500
	if p := payFinal(t, c, req); p.Status != lnrpc.Payment_SUCCEEDED {
		t.Fatalf("payment %v", p)
	}
	payreq2, _ := n.NewPayableInvoice(10)
	payFinal(t, c, routerrpcReq(payreq2))
	got := n.Payments()
	if len(got) != 2 || got[0].CLTVLimit != 500 || got[1].CLTVLimit != 2016 {
		t.Errorf("payments %+v, want cltv limits 500 and 2016 (the default)", got)
	}
}

// TestTimeoutAndErrorFailures: FAILURE_REASON_TIMEOUT and _ERROR end a
// payment FAILED, like any other reason.
func TestTimeoutAndErrorFailures(t *testing.T) {
	n, c := startWithClients(t)
	for _, reason := range []lnrpc.PaymentFailureReason{
		lnrpc.PaymentFailureReason_FAILURE_REASON_TIMEOUT,
		lnrpc.PaymentFailureReason_FAILURE_REASON_ERROR,
	} {
		n.SetPaymentFailure(reason)
		payreq, _ := n.NewPayableInvoice(10)
		if p := payFinal(t, c, routerrpcReq(payreq)); p.Status != lnrpc.Payment_FAILED || p.FailureReason != reason {
			t.Errorf("%s: payment %v", reason, p)
		}
	}
}

func waitCalls(t *testing.T, n *Node, method string, want int) {
	t.Helper()
	waitFor(t, func() bool { return n.Calls(method) >= want })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
