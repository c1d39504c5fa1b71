package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
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
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/zpay32"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/lightningcaddy/caddy-lightning/internal/caddyrun"
	"github.com/lightningcaddy/caddy-lightning/internal/regtest"
	"github.com/lightningcaddy/caddy-lightning/lightningpb"
	"github.com/lightningcaddy/caddy-lightning/lnd/lndtest"
)

// network is shared by the tests of this package; nil under -short.
var network *regtest.Network

func TestMain(m *testing.M) {
	code := regtest.RunTests(m, func(n *regtest.Network) { network = n })
	stopCaddy()
	os.Exit(code)
}

// Limits of the Caddyfile's lightning handlers, in satoshis.
const (
	maxPayment      = 50_000    // the API on the main site (REST and gRPC)
	whaleMaxPayment = 5_000_000 // the /whale/ route: above any channel's capacity
)

// testTimeout bounds each test's calls (a payment takes well under a
// second on regtest).
const testTimeout = 2 * time.Minute

// siteOptions are what the reload test changes in the Caddyfile; the node
// block never changes, so the connection to alice must survive reloads.
type siteOptions struct {
	// invoiceExpiry is the main REST route's invoice_expiry.
	invoiceExpiry time.Duration
	// marker is answered by GET /marker, to tell which config serves.
	marker string
}

// baseOptions is the config every test but the reload test runs with.
var baseOptions = siteOptions{invoiceExpiry: time.Hour, marker: "base"}

// api is the running Caddy: the main site (payments up to maxPayment, and
// up to whaleMaxPayment under /whale/) and a second site whose handlers
// leave max_payment unset.
type api struct {
	base     string // http://127.0.0.1:<port> of the main site
	noPay    string // http://127.0.0.1:<port> of the site without max_payment
	grpcAddr string // host:port of the main site, for gRPC over h2c
	noPayRPC string // host:port of the site without max_payment
	storage  string
}

// rest is the URL of a REST method on the main site.
func (a *api) rest(method string) string { return a.base + "/v1/lightning/" + method }

// whale is the URL of a REST method on the route with whaleMaxPayment.
func (a *api) whale(method string) string { return a.base + "/whale/v1/lightning/" + method }

// noPayREST is the URL of a REST method on the site without max_payment.
func (a *api) noPayREST(method string) string { return a.noPay + "/v1/lightning/" + method }

// caddyfile is the config as the README tells users to write it: the node
// in the global option, the API routed for REST and for gRPC, h2c on.
func (a *api) caddyfile(opts siteOptions) string {
	alice := network.Alice
	return fmt.Sprintf(`{
	admin off
	persist_config off
	default_bind 127.0.0.1
	storage file_system %[1]s
	servers {
		protocols h1 h2 h2c
	}
	lightning {
		%[2]s
	}
}

%[3]s {
	route /v1/lightning/* {
		lightning {
			max_payment %[5]d
			invoice_expiry %[7]s
		}
	}
	route /lightning.Lightning/* {
		lightning {
			max_payment %[5]d
		}
	}
	route /whale/v1/lightning/* {
		lightning {
			max_payment %[6]d
		}
	}
	respond /marker %[8]q 200
}

%[4]s {
	route /v1/lightning/* {
		lightning
	}
	route /lightning.Lightning/* {
		lightning
	}
}
`, a.storage, alice.CaddyLND(), a.base, a.noPay,
		maxPayment, whaleMaxPayment, opts.invoiceExpiry, opts.marker)
}

var (
	caddyOnce sync.Once
	caddyAPI  *api
	caddyErr  error
)

