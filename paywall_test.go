package lightning

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningnetwork/lnd/lnrpc"

	"github.com/lightningcaddy/caddy-lightning/l402"
	"github.com/lightningcaddy/caddy-lightning/lnd"
	"github.com/lightningcaddy/caddy-lightning/lnd/lndtest"
)

// upstream echoes what the rest of the route sees.
const upstream = `respond "paid {http.paywall.price} {http.paywall.service} {http.paywall.payment_hash} auth=[{http.request.header.Authorization}] cookie=[{http.request.header.Cookie}]"`

// startPaywall serves a paywall configured by block in front of upstream,
// with a fake node.
func startPaywall(t *testing.T, block string) (string, *lndtest.Node) {
	t.Helper()
	node := lndtest.Start(t)
	base := startCaddy(t, lndOption(node), fmt.Sprintf("\troute /paid/* {\n\t\tpaywall %s\n\t\t%s\n\t}\n\trespond \"free\"", block, upstream))
	return base, node
}

// challenge is a parsed 402 or 401 answer.
type challenge struct {
	Status int
	Body   challengeBody
	Header http.Header
}

func get(t testing.TB, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	return do(t, http.MethodGet, url, header, nil)
}

func do(t testing.TB, method, url string, header http.Header, body io.Reader) (*http.Response, string) {
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
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(raw)
}

func getChallenge(t testing.TB, url string, header http.Header, wantStatus int) challenge {
	t.Helper()
	resp, raw := get(t, url, header)
	if resp.StatusCode != wantStatus {
		t.Fatalf("status = %d, want %d: %s", resp.StatusCode, wantStatus, raw)
	}
	var c challenge
	c.Status, c.Header = resp.StatusCode, resp.Header
	if err := json.Unmarshal([]byte(raw), &c.Body); err != nil {
		t.Fatalf("decode challenge %q: %v", raw, err)
	}
	return c
}

// settleAndProve pays a challenge's invoice on the fake node and returns
// the preimage.
func settleAndProve(t testing.TB, node *lndtest.Node, c challenge) [32]byte {
	t.Helper()
	hash := paymentHash(t, c.Body.Invoice)
	if err := node.Settle(hash); err != nil {
		t.Fatal(err)
	}
	inv, err := lnrpc.NewLightningClient(node.Dial(t)).LookupInvoice(context.Background(), &lnrpc.PaymentHash{RHash: hash[:]})
	if err != nil {
		t.Fatal(err)
	}
	var preimage [32]byte
	copy(preimage[:], inv.RPreimage)
	return preimage
}

func auth(values ...string) http.Header {
	return http.Header{"Authorization": values}
}

func l402Auth(token string, preimage [32]byte) string {
	return "L402 " + token + ":" + hex.EncodeToString(preimage[:])
}

func TestPaywallChallengeAndPreimage(t *testing.T) {
	base, node := startPaywall(t, "{\n\t\tprice 100\n\t\tmemo \"API {http.request.uri.path}\"\n\t\tservice api\n\t}")

	if resp, body := get(t, base+"/free", nil); resp.StatusCode != 200 || body != "free" {
		t.Fatalf("free route: %d %s", resp.StatusCode, body)
	}
	c := getChallenge(t, base+"/paid/x", nil, http.StatusPaymentRequired)
	parsed, err := l402.ParseChallenge(c.Header.Values("WWW-Authenticate"))
	if err != nil || parsed.Token != c.Body.Token || parsed.Invoice != c.Body.Invoice {
		t.Fatalf("WWW-Authenticate %q does not carry the token and invoice: %v", c.Header.Values("WWW-Authenticate"), err)
	}
	if !strings.Contains(strings.Join(c.Header.Values("WWW-Authenticate"), "\n"), `macaroon="`+c.Body.Token+`"`) {
		t.Errorf("challenge lacks the macaroon= parameter older clients read")
	}
	inv, err := lnd.DecodeInvoice(c.Body.Invoice, &chaincfg.RegressionNetParams)
	if err != nil || inv.AmountSat != 100 || c.Body.PriceSat != 100 {
		t.Fatalf("invoice %+v, %v; price %d", inv, err, c.Body.PriceSat)
	}

	preimage := settleAndProve(t, node, c)
	lookups := node.Calls("LookupInvoice")
	resp, body := get(t, base+"/paid/x", auth(l402Auth(c.Body.Token, preimage)))
	want := fmt.Sprintf("paid 100 api %s auth=[] cookie=[]", c.Body.PaymentHash)
	if resp.StatusCode != 200 || body != want {
		t.Fatalf("paid request: %d %q, want %q", resp.StatusCode, body, want)
	}
	// Scheme in any case, hex in upper case, LSAT, and a bad credential
	// beside a good one.
	upper := "l402 " + c.Body.Token + ":" + strings.ToUpper(hex.EncodeToString(preimage[:]))
	for _, h := range []http.Header{
		auth(upper),
		auth("LSAT " + c.Body.Token + ":" + hex.EncodeToString(preimage[:])),
		auth("L402 garbage:00", l402Auth(c.Body.Token, preimage)),
		auth("Basic dXNlcjpwYXNz", l402Auth(c.Body.Token, preimage)),
	} {
		if resp, body := get(t, base+"/paid/y", h); resp.StatusCode != 200 {
			t.Errorf("Authorization %q: %d %s", h.Values("Authorization"), resp.StatusCode, body)
		}
	}
	// Other credentials than L402 reach the upstream.
	if _, body := get(t, base+"/paid/y", auth("Basic dXNlcjpwYXNz", l402Auth(c.Body.Token, preimage))); !strings.Contains(body, "auth=[Basic dXNlcjpwYXNz]") {
		t.Errorf("upstream saw %q", body)
	}
	if got := node.Calls("LookupInvoice"); got != lookups {
		t.Errorf("preimage-verified requests made %d node lookups, want 0", got-lookups)
	}
}

