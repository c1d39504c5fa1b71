package lightning

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/certmagic"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/lightningcaddy/caddy-lightning/internal/redistest"
	"github.com/lightningcaddy/caddy-lightning/l402"
	"github.com/lightningcaddy/caddy-lightning/ledger"
	"github.com/lightningcaddy/caddy-lightning/ledger/ledgertest"
	"github.com/lightningcaddy/caddy-lightning/ledger/redisledger"
	"github.com/lightningcaddy/caddy-lightning/lnd"
	"github.com/lightningcaddy/caddy-lightning/lnd/lndtest"
	mpp "github.com/lightningcaddy/caddy-lightning/payment"
)

// benchNode is a fake node and a client for it.
func benchNode(b testing.TB) (*lndtest.Node, *lnd.Client) {
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
func benchApp(b testing.TB, client *lnd.Client) *App {
	return &App{client: client, feed: newSettlementFeed(), ctx: caddy.Context{Context: b.Context()}, logger: zap.NewNop()}
}

// benchPaywall is a pass paywall wired to a fake node, without Caddy.
func benchPaywall(b *testing.B) (*Paywall, *lndtest.Node) {
	return benchSellingPaywall(b, modePass, nil)
}

// benchSellingPaywall is a paywall selling in mode on led (nil for a pass),
// wired to a fake node, without Caddy.
func benchSellingPaywall(b testing.TB, mode string, led *sharedLedger) (*Paywall, *lndtest.Node) {
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
		Price: "100", ValidFor: 3600e9, InvoiceExpiry: 600e9, Service: "bench", Memo: "bench", mode: mode, price: 100, led: led,
		app: app, node: client, settled: app.settlements(), tokens: app.tokens, fixedKeys: keys,
		limits:   newInvoiceLimits(&Rate{}, &Rate{}),
		lookups:  newLookupGuard(&Rate{}),
		verified: newVerifiedCredentials(),
		logger:   zap.NewNop(),
		ready:    new(sync.Once),
	}
	p.offerList = defaultOffers(mode)
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
	ledgertest.Bench(b, func() {
		for range b.N {
			req.Header.Set("Authorization", authz)
			rec := httptest.NewRecorder()
			if err := p.ServeHTTP(rec, req, okHandler); err != nil || rec.Code != http.StatusOK {
				b.Fatalf("paid request: %d %v", rec.Code, err)
			}
		}
	})
}

// benchCredential mints a credential of the bench paywall for a payment of
// its own: what a buyer presents after paying.
func benchCredential(b *testing.B, p *Paywall, o offer) string {
	preimage := [32]byte{}
	if _, err := rand.Read(preimage[:]); err != nil {
		b.Fatal(err)
	}
	hash := sha256.Sum256(preimage[:])
	issued := time.Now()
	token, _, err := p.fixedKeys.Mint(hash, p.caveats(o, hash, issued, issued.Add(time.Hour))...)
	if err != nil {
		b.Fatal(err)
	}
	return "L402 " + token + ":" + hex.EncodeToString(preimage[:])
}

// benchFresh serves b.N requests, each with a credential never presented
// before (all minted before the timer starts), as every per_request buyer
// presents one. cpu-ns/op is the whole process's CPU time per request:
// the ledger's flusher and the garbage collector included.
func benchFresh(b *testing.B, p *Paywall) {
	creds := make([]string, b.N)
	for i := range creds {
		creds[i] = benchCredential(b, p, offer{amount: 100})
	}
	req := httptest.NewRequest(http.MethodGet, "/paid", nil)
	ledgertest.Bench(b, func() {
		for i := range b.N {
			req.Header.Set("Authorization", creds[i])
			rec := httptest.NewRecorder()
			if err := p.ServeHTTP(rec, req, okHandler); err != nil || rec.Code != http.StatusOK {
				b.Fatalf("request %d: %d %v %s", i, rec.Code, err, rec.Body)
			}
		}
	})
}

// benchMemoryLedger is an embedded ledger over file storage with its
// flusher running, loaded. MaxUnsaved is lifted as in package ledger's
// benchmarks: a loop runs far more claims and draws a second than the
// default lets one flush interval take.
func benchMemoryLedger(b testing.TB) *sharedLedger {
	m := ledger.NewMemory(&certmagic.FileStorage{Path: b.TempDir()}, ledger.MemoryOptions{MaxUnsaved: math.MaxInt})
	s := &sharedLedger{paywallLedger: m, backend: backendEmbedded, memory: m, logger: zap.NewNop()}
	if err := s.start(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Destruct() })
	return s
}

// BenchmarkPaywallPassFresh is a pass admitting a credential it has not
// seen: the full verification (BenchmarkPaywallPerRequest's baseline).
func BenchmarkPaywallPassFresh(b *testing.B) {
	p, _ := benchPaywall(b)
	benchFresh(b, p)
}

// BenchmarkPaywallPerRequest is a per_request paywall admitting a fresh
// payment: the pass's work plus the claim in the embedded ledger.
func BenchmarkPaywallPerRequest(b *testing.B) {
	p, _ := benchSellingPaywall(b, modePerRequest, benchMemoryLedger(b))
	benchFresh(b, p)
}