// startAPI returns the running Caddy, starting it with baseOptions on first
// use. It skips the test under -short.
func startAPI(t *testing.T) *api {
	t.Helper()
	if network == nil {
		t.Skip("needs the regtest network; not started under -short")
	}
	caddyOnce.Do(func() {
		a := &api{}
		ports := make([]int, 2)
		for i := range ports {
			if ports[i], caddyErr = caddyrun.FreePort(); caddyErr != nil {
				return
			}
		}
		a.grpcAddr = fmt.Sprintf("127.0.0.1:%d", ports[0])
		a.noPayRPC = fmt.Sprintf("127.0.0.1:%d", ports[1])
		a.base, a.noPay = "http://"+a.grpcAddr, "http://"+a.noPayRPC
		if a.storage, caddyErr = os.MkdirTemp("", "e2e-api-caddy-"); caddyErr != nil {
			return
		}
		if caddyErr = caddyrun.Load(a.caddyfile(baseOptions)); caddyErr != nil {
			caddyErr = fmt.Errorf("%w\n%s", caddyErr, a.caddyfile(baseOptions))
			return
		}
		caddyAPI = a
	})
	if caddyErr != nil {
		t.Fatalf("start caddy: %v", caddyErr)
	}
	return caddyAPI
}

// stopCaddy stops Caddy if a test started it.
func stopCaddy() {
	if caddyAPI == nil {
		return
	}
	if err := caddyrun.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stop caddy: %v\n", err)
	}
	os.RemoveAll(caddyAPI.storage)
}

// testContext is a context bounded by testTimeout, canceled at the end of t.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// httpClient sends the REST calls (HTTP/1.1, keep-alive).
var httpClient = &http.Client{Timeout: 90 * time.Second}

// apiResponse is an answer of the REST API.
type apiResponse struct {
	Status  int
	Header  http.Header
	Body    map[string]any
	Raw     string
	Latency time.Duration
}

// postJSON POSTs body (a string, or a value to encode as JSON) to url with
// client and decodes the JSON answer. It is safe in any goroutine.
func postJSON(client *http.Client, url string, body any) (apiResponse, error) {
	payload, ok := body.(string)
	if !ok {
		b, err := json.Marshal(body)
		if err != nil {
			return apiResponse{}, err
		}
		payload = string(b)
	}
	began := time.Now()
	resp, err := client.Post(url, "application/json", strings.NewReader(payload))
	if err != nil {
		return apiResponse{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	out := apiResponse{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw), Latency: time.Since(began)}
	if err != nil {
		return out, fmt.Errorf("POST %s: read body: %w", url, err)
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		return out, fmt.Errorf("POST %s: %d with Content-Type %q: %q", url, resp.StatusCode, resp.Header.Get("Content-Type"), raw)
	}
	if err := json.Unmarshal(raw, &out.Body); err != nil {
		return out, fmt.Errorf("POST %s: decode %q: %w", url, raw, err)
	}
	return out, nil
}

// post is postJSON for the test goroutine; it logs the call's latency.
func post(t *testing.T, url string, body any) apiResponse {
	t.Helper()
	resp, err := postJSON(httpClient, url, body)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("POST %s: %d in %v", shortURL(url), resp.Status, resp.Latency.Round(time.Millisecond))
	return resp
}

// shortURL drops the scheme and host from url for the logs.
func shortURL(url string) string {
	if i := strings.Index(strings.TrimPrefix(url, "http://"), "/"); i >= 0 {
		return strings.TrimPrefix(url, "http://")[i:]
	}
	return url
}

// field returns the string field name of a successful answer.
func (r apiResponse) field(t *testing.T, name string) string {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", r.Status, r.Raw)
	}
	v, ok := r.Body[name].(string)
	if !ok || v == "" {
		t.Fatalf("answer has no %q: %s", name, r.Raw)
	}
	return v
}

// wantError checks an error answer in grpc-gateway's shape:
// {"code", "message", "details": []} with the HTTP status of the code.
func (r apiResponse) wantError(t *testing.T, httpStatus, grpcCode int, messageParts ...string) {
	t.Helper()
	if r.Status != httpStatus {
		t.Fatalf("status = %d, want %d; body %s", r.Status, httpStatus, r.Raw)
	}
	if code, _ := r.Body["code"].(float64); int(code) != grpcCode {
		t.Errorf("code = %v, want %d; body %s", r.Body["code"], grpcCode, r.Raw)
	}
	msg, _ := r.Body["message"].(string)
	for _, part := range messageParts {
		if !strings.Contains(msg, part) {
			t.Errorf("message = %q, want it to contain %q", msg, part)
		}
	}
	if details, ok := r.Body["details"].([]any); !ok || len(details) != 0 {
		t.Errorf("details = %v, want []", r.Body["details"])
	}
	if len(r.Body) != 3 {
		t.Errorf("error body has fields other than code, message, details: %s", r.Raw)
	}
}

