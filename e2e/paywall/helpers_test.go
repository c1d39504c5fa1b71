package paywall

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/lightningnetwork/lnd/zpay32"

	"github.com/lightningcaddy/caddy-lightning/internal/caddyrun"
	"github.com/lightningcaddy/caddy-lightning/l402"
)

// startCaddy runs Caddy in this process with alice as the lightning app's
// node and the given Caddyfile directives as the body of a site on a free
// loopback port, with its own storage (so its own generated root key). It
// stops Caddy at the end of the test and returns the site's base URL.
func startCaddy(t *testing.T, site string) string {
	t.Helper()
	port, err := caddyrun.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	loadCaddy(t, caddyConfig(port, t.TempDir(), site))
	t.Cleanup(func() {
		if err := caddyrun.Stop(); err != nil {
			t.Errorf("stop Caddy: %v", err)
		}
	})
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}

// caddyConfig is the Caddyfile of a site on port whose body is site, with
// alice as the node and storage in storageDir.
func caddyConfig(port int, storageDir, site string) string {
	cfg := fmt.Sprintf(`{
	admin off
	auto_https off
	persist_config off
	storage file_system %s
	log {
		level WARN
	}
	lightning {
		%s
	}
}

http://127.0.0.1:%d {
%s
}
`, storageDir, network.Alice.CaddyLND(), port, site)
	// Caddy warns about (and caddyrun refuses) unformatted input.
	return string(caddyfile.Format([]byte(cfg)))
}

// loadCaddy runs a Caddyfile, replacing (reloading) the running config.
func loadCaddy(t *testing.T, cfg string) {
	t.Helper()
	if err := caddyrun.Load(cfg); err != nil {
		t.Fatalf("%v\n%s", err, cfg)
	}
}

// received is one request as the upstream saw it.
type received struct {
	Method     string
	Path       string
	Header     http.Header
	BodyLen    int
	BodySHA256 [32]byte
	BodyErr    error
}

// upstream is the content server behind the paywall: it records what
// reaches it and answers "paid content: <method> <path>", or what respond
// says.
type upstream struct {
	*httptest.Server
	mu       sync.Mutex
	requests []received
	respond  func(w http.ResponseWriter, r *http.Request)
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		rec := received{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), BodyLen: int(n), BodyErr: err}
		h.Sum(rec.BodySHA256[:0])
		u.mu.Lock()
		u.requests = append(u.requests, rec)
		respond := u.respond
		u.mu.Unlock()
		if respond != nil {
			respond(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "paid content: %s %s", r.Method, r.URL.Path)
	}))
	t.Cleanup(u.Close)
	return u
}

// hostPort is the upstream's address for reverse_proxy.
func (u *upstream) hostPort() string { return strings.TrimPrefix(u.URL, "http://") }

// received returns what reached the upstream so far.
func (u *upstream) received() []received {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]received(nil), u.requests...)
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.requests)
}

// last returns the last request that reached the upstream.
func (u *upstream) last(t *testing.T) received {
	t.Helper()
	r := u.received()
	if len(r) == 0 {
		t.Fatal("nothing reached the upstream")
	}
	return r[len(r)-1]
}

// client is the HTTP client of the tests: no cookie jar, no redirects.
var client = &http.Client{
	Timeout: 60 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// do sends a request and returns the response with its body read.
func do(t *testing.T, method, url string, header http.Header, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, b
}

func get(t *testing.T, url string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	return do(t, http.MethodGet, url, header, nil)
}

// auth returns a header with the given Authorization values, in order.
func auth(values ...string) http.Header {
	return http.Header{"Authorization": values}
}

// challengeBody is the JSON body of a 402 or 401.
type challengeBody struct {
	Message     string `json:"message"`
	Invoice     string `json:"invoice"`
	Token       string `json:"token"`
	PaymentHash string `json:"payment_hash"`
	PriceSat    int64  `json:"price_sat"`
	ExpiresAt   string `json:"expires_at"`
}

// challenge is what a client learns from a 402 or 401.
type challenge struct {
	l402.Challenge
	Body   challengeBody
	Hash   [32]byte  // the payment hash, from the token
	Issued time.Time // when the request was sent
}

// parseChallenge checks that resp is a well-formed challenge with status
// want, as a client parses it: WWW-Authenticate through l402.ParseChallenge,
// the JSON body, the token's identifier.
func parseChallenge(t *testing.T, resp *http.Response, body []byte, want int) challenge {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("status %d, want %d: %.300s", resp.StatusCode, want, body)
	}
	values := resp.Header.Values("WWW-Authenticate")
	ch, err := l402.ParseChallenge(values)
	if err != nil {
		t.Fatalf("WWW-Authenticate %q: %v", values, err)
	}
	if ch.Scheme != "L402" {
		t.Errorf("challenge scheme %q, want L402", ch.Scheme)
	}
	if len(l402.ParseChallenges(values)) != 2 {
		t.Errorf("WWW-Authenticate %q: want an LSAT and an L402 challenge", values)
	}
	c := challenge{Challenge: ch}
	if err := json.Unmarshal(body, &c.Body); err != nil {
		t.Fatalf("challenge body: %v: %.300s", err, body)
	}
	if c.Body.Token != ch.Token || c.Body.Invoice != ch.Invoice {
		t.Errorf("body token/invoice differ from WWW-Authenticate")
	}
	tok, err := l402.DecodeToken(ch.Token)
	if err != nil {
		t.Fatalf("decode token: %v", err)
	}
	c.Hash = tok.Identifier.PaymentHash
	if c.Body.PaymentHash != hex.EncodeToString(c.Hash[:]) {
		t.Errorf("body payment_hash %s, token's %x", c.Body.PaymentHash, c.Hash)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("challenge Cache-Control %q, want no-store", cc)
	}
	return c
}

