package lnd_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/lightningnetwork/lnd/lnrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lightningcaddy/caddy-lightning/lnd"
	"github.com/lightningcaddy/caddy-lightning/lnd/lndtest"
)

func newClient(t *testing.T, node *lndtest.Node, callTimeout time.Duration) *lnd.Client {
	t.Helper()
	mac, err := hex.DecodeString(node.MacaroonHex())
	if err != nil {
		t.Fatal(err)
	}
	c, err := lnd.New(lnd.Config{Address: node.Addr(), TLSCert: node.TLSCertPEM(), Macaroon: mac, CallTimeout: callTimeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func wantCode(t *testing.T, err error, code codes.Code, part string) {
	t.Helper()
	if status.Code(err) != code || !strings.Contains(status.Convert(err).Message(), part) {
		t.Fatalf("error = %v, want %s containing %q", err, code, part)
	}
}

func TestNewValidates(t *testing.T) {
	node := lndtest.Start(t)
	for _, cfg := range []lnd.Config{
		{TLSCert: node.TLSCertPEM(), Macaroon: []byte{1}},
		{Address: node.Addr(), TLSCert: []byte("not pem"), Macaroon: []byte{1}},
		{Address: node.Addr(), TLSCert: node.TLSCertPEM()},
	} {
		if _, err := lnd.New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

func TestInfoAndReady(t *testing.T) {
	node := lndtest.Start(t)
	c := newClient(t, node, 0)
	info, err := c.Info(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if info.Pubkey != node.Pubkey() || info.Network != "regtest" || !info.SyncedToChain {
		t.Errorf("info = %+v", info)
	}
	if err := c.Ready(ctx(t)); err != nil {
		t.Errorf("Ready: %v", err)
	}
	node.SetState(lnrpc.WalletState_RPC_ACTIVE)
	wantCode(t, c.Ready(ctx(t)), codes.Unavailable, "not ready")
}

func TestWrongMacaroon(t *testing.T) {
	node := lndtest.Start(t)
	c, err := lnd.New(lnd.Config{Address: node.Addr(), TLSCert: node.TLSCertPEM(), Macaroon: []byte("not the macaroon")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Info(ctx(t)); err == nil {
		t.Fatal("a wrong macaroon was accepted")
	}
}

func TestInvoiceLifecycle(t *testing.T) {
	node := lndtest.Start(t)
	c := newClient(t, node, 0)

	inv, err := c.CreateInvoice(ctx(t), 1500, "memo", 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := c.DecodeInvoice(ctx(t), "LIGHTNING:"+inv.PaymentRequest)
	if err != nil {
		t.Fatal(err)
	}
	if decoded.PaymentHash != inv.PaymentHash || decoded.AmountSat != 1500 || decoded.Payee != node.Pubkey() {
		t.Errorf("decoded = %+v, created = %+v", decoded, inv)
	}
	if d := time.Until(decoded.ExpiresAt); d < 9*time.Minute || d > 11*time.Minute {
		t.Errorf("expires in %s, want about 10m", d)
	}
	paid, err := c.CheckInvoice(ctx(t), inv.PaymentRequest)
	if err != nil || paid {
		t.Fatalf("CheckInvoice before payment = %v, %v", paid, err)
	}
	if err := node.Settle(inv.PaymentHash); err != nil {
		t.Fatal(err)
	}
	st, err := c.LookupInvoice(ctx(t), inv.PaymentHash)
	if err != nil || st.State != lnd.InvoiceSettled || sha256.Sum256(st.Preimage[:]) != inv.PaymentHash {
		t.Fatalf("LookupInvoice = %+v, %v; want settled with the preimage", st, err)
	}
	if got := node.Calls("GetInfo"); got != 0 {
		t.Errorf("GetInfo calls = %d, want 0 (the network is learned from the node's invoice)", got)
	}

	_, err = c.LookupInvoice(ctx(t), sha256.Sum256([]byte("unknown")))
	wantCode(t, err, codes.NotFound, "no invoice")
	_, err = c.CreateInvoice(ctx(t), 0, "", 0)
	wantCode(t, err, codes.InvalidArgument, "positive")
	if _, err = c.CreateInvoice(ctx(t), 1, strings.Repeat("x", lnd.MaxMemoBytes), 0); err != nil {
		t.Errorf("memo of %d bytes: %v", lnd.MaxMemoBytes, err)
	}
	_, err = c.CreateInvoice(ctx(t), 1, strings.Repeat("x", lnd.MaxMemoBytes+1), 0)
	wantCode(t, err, codes.InvalidArgument, "memo")
}

// Every invoice states its expiry: the default is an hour (not lnd's 24 h),
// and sub-second expiries are refused, not truncated to 0.
func TestInvoiceExpiry(t *testing.T) {
	node := lndtest.Start(t)
	c := newClient(t, node, 0)
	for _, tt := range []struct {
		expiry, want time.Duration
	}{{0, time.Hour}, {1500 * time.Millisecond, 2 * time.Second}, {10 * time.Minute, 10 * time.Minute}} {
		inv, err := c.CreateInvoice(ctx(t), 10, "", tt.expiry)
		if err != nil {
			t.Fatal(err)
		}
		decoded, err := c.DecodeInvoice(ctx(t), inv.PaymentRequest)
		if err != nil {
			t.Fatal(err)
		}
		if d := decoded.ExpiresAt.Sub(inv.ExpiresAt); d < -time.Second || d > time.Second {
			t.Errorf("expiry %s: the invoice expires at %s, CreateInvoice says %s", tt.expiry, decoded.ExpiresAt, inv.ExpiresAt)
		}
		if d := time.Until(decoded.ExpiresAt); d > tt.want || d < tt.want-5*time.Second {
			t.Errorf("expiry %s: the invoice expires in %s, want %s", tt.expiry, d, tt.want)
		}
	}
	_, err := c.CreateInvoice(ctx(t), 10, "", 500*time.Millisecond)
	wantCode(t, err, codes.InvalidArgument, "at least one second")
}

// A paid AMP invoice is reported paid, as lnd v0.21 reports it: SETTLED
// through its HTLC set, with no preimage of its own.
func TestAMPInvoicePaid(t *testing.T) {
	node := lndtest.Start(t)
	c := newClient(t, node, 0)
	resp, err := lnrpc.NewLightningClient(node.Dial(t)).AddInvoice(ctx(t), &lnrpc.Invoice{Value: 1000, IsAmp: true})
	if err != nil {
		t.Fatal(err)
	}
	if paid, err := c.CheckInvoice(ctx(t), resp.PaymentRequest); err != nil || paid {
		t.Fatalf("open AMP invoice: paid %t, %v", paid, err)
	}
	if err := node.Settle([32]byte(resp.RHash)); err != nil {
		t.Fatal(err)
	}
	if paid, err := c.CheckInvoice(ctx(t), resp.PaymentRequest); err != nil || !paid {
		t.Fatalf("paid AMP invoice: paid %t, %v", paid, err)
	}
}

func TestDecodeInvoiceErrors(t *testing.T) {
	node := lndtest.Start(t)
	c := newClient(t, node, 0)
	for network, want := range map[string]string{
		"mainnet": "invoice is for mainnet, the node is on regtest",
		"testnet": "invoice is for testnet",
		"signet":  "invoice is for signet",
		"simnet":  "invoice is for simnet",
	} {
		other := lndtest.Start(t, lndtest.WithNetwork(network))
		payreq, _ := other.NewPayableInvoice(5)
		_, err := c.DecodeInvoice(ctx(t), payreq)
		wantCode(t, err, codes.InvalidArgument, want)
	}
	for input, want := range map[string]string{
		"":                                   "invoice is required",
		"   ":                                "invoice is required",
		"lnbcrt1xyz":                         "invalid invoice",
		"hello world":                        "invalid invoice",
		"lnbcrt" + strings.Repeat("q", 8000): "longer than",
	} {
		_, err := c.DecodeInvoice(ctx(t), input)
		wantCode(t, err, codes.InvalidArgument, want)
	}
}

// paid returns a function that takes a payment's results and returns its
// Succeeded outcome, or fails the test: paid(t)(c.PayInvoice(...)).
func paid(t *testing.T) func(lnd.Outcome, error) lnd.Succeeded {
	return func(out lnd.Outcome, err error) lnd.Succeeded {
		t.Helper()
		s, ok := out.(lnd.Succeeded)
		if err != nil || !ok {
			t.Fatalf("payment: %#v, %v; want Succeeded", out, err)
		}
		return s
	}
}

func TestPayInvoice(t *testing.T) {
	node := lndtest.Start(t)
	c := newClient(t, node, 0)
	payreq, preimage := node.NewPayableInvoice(250)
	inv, err := c.DecodeInvoice(ctx(t), payreq)
	if err != nil {
		t.Fatal(err)
	}
	opts := lnd.PaymentOptions{FeeLimitSat: 10, Timeout: 5 * time.Second}
	pay := paid(t)(c.PayInvoice(ctx(t), inv, opts))
	if pay.Preimage != preimage || pay.PaymentHash != inv.PaymentHash || pay.AmountSat != 250 || pay.FeeSat != 1 ||
		pay.Earlier || pay.CreatedAt.IsZero() {
		t.Errorf("payment = %+v", pay)
	}
	again := paid(t)(c.PayInvoice(ctx(t), inv, opts))
	if again.Preimage != preimage || !again.Earlier {
		t.Errorf("second payment = %+v, want the first, Earlier", again)
	}

	// Many concurrent payments of one invoice: one leaves the node, all
	// callers learn the preimage.
	payreq2, preimage2 := node.NewPayableInvoice(100)
	inv2, _ := c.DecodeInvoice(ctx(t), payreq2)
	node.SetPaymentLatency(200 * time.Millisecond)
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := c.PayInvoice(ctx(t), inv2, opts)
			if s, ok := out.(lnd.Succeeded); err == nil && (!ok || s.Preimage != preimage2) {
				err = status.Errorf(codes.Internal, "outcome %#v", out)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent payment: %v", err)
		}
	}
	if sends, tracks := node.Calls("SendPaymentV2"), node.Calls("TrackPaymentV2"); sends != 12 || tracks != 10 {
		t.Errorf("SendPaymentV2 = %d, TrackPaymentV2 = %d; want 12 and 10 (one real payment)", sends, tracks)
	}
	for _, p := range node.Payments() {
		if p.Attempts != 1 || p.CLTVLimit != lnd.DefaultCLTVLimit {
			t.Errorf("payment %x: %d attempts, cltv_limit %d; want 1 and %d", p.Hash[:4], p.Attempts, p.CLTVLimit, lnd.DefaultCLTVLimit)
		}
	}
}

// TestPayZeroAmountInvoice: a zero-amount invoice is paid the amount the
// caller sets, once; PayInvoice refuses it, and an invoice with an amount
// is not paid through PayZeroAmountInvoice.
func TestPayZeroAmountInvoice(t *testing.T) {
	node := lndtest.Start(t)
	c := newClient(t, node, 0)
	opts := lnd.PaymentOptions{FeeLimitSat: 10, Timeout: 5 * time.Second}
	payreq, preimage := node.NewPayableInvoice(0)
	inv, err := c.DecodeInvoice(ctx(t), payreq)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PayInvoice(ctx(t), inv, opts); status.Code(err) != codes.InvalidArgument {
		t.Errorf("PayInvoice of a zero-amount invoice: %v", err)
	}
	if _, err := c.PayZeroAmountInvoice(ctx(t), inv, 0, opts); status.Code(err) != codes.InvalidArgument {
		t.Errorf("no amount: %v", err)
	}
	pay := paid(t)(c.PayZeroAmountInvoice(ctx(t), inv, 42, opts))
	if pay.Preimage != preimage || pay.AmountSat != 42 || pay.Earlier {
		t.Errorf("payment = %+v", pay)
	}
	if again := paid(t)(c.PayZeroAmountInvoice(ctx(t), inv, 42, opts)); !again.Earlier {
		t.Errorf("second payment = %+v, want the first, Earlier", again)
	}
	withAmount, _ := node.NewPayableInvoice(5)
	inv2, _ := c.DecodeInvoice(ctx(t), withAmount)
	if _, err := c.PayZeroAmountInvoice(ctx(t), inv2, 5, opts); status.Code(err) != codes.InvalidArgument {
		t.Errorf("an invoice with an amount: %v", err)
	}
	if p := node.Payments(); len(p) != 1 || p[0].ValueSat != 42 || p[0].Attempts != 1 {
		t.Errorf("node payments = %+v", p)
	}
}

// Failed payments are Failed outcomes with lnd's reason, TIMEOUT and
// ERROR included: none of them is an outcome left open.
func TestPaymentFailures(t *testing.T) {
	node := lndtest.Start(t)
	c := newClient(t, node, 0)
	opts := lnd.PaymentOptions{FeeLimitSat: 10, Timeout: 5 * time.Second}
	for reason, want := range map[lnrpc.PaymentFailureReason]lnd.FailureReason{
		lnrpc.PaymentFailureReason_FAILURE_REASON_NO_ROUTE:                  lnd.FailureNoRoute,
		lnrpc.PaymentFailureReason_FAILURE_REASON_INSUFFICIENT_BALANCE:      lnd.FailureInsufficientBalance,
		lnrpc.PaymentFailureReason_FAILURE_REASON_TIMEOUT:                   lnd.FailureTimeout,
		lnrpc.PaymentFailureReason_FAILURE_REASON_INCORRECT_PAYMENT_DETAILS: lnd.FailureIncorrectDetails,
		lnrpc.PaymentFailureReason_FAILURE_REASON_ERROR:                     lnd.FailureError,
	} {
		payreq, _ := node.NewPayableInvoice(10, lndtest.InvoiceFailure(reason))
		inv, err := c.DecodeInvoice(ctx(t), payreq)
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.PayInvoice(ctx(t), inv, opts)
		if f, ok := out.(lnd.Failed); err != nil || !ok || f.Reason != want || f.PaymentHash != inv.PaymentHash {
			t.Errorf("%s: %#v, %v; want Failed %s", reason, out, err, want)
		}
	}
}

// Payments the node never starts are errors, with no outcome.
func TestPaymentRefusals(t *testing.T) {
	node := lndtest.Start(t)
	c := newClient(t, node, 0)
	opts := lnd.PaymentOptions{FeeLimitSat: 10, Timeout: 5 * time.Second}
	pay := func(payreq string, opts lnd.PaymentOptions) error {
		t.Helper()
		inv, err := c.DecodeInvoice(ctx(t), payreq)
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.PayInvoice(ctx(t), inv, opts)
		if out != nil {
			t.Errorf("refused payment has an outcome %#v", out)
		}
		return err
	}
	zero, _ := node.NewPayableInvoice(0)
	wantCode(t, pay(zero, opts), codes.InvalidArgument, "zero-amount")
	expired, _ := node.NewPayableInvoice(10, lndtest.InvoiceTimestamp(time.Now().Add(-time.Hour)), lndtest.InvoiceExpiry(time.Minute))
	wantCode(t, pay(expired, opts), codes.FailedPrecondition, "expired")
	ok, _ := node.NewPayableInvoice(10)
	wantCode(t, pay(ok, lnd.PaymentOptions{}), codes.InvalidArgument, "fee limit")
	wantCode(t, pay(ok, lnd.PaymentOptions{FeeLimitSat: 10, Timeout: 500 * time.Millisecond}), codes.InvalidArgument, "at least one second")
	wantCode(t, pay(ok, lnd.PaymentOptions{FeeLimitSat: 10, CLTVLimit: 5000}), codes.InvalidArgument, "the node refused the payment: total time lock of 5000 exceeds max allowed 2016")
	own, err := c.CreateInvoice(ctx(t), 10, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, pay(own.PaymentRequest, opts), codes.InvalidArgument, "a node cannot pay itself")

	// A plain error from lnd before the payment started is a refusal:
	// the node has no payment to the hash.
	node.SetErrorOnce("SendPaymentV2", errors.New("invoice expired. Valid until ..."))
	wantCode(t, pay(ok, opts), codes.InvalidArgument, "the node refused the payment: invoice expired")

	// A node that cannot be reached before anything is sent: nothing was.
	// (Once the client has seen the node go: a request sent on a
	// connection the node is closing may have reached it, and is Unknown.)
	node.Stop()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := c.Info(ctx(t)); err != nil || time.Now().After(deadline) {
			break
		}
	}
	wantCode(t, pay(ok, opts), codes.Unavailable, "lnd node unavailable")
	if got := node.Payments(); len(got) != 0 {
		t.Errorf("refused payments reached the node: %+v", got)
	}
}

// TestShutdownMidPayment: lnd answers "routerrpc server shutting down"
// (code Unknown) when it stops with a payment in flight. That is an
// Unknown outcome, not a refusal; the payment completes after the
// restart and paying again returns it without a second payment.
func TestShutdownMidPayment(t *testing.T) {
	node := lndtest.Start(t)
	c := newClient(t, node, 2*time.Second)
	payreq, preimage := node.NewPayableInvoice(300, lndtest.InvoiceHeld())
	inv, err := c.DecodeInvoice(ctx(t), payreq)
	if err != nil {
		t.Fatal(err)
	}
	opts := lnd.PaymentOptions{FeeLimitSat: 10, Timeout: 30 * time.Second}
	type result struct {
		out lnd.Outcome
		err error
	}
	results := make(chan result, 1)
	go func() {
		out, err := c.PayInvoice(ctx(t), inv, opts)
		results <- result{out, err}
	}()
	waitFor(t, func() bool { p := node.Payments(); return len(p) == 1 && p[0].Status == lnrpc.Payment_IN_FLIGHT })
	node.Stop()
	r := <-results
	u, ok := r.out.(lnd.Unknown)
	if r.err != nil || !ok || u.PaymentHash != inv.PaymentHash || !strings.Contains(u.Cause.Error(), "routerrpc server shutting down") {
		t.Fatalf("payment when the node shut down: %#v, %v; want Unknown because of the shutdown", r.out, r.err)
	}
	t.Logf("outcome: %v", u.Cause)

	if err := node.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return c.Ready(ctx(t)) == nil })
	tracked := make(chan result, 1)
	go func() {
		out, err := c.TrackPayment(ctx(t), inv.PaymentHash)
		tracked <- result{out, err}
	}()
	if err := node.SettleHeld(inv.PaymentHash); err != nil {
		t.Fatal(err)
	}
	r = <-tracked
	if s := paid(t)(r.out, r.err); s.Preimage != preimage || s.AmountSat != 300 {
		t.Errorf("tracked %+v", s)
	}
	if s := paid(t)(c.PayInvoice(ctx(t), inv, opts)); !s.Earlier || s.Preimage != preimage {
		t.Errorf("paying again: %+v, want the first payment", s)
	}
	if p := node.Payments(); len(p) != 1 || p[0].Attempts != 1 {
		t.Errorf("node payments %+v, want one attempt", p)
	}
}

// A payment still in flight when the client stops waiting is Unknown and
// InFlight; TrackPayment follows it to its end.
func TestPaymentStillInFlight(t *testing.T) {
	node := lndtest.Start(t)
	c := newClient(t, node, 300*time.Millisecond)
	payreq, _ := node.NewPayableInvoice(10, lndtest.InvoiceHeld())
	inv, _ := c.DecodeInvoice(ctx(t), payreq)
	out, err := c.PayInvoice(ctx(t), inv, lnd.PaymentOptions{FeeLimitSat: 10, Timeout: time.Second})
	if u, ok := out.(lnd.Unknown); err != nil || !ok || !u.InFlight {
		t.Fatalf("held payment: %#v, %v; want Unknown in flight", out, err)
	}
	if err := node.CancelHeld(inv.PaymentHash); err != nil {
		t.Fatal(err)
	}
	out, err = c.TrackPayment(ctx(t), inv.PaymentHash)
	if f, ok := out.(lnd.Failed); err != nil || !ok || f.Reason != lnd.FailureIncorrectDetails {
		t.Fatalf("after the payee canceled: %#v, %v", out, err)
	}
	if _, err := c.TrackPayment(ctx(t), [32]byte{1}); !errors.Is(err, lnd.ErrPaymentNotFound) {
		t.Errorf("TrackPayment of an unknown hash: %v, want ErrPaymentNotFound", err)
	}
}

func TestKeysend(t *testing.T) {
	node := lndtest.Start(t)
	c := newClient(t, node, 0)
	opts := lnd.PaymentOptions{FeeLimitSat: 10, CLTVLimit: 500}
	k := lnd.Keysend{Dest: node.PeerPubkey(), AmountSat: 77, Preimage: [32]byte{7}}
	pay := paid(t)(c.Keysend(ctx(t), k, opts))
	if pay.Preimage != k.Preimage || pay.PaymentHash != sha256.Sum256(k.Preimage[:]) || pay.AmountSat != 77 {
		t.Errorf("keysend payment = %+v", pay)
	}
	if again := paid(t)(c.Keysend(ctx(t), k, opts)); !again.Earlier {
		t.Errorf("the same keysend again: %+v, want the first payment", again)
	}
	if p := node.Payments(); len(p) != 1 || p[0].Attempts != 1 || p[0].CLTVLimit != 500 {
		t.Errorf("node payments %+v, want one attempt with cltv_limit 500", p)
	}
	for _, bad := range []struct {
		k    lnd.Keysend
		want string
	}{
		{lnd.Keysend{Dest: "zz", AmountSat: 1}, "33-byte"},
		{lnd.Keysend{Dest: node.PeerPubkey(), AmountSat: -1}, "positive"},
		{lnd.Keysend{Dest: "05" + node.Pubkey()[2:], AmountSat: 1}, "not a valid public key"},
	} {
		_, err := c.Keysend(ctx(t), bad.k, opts)
		wantCode(t, err, codes.InvalidArgument, bad.want)
	}
	stranger, err := btcec.NewPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Keysend(ctx(t), lnd.Keysend{Dest: hex.EncodeToString(stranger.PubKey().SerializeCompressed()), AmountSat: 1, Preimage: [32]byte{8}}, opts)
	if f, ok := out.(lnd.Failed); err != nil || !ok || f.Reason != lnd.FailureNoRoute {
		t.Errorf("keysend to a stranger: %#v, %v; want Failed no route", out, err)
	}
}

func TestUnavailableAndRecovery(t *testing.T) {
	node := lndtest.Start(t)
	c := newClient(t, node, 2*time.Second)
	if _, err := c.Info(ctx(t)); err != nil {
		t.Fatal(err)
	}
	node.Stop()
	_, err := c.CreateInvoice(ctx(t), 1, "", 0)
	wantCode(t, err, codes.Unavailable, "lnd node unavailable")
	if err := node.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err = c.CreateInvoice(ctx(t), 1, "", 0); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery within 10 s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestCallTimeout(t *testing.T) {
	node := lndtest.Start(t)
	c := newClient(t, node, 200*time.Millisecond)
	node.SetDelay("AddInvoice", 3*time.Second)
	start := time.Now()
	_, err := c.CreateInvoice(context.Background(), 1, "", 0)
	wantCode(t, err, codes.DeadlineExceeded, "did not answer in time")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("call took %s despite a 200ms timeout", d)
	}
}

func TestSubscribeSettlements(t *testing.T) {
	node := lndtest.Start(t)
	c := newClient(t, node, 0)
	settled := make(chan lnd.Settlement, 10)
	subCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		c.SubscribeSettlements(subCtx, func(s lnd.Settlement) { settled <- s }, nil)
		close(done)
	}()
	defer func() {
		cancel()
		<-done
	}()
	waitFor(t, func() bool { return node.InvoiceSubscribers() == 1 })

	settle := func() [32]byte {
		var inv lnd.Invoice
		var err error
		// The first call after a restart may find the old connection gone.
		waitFor(t, func() bool {
			inv, err = c.CreateInvoice(ctx(t), 31, "", 0)
			return err == nil
		})
		if err := node.Settle(inv.PaymentHash); err != nil {
			t.Fatal(err)
		}
		return inv.PaymentHash
	}
	expect := func(hash [32]byte) {
		t.Helper()
		select {
		case s := <-settled:
			if s.PaymentHash != hash || s.AmountSat != 31 || sha256.Sum256(s.Preimage[:]) != hash {
				t.Fatalf("settlement = %+v, want hash %x", s, hash)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no settlement event")
		}
	}
	expect(settle())

	// After a node restart the stream resumes and replays what it missed.
	node.Stop()
	if err := node.Restart(); err != nil {
		t.Fatal(err)
	}
	hash := settle()
	expect(hash)
}

// TestSettlementsWhileDisconnected: settlements made while the stream is
// down are reported once it is back, also before the stream saw any
// event: on a node with settled invoices (the subscription starts from
// the latest settle index) and on one without (the latest invoices are
// read again).
func TestSettlementsWhileDisconnected(t *testing.T) {
	for _, history := range []bool{true, false} {
		node := lndtest.Start(t)
		c := newClient(t, node, 0)
		var old lnd.Invoice
		if history {
			old = invoice(t, c, 5)
			if err := node.Settle(old.PaymentHash); err != nil {
				t.Fatal(err)
			}
		}
		settled := make(chan lnd.Settlement, 10)
		subCtx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			c.SubscribeSettlements(subCtx, func(s lnd.Settlement) { settled <- s }, nil)
			close(done)
		}()
		waitFor(t, func() bool { return node.InvoiceSubscribers() == 1 })
		if history {
			select {
			case s := <-settled:
				if s.PaymentHash != old.PaymentHash {
					t.Errorf("first report %x, want the invoice settled before", s.PaymentHash[:4])
				}
			case <-time.After(10 * time.Second):
				t.Error("the invoice settled before the subscription was not reported")
			}
		}
		pending := invoice(t, c, 31)
		node.Stop()
		if err := node.Settle(pending.PaymentHash); err != nil {
			t.Fatal(err)
		}
		if err := node.Restart(); err != nil {
			t.Fatal(err)
		}
		select {
		case s := <-settled:
			if s.PaymentHash != pending.PaymentHash || s.AmountSat != 31 {
				t.Errorf("history %t: settlement %+v, want the one made while disconnected", history, s)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("history %t: the settlement made while disconnected was not reported", history)
		}
		cancel()
		<-done
	}
}

func invoice(t *testing.T, c *lnd.Client, sat int64) lnd.Invoice {
	t.Helper()
	inv, err := c.CreateInvoice(ctx(t), sat, "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A renewed tls.cert at the same path is used on the next dial: the node
// restarts with a new certificate and the client reconnects without being
// recreated. A client given only the certificate's bytes cannot.
func TestTLSCertRotation(t *testing.T) {
	node := lndtest.Start(t)
	mac, err := hex.DecodeString(node.MacaroonHex())
	if err != nil {
		t.Fatal(err)
	}
	rotating, err := lnd.New(lnd.Config{Address: node.Addr(), TLSCert: node.TLSCertPEM(), TLSCertFile: node.TLSCertPath(), Macaroon: mac})
	if err != nil {
		t.Fatal(err)
	}
	defer rotating.Close()
	fixed := newClient(t, node, 0)
	for _, c := range []*lnd.Client{rotating, fixed} {
		if _, err := c.Info(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}

	node.Stop()
	if err := node.RotateTLSCert(); err != nil {
		t.Fatal(err)
	}
	if err := node.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		_, err := rotating.Info(ctx(t))
		return err == nil
	})
	_, err = fixed.Info(ctx(t))
	wantCode(t, err, codes.Unavailable, "certificate")
}