// grpcClient is a grpc-go client of the Lightning API at addr, over h2c.
func grpcClient(t *testing.T, addr string) lightningpb.LightningClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return lightningpb.NewLightningClient(conn)
}

// timed runs call and logs how long it took.
func timed(t *testing.T, what string, call func()) {
	t.Helper()
	began := time.Now()
	call()
	t.Logf("%s: %v", what, time.Since(began).Round(time.Millisecond))
}

// nodeClient dials node with its admin macaroon for the test's duration.
func nodeClient(t *testing.T, node *regtest.Node) lnrpc.LightningClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := node.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return lnrpc.NewLightningClient(conn)
}

// bobInvoice makes an invoice on bob for sat satoshis.
func bobInvoice(t *testing.T, bob lnrpc.LightningClient, sat int64, memo string, expiry time.Duration) *lnrpc.AddInvoiceResponse {
	t.Helper()
	inv, err := bob.AddInvoice(testContext(t), &lnrpc.Invoice{Value: sat, Memo: memo, Expiry: int64(expiry / time.Second)})
	if err != nil {
		t.Fatalf("bob: add invoice: %v", err)
	}
	return inv
}

// decodeRegtest decodes a regtest BOLT 11 invoice.
func decodeRegtest(t *testing.T, invoice string) *zpay32.Invoice {
	t.Helper()
	inv, err := zpay32.Decode(invoice, &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatalf("decode %q: %v", invoice, err)
	}
	return inv
}

// checkPreimage checks that the hex preimage hashes to hash.
func checkPreimage(t *testing.T, preimageHex string, hash []byte) []byte {
	t.Helper()
	preimage, err := hex.DecodeString(preimageHex)
	if err != nil || len(preimage) != 32 {
		t.Fatalf("preimage %q is not 32 bytes of hex", preimageHex)
	}
	if sum := sha256.Sum256(preimage); !bytes.Equal(sum[:], hash) {
		t.Fatalf("preimage %s hashes to %x, want the payment hash %x", preimageHex, sum, hash)
	}
	return preimage
}