func TestPaywallRejects(t *testing.T) {
	base, node := startPaywall(t, "100 {\n\t\tservice api\n\t}")
	c := getChallenge(t, base+"/paid/", nil, http.StatusPaymentRequired)
	preimage := settleAndProve(t, node, c)
	other := getChallenge(t, base+"/paid/", nil, http.StatusPaymentRequired)

	// A token from a paywall with another key, service or price.
	foreignKeys, _ := l402.NewKeyring(l402.NewRootKey())
	hash := paymentHash(t, c.Body.Invoice)
	forged, _, _ := foreignKeys.Mint(hash, l402.ServicesCaveat(l402.Service{Name: "api"}), l402.PriceCaveat("api", 100))

	for name, h := range map[string]http.Header{
		"wrong preimage":    auth(l402Auth(c.Body.Token, [32]byte{1})),
		"preimage of other": auth(l402Auth(other.Body.Token, preimage)),
		"forged signature":  auth(l402Auth(forged, preimage)),
		"garbage":           auth("L402 !!!!:zz"),
		"unpaid token":      auth("L402 " + other.Body.Token),
		"truncated token":   auth(l402Auth(c.Body.Token[:len(c.Body.Token)/2], preimage)),
		"oversized header":  auth("L402 " + strings.Repeat("A", 9000) + ":" + hex.EncodeToString(preimage[:])),
		"oversized cookie":  {"Cookie": {"l402_api_100=" + strings.Repeat("A", 5000)}},
	} {
		t.Run(name, func(t *testing.T) {
			got := getChallenge(t, base+"/paid/", h, http.StatusUnauthorized)
			if got.Body.Invoice == "" || len(got.Header.Values("WWW-Authenticate")) == 0 {
				t.Errorf("401 without a fresh challenge: %+v", got)
			}
		})
	}
}

func TestPaywallServiceAndPriceBinding(t *testing.T) {
	node := lndtest.Start(t)
	base := startCaddy(t, lndOption(node), `	route /cheap/* {
		paywall 10 {
			service api
		}
		respond "cheap"
	}
	route /dear/* {
		paywall 1000 {
			service api
		}
		respond "dear"
	}
	route /other/* {
		paywall 10 {
			service other
		}
		respond "other"
	}`)
	c := getChallenge(t, base+"/cheap/", nil, http.StatusPaymentRequired)
	h := auth(l402Auth(c.Body.Token, settleAndProve(t, node, c)))
	if resp, _ := get(t, base+"/cheap/", h); resp.StatusCode != 200 {
		t.Fatalf("cheap route with its token: %d", resp.StatusCode)
	}
	getChallenge(t, base+"/dear/", h, http.StatusUnauthorized)
	getChallenge(t, base+"/other/", h, http.StatusUnauthorized)
}

