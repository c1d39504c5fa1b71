package lndtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

func TestTLSCertificate(t *testing.T) {
	n := Start(t)
	block, _ := pem.Decode(n.TLSCertPEM())
	if block == nil {
		t.Fatal("TLSCertPEM: no PEM block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"127.0.0.1", "localhost", "::1"} {
		if err := cert.VerifyHostname(host); err != nil {
			t.Errorf("cert not valid for %s: %v", host, err)
		}
	}
	onDisk, err := os.ReadFile(n.TLSCertPath())
	if err != nil || string(onDisk) != string(n.TLSCertPEM()) {
		t.Fatalf("TLSCertPath content differs: %v", err)
	}

	// A client that does not trust the certificate cannot connect.
	conn, err := grpc.NewClient(n.Addr(),
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})),
		grpc.WithPerRPCCredentials(macaroonCreds(n.MacaroonHex())))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = lnrpc.NewLightningClient(conn).GetInfo(ctxT(t), &lnrpc.GetInfoRequest{})
	wantStatus(t, err, codes.Unavailable, "certificate")
}

// TestClientFromFiles connects the way an operator's config would: reading
// tls.cert and the binary macaroon from disk.
func TestClientFromFiles(t *testing.T) {
	n := Start(t)
	certPEM, err := os.ReadFile(n.TLSCertPath())
	if err != nil {
		t.Fatal(err)
	}
	mac, err := os.ReadFile(n.MacaroonPath())
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(mac) != n.MacaroonHex() {
		t.Fatal("MacaroonPath does not hold MacaroonHex")
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	for _, host := range []string{n.Addr(), strings.Replace(n.Addr(), "127.0.0.1", "localhost", 1)} {
		conn, err := grpc.NewClient(host,
			grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})),
			grpc.WithPerRPCCredentials(macaroonCreds(hex.EncodeToString(mac))))
		if err != nil {
			t.Fatal(err)
		}
		info, err := lnrpc.NewLightningClient(conn).GetInfo(ctxT(t), &lnrpc.GetInfoRequest{})
		conn.Close()
		if err != nil {
			t.Fatalf("GetInfo via %s: %v", host, err)
		}
		if info.IdentityPubkey != n.Pubkey() {
			t.Fatalf("pubkey %s, want %s", info.IdentityPubkey, n.Pubkey())
		}
	}
}