// getChallenge asks url for a challenge as a program does (Accept JSON, no
// credentials) and expects 402.
func getChallenge(t *testing.T, url string) challenge {
	t.Helper()
	issued := time.Now()
	resp, body := get(t, url, http.Header{"Accept": {"application/json"}})
	c := parseChallenge(t, resp, body, http.StatusPaymentRequired)
	c.Issued = issued
	return c
}

// pay pays invoice from bob's node and returns the preimage, checked
// against hash.
func pay(t *testing.T, invoice string, hash [32]byte) [32]byte {
	t.Helper()
	p, err := payInvoice(invoice, hash)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// payInvoice is pay for goroutines.
func payInvoice(invoice string, hash [32]byte) ([32]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	raw, err := network.Bob.PayInvoice(ctx, invoice)
	if err != nil {
		return [32]byte{}, err
	}
	var p [32]byte
	if copy(p[:], raw) != 32 {
		return p, fmt.Errorf("preimage of %d bytes", len(raw))
	}
	if sha256.Sum256(p[:]) != hash {
		return p, fmt.Errorf("preimage %x does not hash to %x", p, hash)
	}
	return p, nil
}

// credential is the Authorization value "L402 <token>:<preimage hex>".
func credential(token string, preimage [32]byte) string {
	return "L402 " + token + ":" + hex.EncodeToString(preimage[:])
}

// buy gets a challenge from url, has bob pay it, and returns the challenge
// and the preimage.
func buy(t *testing.T, url string) (challenge, [32]byte) {
	t.Helper()
	c := getChallenge(t, url)
	return c, pay(t, c.Invoice, c.Hash)
}

// decodeInvoice decodes a regtest BOLT 11 invoice.
func decodeInvoice(t *testing.T, invoice string) *zpay32.Invoice {
	t.Helper()
	inv, err := zpay32.Decode(invoice, &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatalf("decode invoice %q: %v", invoice, err)
	}
	return inv
}

// checkInvoice checks that invoice is alice's, for sats, with hash.
func checkInvoice(t *testing.T, invoice string, sats int64, hash [32]byte) *zpay32.Invoice {
	t.Helper()
	inv := decodeInvoice(t, invoice)
	if inv.MilliSat == nil || int64(*inv.MilliSat) != sats*1000 {
		t.Errorf("invoice amount %v msat, want %d sat", inv.MilliSat, sats)
	}
	if inv.PaymentHash == nil || *inv.PaymentHash != hash {
		t.Errorf("invoice payment hash %x, want %x", inv.PaymentHash, hash)
	}
	if payee := hex.EncodeToString(inv.Destination.SerializeCompressed()); payee != network.Alice.Pubkey {
		t.Errorf("invoice payee %s, want alice %s", payee, network.Alice.Pubkey)
	}
	return inv
}

// expectStatus fails unless resp has status want.
func expectStatus(t *testing.T, what string, resp *http.Response, body []byte, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("%s: status %d, want %d: %.300s", what, resp.StatusCode, want, body)
	}
}

// expectContent fails unless resp is the upstream's answer for path.
func expectContent(t *testing.T, what string, resp *http.Response, body []byte, method, path string) {
	t.Helper()
	want := "paid content: " + method + " " + path
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, []byte(want)) {
		t.Fatalf("%s: %d %.300q, want 200 %q", what, resp.StatusCode, body, want)
	}
}

// hasL402 reports whether any Authorization value is L402 or LSAT.
func hasL402(h http.Header) bool {
	for _, v := range h.Values("Authorization") {
		scheme, _, _ := strings.Cut(strings.TrimSpace(v), " ")
		if strings.EqualFold(scheme, "L402") || strings.EqualFold(scheme, "LSAT") {
			return true
		}
	}
	return false
}