// BenchmarkPaywallCharge is a per_request paywall admitting a fresh
// Payment charge credential: parsing, the stateless verification (HMAC,
// expiry, amount, preimage; no node call), the claim in the embedded
// ledger, and the receipt.
func BenchmarkPaywallCharge(b *testing.B) {
	p, _ := benchSellingPaywall(b, modePerRequest, benchMemoryLedger(b))
	binder := p.tokens.snap.Load().challenges.binder
	creds := make([]string, b.N)
	for i := range creds {
		var preimage [32]byte
		if _, err := rand.Read(preimage[:]); err != nil {
			b.Fatal(err)
		}
		req := mpp.ChargeRequest{Amount: 100, MethodDetails: mpp.MethodDetails{
			Invoice: "lnbcrt1u1pbench", PaymentHash: sha256.Sum256(preimage[:]), Network: mpp.NetworkRegtest}}
		encoded, err := req.Encode()
		if err != nil {
			b.Fatal(err)
		}
		c := mpp.Challenge{Realm: "bench", Method: mpp.MethodLightning, Intent: mpp.IntentCharge, Request: encoded,
			Expires: mpp.FormatTime(time.Now().Add(10 * time.Minute))}
		if err := binder.Bind(&c); err != nil {
			b.Fatal(err)
		}
		if creds[i], err = (&mpp.Credential{Challenge: c, Payload: mpp.ChargePayloadJSON(preimage)}).Format(); err != nil {
			b.Fatal(err)
		}
	}
	req := httptest.NewRequest(http.MethodGet, "/paid", nil)
	ledgertest.Bench(b, func() {
		for i := range b.N {
			req.Header.Set("Authorization", creds[i])
			rec := httptest.NewRecorder()
			if err := p.ServeHTTP(rec, req, okHandler); err != nil || rec.Code != http.StatusOK || rec.Header().Get(mpp.ReceiptHeader) == "" {
				b.Fatalf("request %d: %d %v %s", i, rec.Code, err, rec.Body)
			}
		}
	})
}

// BenchmarkPaywallChallengeEveryOffer is the cost of a 402 offering L402,
// the Payment charge and x402 on one invoice.
func BenchmarkPaywallChallengeEveryOffer(b *testing.B) {
	p, _ := benchSellingPaywall(b, modePerRequest, benchMemoryLedger(b))
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, "/paid", nil)
		rec := httptest.NewRecorder()
		if err := p.ServeHTTP(rec, req, okHandler); err != nil || rec.Code != http.StatusPaymentRequired || rec.Header().Get("Payment-Required") == "" {
			b.Fatalf("challenge: %d %v", rec.Code, err)
		}
	}
}

// benchPrepaid serves b.N requests with one prepaid credential, each
// drawing 1 sat, and reports the ledger's round trips per request when
// commands counts them.
func benchPrepaid(b *testing.B, led *sharedLedger, commands func() int64) {
	p, _ := benchSellingPaywall(b, modePrepaid, led)
	p.price = 1
	authz := benchCredential(b, p, offer{amount: ledger.MaxSats})
	req := httptest.NewRequest(http.MethodGet, "/paid", nil)
	req.Header.Set("Authorization", authz)
	if rec := httptest.NewRecorder(); p.ServeHTTP(rec, req, okHandler) != nil || rec.Code != http.StatusOK {
		b.Fatalf("first request: %d %s", rec.Code, rec.Body)
	}
	var before int64
	if commands != nil {
		before = commands()
	}
	ledgertest.Bench(b, func() {
		for range b.N {
			req.Header.Set("Authorization", authz)
			rec := httptest.NewRecorder()
			if err := p.ServeHTTP(rec, req, okHandler); err != nil || rec.Code != http.StatusOK {
				b.Fatalf("prepaid request: %d %v %s", rec.Code, err, rec.Body)
			}
		}
	})
	if commands != nil {
		b.ReportMetric(float64(commands()-before)/float64(b.N), "roundtrips/op")
	}
}

// BenchmarkPaywallPrepaid is a prepaid request on the embedded ledger: the
// remembered credential (as BenchmarkPaywallPaid) and a draw.
func BenchmarkPaywallPrepaid(b *testing.B) {
	benchPrepaid(b, benchMemoryLedger(b), nil)
}

// BenchmarkPaywallPrepaidRedis is a prepaid request on Redis on loopback:
// one round trip, counted by the server.
func BenchmarkPaywallPrepaidRedis(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	l, err := redisledger.New(redisledger.Options{URL: srv.URL})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = l.Close() })
	stats := redis.NewClient(&redis.Options{Addr: srv.Addr})
	b.Cleanup(func() { _ = stats.Close() })
	commands := func() int64 {
		n, err := redistest.Commands(b.Context(), stats)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	benchPrepaid(b, &sharedLedger{paywallLedger: l, backend: backendRedis, redis: l, logger: zap.NewNop()}, commands)
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
