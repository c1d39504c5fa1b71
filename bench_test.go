package lightning

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/lightningcaddy/caddy-lightning/l402"
	"github.com/lightningcaddy/caddy-lightning/lnd"
	"github.com/lightningcaddy/caddy-lightning/lnd/lndtest"
)

// benchNode is a fake node and a client for it.
func benchNode(b *testing.B) (*lndtest.Node, *lnd.Client) {
	b.Helper()
	node := lndtest.Start(b)
	mac, _ := hex.DecodeString(node.MacaroonHex())
	client, err := lnd.New(lnd.Config{Address: node.Addr(), TLSCert: node.TLSCertPEM(), Macaroon: mac})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = client.Close() })
	return node, client
}

// benchHandler is the API handler wired to a fake node, without Caddy.
func benchHandler(b *testing.B) (*Handler, *lndtest.Node) {
	node, client := benchNode(b)
	svc := &service{
		app:            benchApp(b, client),
		node:           client,
		invoiceExpiry:  time.Hour,
		maxPayment:     1_000_000,
		paymentTimeout: time.Minute,
		invoiceLimits:  newClientLimits(&Rate{}),
		logger:         zap.NewNop(),
	}
	return &Handler{api: svc, rest: svc.restMethods(), logger: zap.NewNop()}, node
}

func benchREST(b *testing.B, h *Handler, method string, body func() []byte) {
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/lightning/"+method, bytes.NewReader(body()))
		rec := httptest.NewRecorder()
		if err := h.ServeHTTP(rec, req, nil); err != nil || rec.Code != http.StatusOK {
			b.Fatalf("%s: %d %s %v", method, rec.Code, rec.Body, err)
		}
	}
}

func BenchmarkGenerateInvoice(b *testing.B) {
	h, _ := benchHandler(b)
	benchREST(b, h, "generateinvoice", func() []byte { return []byte(`{"amount": 100, "memo": "bench"}`) })
}

func BenchmarkCheckInvoice(b *testing.B) {
	h, node := benchHandler(b)
	inv, err := h.api.node.CreateInvoice(b.Context(), 100, "", 0)
	if err != nil {
		b.Fatal(err)
	}
	if err := node.Settle(inv.PaymentHash); err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"invoice": "` + inv.PaymentRequest + `"}`)
	benchREST(b, h, "checkinvoice", func() []byte { return body })
}

func BenchmarkPayInvoice(b *testing.B) {
	h, node := benchHandler(b)
	benchREST(b, h, "payinvoice", func() []byte {
		b.StopTimer()
		invoice, _ := node.NewPayableInvoice(100)
		b.StartTimer()
		return []byte(`{"invoice": "` + invoice + `"}`)
	})
}

func BenchmarkKeysend(b *testing.B) {
	h, node := benchHandler(b)
	body := []byte(`{"pubkey": "` + node.PeerPubkey() + `", "amount": 10}`)
	benchREST(b, h, "keysend", func() []byte { return body })
}

// benchApp is a lightning app around client, without Caddy or events.
func benchApp(b *testing.B, client *lnd.Client) *App {
	return &App{client: client, feed: newSettlementFeed(), ctx: caddy.Context{Context: b.Context()}, logger: zap.NewNop()}
}

// benchPaywall is a paywall wired to a fake node, without Caddy.
func benchPaywall(b *testing.B) (*Paywall, *lndtest.Node) {
	node, client := benchNode(b)
	keys, err := l402.NewKeyring(l402.NewRootKey())
	if err != nil {
		b.Fatal(err)
	}
	app := benchApp(b, client)
	app.tokens = newTokenStore(&certmagic.FileStorage{Path: b.TempDir()}, zap.NewNop())
	if err := app.tokens.open(b.Context()); err != nil {
		b.Fatal(err)
	}
	p := &Paywall{
		Price: 100, ValidFor: 3600e9, InvoiceExpiry: 600e9, Service: "bench", Memo: "bench",
		app: app, node: client, settled: app.settlements(), tokens: app.tokens, fixedKeys: keys,
		limits:   newInvoiceLimits(&Rate{}, &Rate{}),
		lookups:  newLookupGuard(&Rate{}),
		verified: newVerifiedCredentials(),
		logger:   zap.NewNop(),
		ready:    new(sync.Once),
	}
	p.resolve()
	return p, node
}

var okHandler = caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
	w.WriteHeader(http.StatusOK)
	return nil
})

// BenchmarkPaywallPaid is the cost of a request with a valid token and
// preimage: parsing, verification, stripping the credential.
func BenchmarkPaywallPaid(b *testing.B) {
	p, _ := benchPaywall(b)
	preimage := [32]byte{7}
	token, _, err := p.fixedKeys.Mint(sha256.Sum256(preimage[:]), l402.ServicesCaveat(l402.Service{Name: "bench"}),
		l402.ValidUntilCaveat("bench", time.Now().Add(time.Hour)), l402.PriceCaveat("bench", 100))
	if err != nil {
		b.Fatal(err)
	}
	authz := "L402 " + token + ":" + hex.EncodeToString(preimage[:])
	req := httptest.NewRequest(http.MethodGet, "/paid", nil)
	b.ReportAllocs()
	for b.Loop() {
		req.Header.Set("Authorization", authz)
		rec := httptest.NewRecorder()
		if err := p.ServeHTTP(rec, req, okHandler); err != nil || rec.Code != http.StatusOK {
			b.Fatalf("paid request: %d %v", rec.Code, err)
		}
	}
}

// BenchmarkPaywallChallenge is the cost of a 402: an invoice from the node
// (over gRPC to the fake) and a new token.
func BenchmarkPaywallChallenge(b *testing.B) {
	p, _ := benchPaywall(b)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, "/paid", nil)
		rec := httptest.NewRecorder()
		if err := p.ServeHTTP(rec, req, okHandler); err != nil || rec.Code != http.StatusPaymentRequired {
			b.Fatalf("challenge: %d %v", rec.Code, err)
		}
	}
}