func TestPaywallTokenWithoutPreimage(t *testing.T) {
	base, node := startPaywall(t, "100")
	c := getChallenge(t, base+"/paid/", nil, http.StatusPaymentRequired)
	tokenOnly := auth("L402 " + c.Body.Token)
	getChallenge(t, base+"/paid/", tokenOnly, http.StatusUnauthorized)
	settleAndProve(t, node, c)

	before := node.Calls("LookupInvoice")
	for range 5 {
		if resp, body := get(t, base+"/paid/", tokenOnly); resp.StatusCode != 200 {
			t.Fatalf("settled token: %d %s", resp.StatusCode, body)
		}
	}
	if got := node.Calls("LookupInvoice") - before; got > 1 {
		t.Errorf("5 requests with one settled token made %d lookups, want at most 1", got)
	}
}

// pageChallenge asks url for the payment page as a browser does, and
// returns the challenge (from WWW-Authenticate) and the cookie that binds
// its token to this browser.
func pageChallenge(t *testing.T, url string, header http.Header) (challenge, *http.Cookie) {
	t.Helper()
	h := http.Header{"Accept": {"text/html,application/xhtml+xml,*/*;q=0.8"}}
	for k, v := range header {
		h[k] = v
	}
	resp, body := get(t, url, h)
	if resp.StatusCode != http.StatusPaymentRequired || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("payment page: %d %.200s", resp.StatusCode, body)
	}
	parsed, err := l402.ParseChallenge(resp.Header.Values("WWW-Authenticate"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := l402.DecodeToken(parsed.Token)
	if err != nil {
		t.Fatal(err)
	}
	c := challenge{Status: resp.StatusCode, Header: resp.Header, Body: challengeBody{Token: parsed.Token, Invoice: parsed.Invoice,
		PaymentHash: hex.EncodeToString(tok.Identifier.PaymentHash[:])}}
	for _, ck := range resp.Cookies() {
		if strings.HasPrefix(strings.TrimPrefix(ck.Name, "__Host-"), "l402_page_") {
			if !ck.HttpOnly || ck.Path != "/" || ck.SameSite != http.SameSiteLaxMode || ck.MaxAge <= 0 {
				t.Errorf("binding cookie attributes: %q", resp.Header.Get("Set-Cookie"))
			}
			return c, ck
		}
	}
	t.Fatalf("the payment page sets no binding cookie: %q", resp.Header.Values("Set-Cookie"))
	return c, nil
}

// waitRequest is the payment page's long poll.
func waitRequest(url, authorization string, cookies ...*http.Cookie) (*http.Response, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Authorization", authorization)
	req.Header.Set(waitHeader, "1")
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp, string(raw), err
}

func TestPaywallWaitAndCookie(t *testing.T) {
	base, node := startPaywall(t, "100 {\n\t\tvalid_for 30m\n\t}")
	c, binding := pageChallenge(t, base+"/paid/", nil)

	// The page's long poll is held until the invoice settles; the
	// settlement comes from the node's invoice stream.
	lookups := node.Calls("LookupInvoice")
	type answer struct {
		resp *http.Response
		body string
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, body, err := waitRequest(base+"/paid/", "L402 "+c.Body.Token, binding)
		answered <- answer{resp, body, err}
	}()
	for node.Calls("LookupInvoice") == lookups { // the poll has asked the node once
		time.Sleep(time.Millisecond)
	}
	settleAndProve(t, node, c)
	a := <-answered
	if a.err != nil || a.resp.StatusCode != 200 || a.body != `{"paid":true}` {
		t.Fatalf("wait: %v %v %s", a.err, a.resp, a.body)
	}
	var access *http.Cookie
	for _, ck := range a.resp.Cookies() {
		switch {
		case strings.HasPrefix(ck.Name, "l402_paywall-") && strings.HasSuffix(ck.Name, "_100"):
			access = ck
		default:
			t.Errorf("unexpected cookie %+v", ck)
		}
	}
	// The token lasts invoice_expiry (10m) + valid_for (30m) from its issue
	// (rounded up to whole seconds).
	if access == nil || !access.HttpOnly || access.Secure || access.SameSite != http.SameSiteLaxMode ||
		access.MaxAge <= 1800 || access.MaxAge > 2401 {
		t.Fatalf("access cookie %+v", access)
	}
	lookups = node.Calls("LookupInvoice")
	cookie := http.Header{"Cookie": {access.Name + "=" + access.Value}}
	resp, body := get(t, base+"/paid/", cookie)
	if resp.StatusCode != 200 || !strings.Contains(body, "cookie=[]") {
		t.Fatalf("with cookie: %d %s", resp.StatusCode, body)
	}
	if got := node.Calls("LookupInvoice"); got != lookups {
		t.Errorf("cookie request made %d lookups, want 0", got-lookups)
	}

	// WebLN: the page sends the preimage and gets the cookie at once.
	c2, binding2 := pageChallenge(t, base+"/paid/", nil)
	preimage := settleAndProve(t, node, c2)
	resp, body, err := waitRequest(base+"/paid/", l402Auth(c2.Body.Token, preimage), binding2)
	if err != nil || resp.StatusCode != 200 || body != `{"paid":true}` || len(resp.Cookies()) != 1 {
		t.Fatalf("wait with preimage: %v %v %s %v", err, resp, body, resp.Cookies())
	}
}

func TestPaywallBrowserPage(t *testing.T) {
	base, _ := startPaywall(t, "2100")
	resp, body := get(t, base+"/paid/", http.Header{"Accept": {"text/html,application/xhtml+xml,*/*;q=0.8"}})
	if resp.StatusCode != http.StatusPaymentRequired || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("browser: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(body, "nonce=") {
		t.Errorf("CSP %q or nonce missing", csp)
	}
	if len(resp.Header.Values("WWW-Authenticate")) == 0 || !strings.Contains(body, "lnbcrt") {
		t.Error("page lacks the challenge or the invoice")
	}
}

func TestPaywallPostWithBody(t *testing.T) {
	base, _ := startPaywall(t, "100")
	resp, raw := do(t, http.MethodPost, base+"/paid/upload", http.Header{"Content-Type": {"application/json"}}, strings.NewReader(strings.Repeat(`{"x":1}`, 100000)))
	if resp.StatusCode != http.StatusPaymentRequired || !strings.Contains(raw, `"invoice"`) {
		t.Fatalf("POST with body: %d %.200s", resp.StatusCode, raw)
	}
}

func TestPaywallRateLimit(t *testing.T) {
	base, node := startPaywall(t, "100 {\n\t\tinvoices_per_client 2 1m\n\t}")
	getChallenge(t, base+"/paid/", nil, http.StatusPaymentRequired)
	getChallenge(t, base+"/paid/", nil, http.StatusPaymentRequired)
	resp, body := get(t, base+"/paid/", nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third invoice in a minute: %d %s (Retry-After %q)", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	if got := node.Calls("AddInvoice"); got != 2 {
		t.Errorf("AddInvoice calls = %d, want 2", got)
	}
}

// TestPaywallNodeDown: paid tokens keep working with the node down; a
// challenge gets 503 with a generic message and a request id (in the body
// and X-Request-Id) that the log line with the node's error carries too.
func TestPaywallNodeDown(t *testing.T) {
	node := lndtest.Start(t)
	logPath := filepath.Join(t.TempDir(), "caddy.log")
	base := startCaddy(t, lndOption(node)+fmt.Sprintf("\n\tlog {\n\t\toutput file %s\n\t}", logPath),
		"\troute /paid/* {\n\t\tpaywall 100\n\t\trespond \"content\"\n\t}")
	c := getChallenge(t, base+"/paid/", nil, http.StatusPaymentRequired)
	h := auth(l402Auth(c.Body.Token, settleAndProve(t, node, c)))
	node.Stop()

	if resp, body := get(t, base+"/paid/", h); resp.StatusCode != 200 {
		t.Fatalf("paid request with the node down: %d %s", resp.StatusCode, body)
	}
	resp, body := get(t, base+"/paid/", nil)
	var answer struct {
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal([]byte(body), &answer); err != nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("challenge with the node down: %d %s (%v)", resp.StatusCode, body, err)
	}
	for _, detail := range []string{"dial", "connection refused", "127.0.0.1", "rpc error", node.Addr()} {
		if strings.Contains(body, detail) {
			t.Errorf("the anonymous client is told %q: %s", detail, body)
		}
	}
	if answer.RequestID == "" || resp.Header.Get("X-Request-Id") != answer.RequestID || !strings.Contains(answer.Message, "unavailable") {
		t.Errorf("body %s, X-Request-Id %q: want a generic message and the same request id in both", body, resp.Header.Get("X-Request-Id"))
	}
	logs, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, line := range strings.Split(string(logs), "\n") {
		if strings.Contains(line, answer.RequestID) && strings.Contains(line, "the Lightning node failed") && strings.Contains(line, `"error":"`) {
			found = true
		}
	}
	if !found {
		t.Errorf("no log line with request id %s and the node's error:\n%s", answer.RequestID, logs)
	}
}
