package lnd_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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

func TestPayInvoice(t *testing.T) {
	node := lndtest.Start(t)
	c := newClient(t, node, 0)
	payreq, preimage := node.NewPayableInvoice(250)
	inv, err := c.DecodeInvoice(ctx(t), payreq)
	if err != nil {
		t.Fatal(err)
	}
	opts := lnd.PaymentOptions{FeeLimitSat: 10, Timeout: 5 * time.Second}
	pay, err := c.PayInvoice(ctx(t), inv, opts)
	if err != nil {
		t.Fatal(err)
	}
	if pay.Preimage != preimage || pay.PaymentHash != inv.PaymentHash || pay.AmountSat != 250 {
		t.Errorf("payment = %+v", pay)
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
			p, err := c.PayInvoice(ctx(t), inv2, opts)
			if err == nil && p.Preimage != preimage2 {
				err = status.Error(codes.Internal, "wrong preimage")
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
	if sends, tracks := node.Calls("SendPaymentV2"), node.Calls("TrackPaymentV2"); sends != 11 || tracks != 9 {
		t.Errorf("SendPaymentV2 = %d, TrackPaymentV2 = %d; want 11 and 9 (one real payment)", sends, tracks)
	}
}

func TestPaymentErrors(t *testing.T) {
	node := lndtest.Start(t)
	c := newClient(t, node, 0)
	opts := lnd.PaymentOptions{FeeLimitSat: 10, Timeout: 5 * time.Second}
	pay := func(payreq string, opts lnd.PaymentOptions) error {
		inv, err := c.DecodeInvoice(ctx(t), payreq)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.PayInvoice(ctx(t), inv, opts)
		return err
	}
	for reason, want := range map[lnrpc.PaymentFailureReason]codes.Code{
		lnrpc.PaymentFailureReason_FAILURE_REASON_NO_ROUTE:                  codes.FailedPrecondition,
		lnrpc.PaymentFailureReason_FAILURE_REASON_INSUFFICIENT_BALANCE:      codes.FailedPrecondition,
		lnrpc.PaymentFailureReason_FAILURE_REASON_TIMEOUT:                   codes.DeadlineExceeded,
		lnrpc.PaymentFailureReason_FAILURE_REASON_INCORRECT_PAYMENT_DETAILS: codes.InvalidArgument,
		lnrpc.PaymentFailureReason_FAILURE_REASON_ERROR:                     codes.Unknown,
	} {
		payreq, _ := node.NewPayableInvoice(10, lndtest.InvoiceFailure(reason))
		wantCode(t, pay(payreq, opts), want, "payment failed")
	}
	zero, _ := node.NewPayableInvoice(0)
	wantCode(t, pay(zero, opts), codes.InvalidArgument, "zero-amount")
	expired, _ := node.NewPayableInvoice(10, lndtest.InvoiceTimestamp(time.Now().Add(-time.Hour)), lndtest.InvoiceExpiry(time.Minute))
	wantCode(t, pay(expired, opts), codes.FailedPrecondition, "expired")
	ok, _ := node.NewPayableInvoice(10)
	wantCode(t, pay(ok, lnd.PaymentOptions{}), codes.InvalidArgument, "fee limit")
	own, err := c.CreateInvoice(ctx(t), 10, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := pay(own.PaymentRequest, opts); err == nil {
		t.Error("paying the node's own invoice succeeded")
	}
}

func TestKeysend(t *testing.T) {
	node := lndtest.Start(t)
	c := newClient(t, node, 0)
	opts := lnd.PaymentOptions{FeeLimitSat: 10}
	pay, err := c.Keysend(ctx(t), node.PeerPubkey(), 77, opts)
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(pay.Preimage[:]) != pay.PaymentHash || pay.AmountSat != 77 {
		t.Errorf("keysend payment = %+v", pay)
	}
	_, err = c.Keysend(ctx(t), "zz", 1, opts)
	wantCode(t, err, codes.InvalidArgument, "33-byte")
	_, err = c.Keysend(ctx(t), node.PeerPubkey(), -1, opts)
	wantCode(t, err, codes.InvalidArgument, "positive")
	_, err = c.Keysend(ctx(t), "05"+node.Pubkey()[2:], 1, opts)
	wantCode(t, err, codes.InvalidArgument, "not a valid public key")
	stranger, err := btcec.NewPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Keysend(ctx(t), hex.EncodeToString(stranger.PubKey().SerializeCompressed()), 1, opts)
	wantCode(t, err, codes.FailedPrecondition, "no route")
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