// waitSettled waits (at most 10 s) until bob's invoice with hash is
// settled, and returns it.
func waitSettled(t *testing.T, bob lnrpc.LightningClient, hash []byte) *lnrpc.Invoice {
	t.Helper()
	ctx := testContext(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		inv, err := bob.LookupInvoice(ctx, &lnrpc.PaymentHash{RHash: hash})
		if err != nil {
			t.Fatalf("bob: lookup invoice %x: %v", hash, err)
		}
		if inv.State == lnrpc.Invoice_SETTLED {
			return inv
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob's invoice %x is %s, want SETTLED", hash, inv.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// localBalance is alice's balance over all her channels, in sat, read
// once no HTLC is pending on any of them (at most 10 s), so that payments
// of earlier tests have fully settled.
func localBalance(t *testing.T, alice lnrpc.LightningClient) int64 {
	t.Helper()
	ctx := testContext(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := alice.ListChannels(ctx, &lnrpc.ListChannelsRequest{})
		if err != nil {
			t.Fatalf("alice: list channels: %v", err)
		}
		var sum int64
		pending := 0
		for _, c := range resp.Channels {
			sum += c.LocalBalance
			pending += len(c.PendingHtlcs)
		}
		if pending == 0 {
			return sum
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice still has %d pending HTLCs after 10 s", pending)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitBalanceDrop waits (at most 10 s, for the channel updates to settle)
// until alice's local balance is before-drop, then checks that it stays
// there.
func waitBalanceDrop(t *testing.T, alice lnrpc.LightningClient, before, drop int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := before - localBalance(t, alice)
		if got == drop {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice's local balance dropped by %d sat, want %d (amount + fees, once)", got, drop)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if got := before - localBalance(t, alice); got != drop {
		t.Fatalf("alice's local balance dropped by %d sat after settling at %d", got, drop)
	}
	t.Logf("alice's local balance dropped by %d sat, once", drop)
}

// alicePayments returns alice's payments (any status) to hash.
func alicePayments(t *testing.T, alice lnrpc.LightningClient, hash []byte) []*lnrpc.Payment {
	t.Helper()
	resp, err := alice.ListPayments(testContext(t), &lnrpc.ListPaymentsRequest{
		IncludeIncomplete: true,
		Reversed:          true,
		MaxPayments:       10_000,
	})
	if err != nil {
		t.Fatalf("alice: list payments: %v", err)
	}
	var out []*lnrpc.Payment
	for _, p := range resp.Payments {
		if p.PaymentHash == hex.EncodeToString(hash) {
			out = append(out, p)
		}
	}
	return out
}

// wantOnePayment checks that alice has exactly one payment to hash, and
// that it succeeded for amount; it returns its fee.
func wantOnePayment(t *testing.T, alice lnrpc.LightningClient, hash []byte, amount int64) int64 {
	t.Helper()
	pays := alicePayments(t, alice, hash)
	if len(pays) != 1 {
		t.Fatalf("alice has %d payments to %x, want exactly 1: %v", len(pays), hash, pays)
	}
	p := pays[0]
	if p.Status != lnrpc.Payment_SUCCEEDED || p.ValueSat != amount {
		t.Fatalf("alice's payment to %x: status %s, value %d sat; want SUCCEEDED, %d sat", hash, p.Status, p.ValueSat, amount)
	}
	succeeded := 0
	for _, h := range p.Htlcs {
		if h.Status == lnrpc.HTLCAttempt_SUCCEEDED {
			succeeded++
		}
	}
	if succeeded == 0 {
		t.Fatalf("alice's payment to %x has no succeeded HTLC", hash)
	}
	return p.FeeSat
}

// mainnetInvoice is a valid, signed mainnet invoice of a random key.
func mainnetInvoice(t *testing.T, sat int64) string {
	t.Helper()
	key, err := btcec.NewPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	var hash, payAddr [32]byte
	rand.Read(hash[:])
	rand.Read(payAddr[:])
	inv, err := zpay32.NewInvoice(&chaincfg.MainNetParams, hash, time.Now(),
		zpay32.Amount(lnwire.MilliSatoshi(sat*1000)),
		zpay32.Description("mainnet coffee"),
		zpay32.PaymentAddr(payAddr),
		zpay32.CLTVExpiry(80),
	)
	if err != nil {
		t.Fatal(err)
	}
	bolt11, err := lndtest.SignInvoice(inv, key)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(bolt11, "lnbc") || strings.HasPrefix(bolt11, "lnbcrt") {
		t.Fatalf("%q is not a mainnet invoice", bolt11)
	}
	return bolt11
}

// randomPubkey is the public key of a node that does not exist.
func randomPubkey(t *testing.T) string {
	t.Helper()
	key, err := btcec.NewPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(key.PubKey().SerializeCompressed())
}

func sha256Sum(b []byte) []byte {
	sum := sha256.Sum256(b)
	return sum[:]
}

// bobKeysendInvoice finds, in bob's ListInvoices, the invoice that a
// keysend with payment hash created, waiting (at most 10 s) for it to be
// settled.
func bobKeysendInvoice(t *testing.T, bob lnrpc.LightningClient, hash []byte) *lnrpc.Invoice {
	t.Helper()
	ctx := testContext(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := bob.ListInvoices(ctx, &lnrpc.ListInvoiceRequest{Reversed: true, NumMaxInvoices: 1000})
		if err != nil {
			t.Fatalf("bob: list invoices: %v", err)
		}
		var found *lnrpc.Invoice
		for _, inv := range resp.Invoices {
			if bytes.Equal(inv.RHash, hash) {
				found = inv
			}
		}
		if found != nil && found.State == lnrpc.Invoice_SETTLED {
			return found
		}
		if time.Now().After(deadline) {
			if found == nil {
				t.Fatalf("bob has no invoice for the keysend with hash %x", hash)
			}
			return found
		}
		time.Sleep(50 * time.Millisecond)
	}
}