func TestMacaroon(t *testing.T) {
	n := Start(t)
	other := Start(t)
	ctx := ctxT(t)

	noMac := lnrpc.NewLightningClient(n.DialWithMacaroon(t, ""))
	_, err := noMac.GetInfo(ctx, &lnrpc.GetInfoRequest{})
	wantStatus(t, err, codes.Unknown, "expected 1 macaroon, got 0")

	// Streams are checked too; the error arrives on Recv.
	sub, err := noMac.SubscribeInvoices(ctx, &lnrpc.InvoiceSubscription{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = sub.Recv()
	wantStatus(t, err, codes.Unknown, "expected 1 macaroon, got 0")

	wrong := lnrpc.NewLightningClient(n.DialWithMacaroon(t, other.MacaroonHex()))
	_, err = wrong.AddInvoice(ctx, &lnrpc.Invoice{Value: 1})
	wantStatus(t, err, codes.Unknown, "verification failed: signature mismatch after caveat verification")

	garbage := lnrpc.NewLightningClient(n.DialWithMacaroon(t, "zz"))
	_, err = garbage.GetInfo(ctx, &lnrpc.GetInfoRequest{})
	wantStatus(t, err, codes.Unknown, "encoding/hex")

	// GetState needs no macaroon.
	st, err := lnrpc.NewStateClient(n.DialWithMacaroon(t, "")).GetState(ctx, &lnrpc.GetStateRequest{})
	if err != nil {
		t.Fatalf("GetState without macaroon: %v", err)
	}
	if st.State != lnrpc.WalletState_SERVER_ACTIVE {
		t.Fatalf("state %v", st.State)
	}
	if got := n.Calls("GetInfo"); got != 2 {
		t.Fatalf("Calls(GetInfo) = %d, want 2 (refused calls count)", got)
	}
}

func TestMacaroonPermissions(t *testing.T) {
	n := Start(t)
	ctx := ctxT(t)
	for _, kind := range []string{"admin", "readonly", "invoice", "router"} {
		data, err := os.ReadFile(n.MacaroonPathFor(kind))
		if err != nil || hex.EncodeToString(data) != n.MacaroonHexFor(kind) {
			t.Fatalf("%s macaroon file: %v", kind, err)
		}
	}
	if n.MacaroonHexFor("nope") != "" || n.MacaroonPathFor("nope") != "" || n.MacaroonHexFor("admin") != n.MacaroonHex() {
		t.Fatal("unexpected macaroon kinds")
	}

	inv := n.DialWithMacaroon(t, n.MacaroonHexFor("invoice"))
	if _, err := lnrpc.NewLightningClient(inv).AddInvoice(ctx, &lnrpc.Invoice{Value: 1}); err != nil {
		t.Fatalf("invoice macaroon AddInvoice: %v", err)
	}
	_, err := lnrpc.NewLightningClient(inv).GetInfo(ctx, &lnrpc.GetInfoRequest{})
	wantStatus(t, err, codes.Unknown, "permission denied")
	s, err := routerrpc.NewRouterClient(inv).SendPaymentV2(ctx, &routerrpc.SendPaymentRequest{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Recv()
	wantStatus(t, err, codes.Unknown, "permission denied")

	ro := lnrpc.NewLightningClient(n.DialWithMacaroon(t, n.MacaroonHexFor("readonly")))
	if _, err := ro.GetInfo(ctx, &lnrpc.GetInfoRequest{}); err != nil {
		t.Fatalf("readonly GetInfo: %v", err)
	}
	_, err = ro.AddInvoice(ctx, &lnrpc.Invoice{Value: 1})
	wantStatus(t, err, codes.Unknown, "permission denied")

	router := n.DialWithMacaroon(t, n.MacaroonHexFor("router"))
	payreq, _ := n.NewPayableInvoice(1)
	s, err = routerrpc.NewRouterClient(router).SendPaymentV2(ctx, routerrpcReq(payreq))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := s.Recv(); err != nil || p.Status != lnrpc.Payment_IN_FLIGHT {
		t.Fatalf("router macaroon SendPaymentV2: %v %v", p, err)
	}
	_, err = lnrpc.NewLightningClient(router).AddInvoice(ctx, &lnrpc.Invoice{Value: 1})
	wantStatus(t, err, codes.Unknown, "permission denied")
}

func TestGetInfoAndNetworks(t *testing.T) {
	prefixes := map[string]string{
		"regtest": "lnbcrt", "mainnet": "lnbc", "testnet": "lntb",
		"signet": "lntbs", "simnet": "lnsb", "testnet4": "lntb",
	}
	for network, prefix := range prefixes {
		t.Run(network, func(t *testing.T) {
			var opts []Option
			if network != "regtest" {
				opts = append(opts, WithNetwork(network))
			}
			n, c := startWithClients(t, opts...)
			if n.Network() != network {
				t.Fatalf("Network() = %q", n.Network())
			}
			info, err := c.ln.GetInfo(ctxT(t), &lnrpc.GetInfoRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if info.IdentityPubkey != n.Pubkey() || !info.SyncedToChain || info.BlockHeight == 0 || info.Alias == "" {
				t.Fatalf("unexpected GetInfo %v", info)
			}
			if len(info.Chains) != 1 || info.Chains[0].Chain != "bitcoin" || info.Chains[0].Network != network {
				t.Fatalf("chains %v", info.Chains)
			}
			inv, _ := addInvoice(t, c, 10, "x")
			if !strings.HasPrefix(inv.PaymentRequest, prefix+"1") && !strings.HasPrefix(inv.PaymentRequest, prefix) {
				t.Fatalf("payreq %s, want prefix %s", inv.PaymentRequest, prefix)
			}
		})
	}

	n, c := startWithClients(t, WithAlias("bob"))
	n.SetSynced(false)
	info, err := c.ln.GetInfo(ctxT(t), &lnrpc.GetInfoRequest{})
	if err != nil || info.Alias != "bob" || info.SyncedToChain {
		t.Fatalf("GetInfo %v, %v", info, err)
	}
}

func TestState(t *testing.T) {
	n, c := startWithClients(t)
	ctx := ctxT(t)
	sub, err := c.state.SubscribeState(ctx, &lnrpc.SubscribeStateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := sub.Recv()
	if err != nil || first.State != lnrpc.WalletState_SERVER_ACTIVE {
		t.Fatalf("first state %v, %v", first, err)
	}

	n.SetState(lnrpc.WalletState_UNLOCKED)
	next, err := sub.Recv()
	if err != nil || next.State != lnrpc.WalletState_UNLOCKED {
		t.Fatalf("next state %v, %v", next, err)
	}
	_, err = c.ln.GetInfo(ctx, &lnrpc.GetInfoRequest{})
	wantStatus(t, err, codes.Unknown, "the RPC server is in the process of starting up, but not yet ready to accept calls")
	st, err := c.state.GetState(ctx, &lnrpc.GetStateRequest{})
	if err != nil || st.State != lnrpc.WalletState_UNLOCKED {
		t.Fatalf("GetState %v, %v", st, err)
	}
	n.SetState(lnrpc.WalletState_LOCKED)
	_, err = c.ln.GetInfo(ctx, &lnrpc.GetInfoRequest{})
	wantStatus(t, err, codes.Unknown, "wallet locked")

	n.SetState(lnrpc.WalletState_SERVER_ACTIVE)
	if _, err := c.ln.GetInfo(ctx, &lnrpc.GetInfoRequest{}); err != nil {
		t.Fatal(err)
	}
}

func TestInjectedErrorsAndCalls(t *testing.T) {
	n, c := startWithClients(t)
	ctx := ctxT(t)

	n.SetErrorOnce("AddInvoice", status.Error(codes.Unavailable, "boom"))
	_, err := c.ln.AddInvoice(ctx, &lnrpc.Invoice{Value: 1})
	wantStatus(t, err, codes.Unavailable, "boom")
	if _, err := c.ln.AddInvoice(ctx, &lnrpc.Invoice{Value: 1}); err != nil {
		t.Fatalf("second AddInvoice: %v", err)
	}

	n.SetError("/lnrpc.Lightning/GetInfo", errors.New("plain"))
	for range 2 {
		_, err = c.ln.GetInfo(ctx, &lnrpc.GetInfoRequest{})
		wantStatus(t, err, codes.Unknown, "plain")
	}
	n.SetError("GetInfo", nil)
	if _, err := c.ln.GetInfo(ctx, &lnrpc.GetInfoRequest{}); err != nil {
		t.Fatal(err)
	}

	// Stream errors arrive on the first Recv.
	n.SetError("SubscribeInvoices", status.Error(codes.Internal, "stream broke"))
	sub, err := c.ln.SubscribeInvoices(ctx, &lnrpc.InvoiceSubscription{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = sub.Recv()
	wantStatus(t, err, codes.Internal, "stream broke")

	if n.Calls("AddInvoice") != 2 || n.Calls("/lnrpc.Lightning/GetInfo") != 3 || n.Calls("LookupInvoice") != 0 {
		t.Fatalf("calls: AddInvoice %d GetInfo %d LookupInvoice %d",
			n.Calls("AddInvoice"), n.Calls("GetInfo"), n.Calls("LookupInvoice"))
	}

	// Unsupported RPCs are Unimplemented (after the macaroon check).
	_, err = c.ln.WalletBalance(ctx, &lnrpc.WalletBalanceRequest{})
	wantStatus(t, err, codes.Unimplemented, "WalletBalance")
}

func TestDelay(t *testing.T) {
	n, c := startWithClients(t)
	n.SetDelay("GetInfo", time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.ln.GetInfo(ctx, &lnrpc.GetInfoRequest{})
	wantStatus(t, err, codes.DeadlineExceeded, "")
	if time.Since(start) > 5*time.Second {
		t.Fatal("deadline not honoured")
	}

	n.SetDelay("GetInfo", 50*time.Millisecond)
	start = time.Now()
	if _, err := c.ln.GetInfo(ctxT(t), &lnrpc.GetInfoRequest{}); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < 50*time.Millisecond {
		t.Fatal("delay not applied")
	}
	n.SetDelay("GetInfo", 0)
}

func TestStopRestart(t *testing.T) {
	n, c := startWithClients(t)
	ctx := ctxT(t)
	inv, hash := addInvoice(t, c, 100, "keep me")

	sub, err := c.ln.SubscribeInvoices(ctx, &lnrpc.InvoiceSubscription{})
	if err != nil {
		t.Fatal(err)
	}
	addr := n.Addr()
	n.Stop()
	n.Stop() // idempotent
	if _, err := sub.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("open invoice stream after Stop: %v, want EOF (lnd ends it without an error)", err)
	}
	_, err = c.ln.GetInfo(ctx, &lnrpc.GetInfoRequest{})
	wantStatus(t, err, codes.Unavailable, "")

	if err := n.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := n.Restart(); err == nil {
		t.Fatal("second Restart should fail while serving")
	}
	if n.Addr() != addr {
		t.Fatalf("address changed %s -> %s", addr, n.Addr())
	}
	// State survived. (A connection that saw the node go down reconnects
	// with gRPC's backoff, about 1s: use a fresh one or WaitForReady.)
	fresh := lnrpc.NewLightningClient(n.Dial(t))
	got, err := fresh.LookupInvoice(ctx, &lnrpc.PaymentHash{RHash: hash[:]})
	if err != nil {
		t.Fatalf("LookupInvoice after restart: %v", err)
	}
	if got.PaymentRequest != inv.PaymentRequest {
		t.Fatal("invoice lost across restart")
	}
}

// TestNoGoroutineLeak opens streams of every kind, then checks that the
// goroutine count comes back once the node is cleaned up.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Run("node", func(t *testing.T) {
		n, c := startWithClients(t)
		n.SetPaymentLatency(time.Hour)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if _, err := c.ln.SubscribeInvoices(ctx, &lnrpc.InvoiceSubscription{}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.state.SubscribeState(ctx, &lnrpc.SubscribeStateRequest{}); err != nil {
			t.Fatal(err)
		}
		payreq, _ := n.NewPayableInvoice(10)
		s, err := c.router.SendPaymentV2(ctx, routerrpcReq(payreq))
		if err != nil {
			t.Fatal(err)
		}
		if p, err := s.Recv(); err != nil || p.Status != lnrpc.Payment_IN_FLIGHT {
			t.Fatalf("%v %v", p, err)
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines %d -> %d\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}
