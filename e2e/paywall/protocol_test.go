package paywall

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"gopkg.in/macaroon.v2"

	"github.com/lightningcaddy/caddy-lightning/l402"
)

// proxyRoute is a paywalled route to up whose reverse_proxy passes the
// paywall's placeholders on as headers.
func proxyRoute(path, paywall string, up *upstream) string {
	return fmt.Sprintf(`	route %s {
		paywall %s
		reverse_proxy %s {
			header_up X-Paid-Hash {http.paywall.payment_hash}
			header_up X-Paid-Token-Id {http.paywall.token_id}
			header_up X-Paid-Price {http.paywall.price}
			header_up X-Paid-Service {http.paywall.service}
		}
	}
`, path, paywall, up.hostPort())
}

// TestFullL402Loop walks the protocol as a program does: 402 with a
// challenge for alice's invoice, bob pays it through his lnd, the retry with
// token and preimage reaches the upstream, which sees the payment in the
// placeholders and none of the L402 credentials.
func TestFullL402Loop(t *testing.T) {
	needNetwork(t)
	up := newUpstream(t)
	base := startCaddy(t, proxyRoute("/api/*", `100 {
			service api
			memo "E2E {http.request.uri.path}"
		}`, up))
	url := base + "/api/data"

	c := getChallenge(t, url)
	if up.count() != 0 {
		t.Fatal("an unpaid request reached the upstream")
	}
	inv := checkInvoice(t, c.Invoice, 100, c.Hash)
	if inv.Description == nil || *inv.Description != "E2E /api/data" {
		t.Errorf("invoice memo %v, want the placeholder replaced: E2E /api/data", inv.Description)
	}
	if c.Body.PriceSat != 100 {
		t.Errorf("price_sat %d, want 100", c.Body.PriceSat)
	}
	if exp, err := time.Parse(time.RFC3339, c.Body.ExpiresAt); err != nil || exp.Sub(c.Issued) < 9*time.Minute || exp.Sub(c.Issued) > 11*time.Minute {
		t.Errorf("expires_at %q (%v), want about 10 minutes from now", c.Body.ExpiresAt, err)
	}
	if got := inv.Timestamp.Add(inv.Expiry()); got.Sub(c.Issued) < 9*time.Minute || got.Sub(c.Issued) > 11*time.Minute {
		t.Errorf("invoice expires at %v, want about 10 minutes from now", got)
	}
	tok, err := l402.DecodeToken(c.Token)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"services=api:0", "api_price=100"} {
		if !slices.Contains(tok.Caveats, want) {
			t.Errorf("token caveats %q lack %q", tok.Caveats, want)
		}
	}

	preimage := pay(t, c.Invoice, c.Hash)

	resp, body := get(t, url, http.Header{
		"Authorization": {"Basic dXNlcjpwYXNz", credential(c.Token, preimage)},
		"Cookie":        {"session=abc123"},
	})
	expectContent(t, "paid request", resp, body, "GET", "/api/data")
	r := up.last(t)
	if got := r.Header.Values("Authorization"); !slices.Equal(got, []string{"Basic dXNlcjpwYXNz"}) {
		t.Errorf("upstream got Authorization %q, want only the Basic one", got)
	}
	if hasL402(r.Header) {
		t.Error("the upstream saw the L402 credential")
	}
	if got := r.Header.Get("Cookie"); got != "session=abc123" {
		t.Errorf("upstream got Cookie %q, want session=abc123", got)
	}
	for name, want := range map[string]string{
		"X-Paid-Hash":     hex.EncodeToString(c.Hash[:]),
		"X-Paid-Token-Id": hex.EncodeToString(tok.Identifier.TokenID[:]),
		"X-Paid-Price":    "100",
		"X-Paid-Service":  "api",
	} {
		if got := r.Header.Get(name); got != want {
			t.Errorf("upstream got %s %q, want %q", name, got, want)
		}
	}

	// The credential opens the whole route, again and again, with no new
	// invoice and nothing of it passed on.
	for i, path := range []string{"/api/data", "/api/other", "/api/data"} {
		resp, body := do(t, http.MethodPost, base+path, auth(credential(c.Token, preimage)), strings.NewReader("x"))
		expectContent(t, fmt.Sprintf("reuse %d", i), resp, body, "POST", path)
		if len(resp.Header.Values("WWW-Authenticate")) != 0 {
			t.Errorf("reuse %d: a paid response carries a challenge", i)
		}
		if r := up.last(t); hasL402(r.Header) || r.Header.Get("X-Paid-Hash") != hex.EncodeToString(c.Hash[:]) {
			t.Errorf("reuse %d: upstream got %q", i, r.Header)
		}
	}
	if n := up.count(); n != 4 {
		t.Errorf("upstream served %d requests, want 4", n)
	}
}

// TestOtherCookiesPassUnchanged: removing the paywall's credentials must
// leave every other cookie exactly as the client sent it, including values
// Go's cookie parser is strict about (quotes, spaces, JSON).
func TestOtherCookiesPassUnchanged(t *testing.T) {
	needNetwork(t)
	up := newUpstream(t)
	base := startCaddy(t, proxyRoute("/api/*", "100 {\n\t\t\tservice api\n\t\t}", up))
	c, preimage := buy(t, base+"/api/x")

	const cookies = `session=abc123; prefs={"theme":"dark"}; name=Jane Doe; quoted="q"`
	resp, body := get(t, base+"/api/x", http.Header{
		"Authorization": {credential(c.Token, preimage)},
		"Cookie":        {cookies},
	})
	expectContent(t, "paid request", resp, body, "GET", "/api/x")
	if got := up.last(t).Header.Get("Cookie"); got != cookies {
		t.Errorf("upstream got Cookie %q,\nthe client sent %q", got, cookies)
	}

	// With the paywall's own cookie among them, only that one goes.
	resp, body = get(t, base+"/api/x", http.Header{
		"Cookie": {`session=abc123; l402_api_100=` + c.Token + ":" + hex.EncodeToString(preimage[:]) + `; prefs={"theme":"dark"}`},
	})
	expectContent(t, "paid request with the cookie", resp, body, "GET", "/api/x")
	if got, want := up.last(t).Header.Get("Cookie"), `session=abc123; prefs={"theme":"dark"}`; got != want {
		t.Errorf("upstream got Cookie %q, want %q", got, want)
	}
}

// TestTokenWithoutPreimage is the CheckInvoice mode: a token alone is
// refused (401, fresh challenge) until its invoice is paid, then admitted,
// from memory: quickly, however often.
func TestTokenWithoutPreimage(t *testing.T) {
	needNetwork(t)
	up := newUpstream(t)
	base := startCaddy(t, proxyRoute("/api/*", "100 {\n\t\t\tservice api\n\t\t}", up))
	url := base + "/api/report"

	c := getChallenge(t, url)
	for _, v := range []string{"L402 " + c.Token, "L402 " + c.Token + ":", "lsat " + c.Token} {
		resp, body := get(t, url, http.Header{"Authorization": {v}, "Accept": {"application/json"}})
		fresh := parseChallenge(t, resp, body, http.StatusUnauthorized)
		if fresh.Token == c.Token || fresh.Invoice == c.Invoice {
			t.Errorf("%q: the 401 repeats the old challenge instead of a fresh one", v)
		}
		if !strings.Contains(fresh.Body.Message, "not paid") {
			t.Errorf("%q: message %q, want it to say the invoice is not paid", v, fresh.Body.Message)
		}
	}
	if up.count() != 0 {
		t.Fatal("an unpaid token reached the upstream")
	}

	pay(t, c.Invoice, c.Hash)
	tokenOnly := auth("L402 " + c.Token)
	for i := range 30 {
		resp, body := get(t, url, tokenOnly)
		expectContent(t, fmt.Sprintf("token alone after payment, request %d", i+1), resp, body, "GET", "/api/report")
	}
	for _, r := range up.received() {
		if hasL402(r.Header) {
			t.Fatal("the upstream saw the token")
		}
	}
}

// TestExpiry: a token opens the route until its valid_until, then gets
// 401 with a fresh challenge; a caveat a holder appends cannot extend it.
// The tokens are minted with the paywall's root_key, so no test waits for
// time to pass.
func TestExpiry(t *testing.T) {
	needNetwork(t)
	up := newUpstream(t)
	rootKey := l402.NewRootKey()
	base := startCaddy(t, proxyRoute("/api/*", fmt.Sprintf("100 {\n\t\t\tservice api\n\t\t\troot_key %x\n\t\t}", rootKey), up))
	url := base + "/api/news"
	c, preimage := buy(t, url)
	keys, err := l402.NewKeyring(rootKey)
	if err != nil {
		t.Fatal(err)
	}
	mint := func(validUntil time.Time) string {
		tok, _, err := keys.Mint(c.Hash, l402.ServicesCaveat(l402.Service{Name: "api"}),
			l402.ValidUntilCaveat("api", validUntil), l402.PriceCaveat("api", 100))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	live, expired := mint(time.Now().Add(time.Minute)), mint(time.Now().Add(-time.Second))
	for _, v := range []string{credential(live, preimage), "L402 " + live} {
		resp, body := get(t, url, auth(v))
		expectContent(t, "before valid_until", resp, body, "GET", "/api/news")
	}
	for _, v := range []string{credential(expired, preimage), "L402 " + expired} {
		resp, body := get(t, url, http.Header{"Authorization": {v}, "Accept": {"application/json"}})
		fresh := parseChallenge(t, resp, body, http.StatusUnauthorized)
		if fresh.Token == expired {
			t.Error("the 401 repeats the expired token")
		}
		if !strings.Contains(fresh.Body.Message, "expired") {
			t.Errorf("message %q, want it to say the token expired", fresh.Body.Message)
		}
	}

	// Appending a later expiry is something any holder can do; it must not
	// widen the token.
	var m macaroon.Macaroon
	raw, err := base64.StdEncoding.DecodeString(expired)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.UnmarshalBinary(raw); err != nil {
		t.Fatal(err)
	}
	if err := m.AddFirstPartyCaveat([]byte("api_valid_until=" + strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))); err != nil {
		t.Fatal(err)
	}
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	resp, body := get(t, url, auth(credential(base64.StdEncoding.EncodeToString(b), preimage)))
	expectStatus(t, "expired token with a later expiry appended", resp, body, http.StatusUnauthorized)
	if n := up.count(); n != 2 {
		t.Errorf("upstream served %d requests, want 2", n)
	}
}

// TestPaymentLateInTheInvoiceBuysValidFor is the buyer's promise on a real
// network: bob pays when most of the invoice's life is gone (and a token
// that counted valid_for from the invoice's issue would be dead), and the
// token still opens the route. (valid_for 3s, invoice_expiry 10s: bob
// pays 6 s after the challenge.)
func TestPaymentLateInTheInvoiceBuysValidFor(t *testing.T) {
	needNetwork(t)
	up := newUpstream(t)
	base := startCaddy(t, proxyRoute("/api/*", "100 {\n\t\t\tservice api\n\t\t\tvalid_for 3s\n\t\t\tinvoice_expiry 10s\n\t\t}", up))
	url := base + "/api/news"
	c := getChallenge(t, url)
	time.Sleep(time.Until(c.Issued.Add(6 * time.Second)))
	preimage := pay(t, c.Invoice, c.Hash)
	resp, body := get(t, url, auth(credential(c.Token, preimage)))
	tok, _ := l402.DecodeToken(c.Token)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("paid %v after the challenge, the token (caveats %q) gets %d %.200s",
			time.Since(c.Issued).Round(time.Millisecond), tok.Caveats, resp.StatusCode, body)
	}
	until, _, _, _ := tok.ValidUntil("api")
	inv := decodeInvoice(t, c.Invoice)
	if last := inv.Timestamp.Add(inv.Expiry()); until.Before(last.Add(3 * time.Second)) {
		t.Errorf("the invoice can be paid until %s, the token lasts until %s: less than valid_for after", last, until)
	}
}

// TestBadCredentials: every credential that does not prove payment for this
// very paywall gets 401 with a fresh challenge, and nothing reaches the
// upstream.
func TestBadCredentials(t *testing.T) {
	needNetwork(t)
	up := newUpstream(t)
	base := startCaddy(t,
		proxyRoute("/cheap/*", "10 {\n\t\t\tservice api\n\t\t}", up)+
			proxyRoute("/dear/*", "1000 {\n\t\t\tservice api\n\t\t}", up)+
			proxyRoute("/other/*", "10 {\n\t\t\tservice other\n\t\t}", up))

	cheap, cheapPre := buy(t, base+"/cheap/a")
	other, otherPre := buy(t, base+"/other/a")
	dearUnpaid := getChallenge(t, base+"/dear/a")
	checkInvoice(t, cheap.Invoice, 10, cheap.Hash)
	checkInvoice(t, dearUnpaid.Invoice, 1000, dearUnpaid.Hash)

	// The genuine articles open their own routes.
	resp, body := get(t, base+"/cheap/a", auth(credential(cheap.Token, cheapPre)))
	expectContent(t, "cheap token on the cheap route", resp, body, "GET", "/cheap/a")
	resp, body = get(t, base+"/other/a", auth(credential(other.Token, otherPre)))
	expectContent(t, "other service's token on its route", resp, body, "GET", "/other/a")
	served := up.count()

	// A token for the paid hash, with the right caveats, minted with
	// another root key.
	forger, err := l402.NewKeyring(l402.NewRootKey())
	if err != nil {
		t.Fatal(err)
	}
	forged, _, err := forger.Mint(cheap.Hash,
		l402.ServicesCaveat(l402.Service{Name: "api"}),
		l402.ValidUntilCaveat("api", time.Now().Add(time.Hour)),
		l402.PriceCaveat("api", 10))
	if err != nil {
		t.Fatal(err)
	}
	// The cheap token with its price caveat rewritten, signature kept.
	var m macaroon.Macaroon
	raw, _ := base64.StdEncoding.DecodeString(cheap.Token)
	if err := m.UnmarshalBinary(raw); err != nil {
		t.Fatal(err)
	}
	cavs := m.Caveats()
	for i := range cavs {
		if string(cavs[i].Id) == "api_price=10" {
			cavs[i].Id = []byte("api_price=1000")
		}
	}
	b, _ := m.MarshalBinary()
	tampered := base64.StdEncoding.EncodeToString(b)
	var random [32]byte
	rand.Read(random[:])

	cases := []struct {
		name, path, value string
	}{
		{"forged signature", "/cheap/a", credential(forged, cheapPre)},
		{"forged token alone", "/cheap/a", "L402 " + forged},
		{"token of service other", "/cheap/a", credential(other.Token, otherPre)},
		{"preimage of another invoice", "/dear/a", credential(dearUnpaid.Token, cheapPre)},
		{"random preimage", "/dear/a", credential(dearUnpaid.Token, random)},
		{"cheap token on the dear route", "/dear/a", credential(cheap.Token, cheapPre)},
		{"cheap token alone on the dear route", "/dear/a", "L402 " + cheap.Token},
		{"price caveat rewritten", "/dear/a", credential(tampered, cheapPre)},
		{"price caveat rewritten, own route", "/cheap/a", credential(tampered, cheapPre)},
		{"not base64", "/cheap/a", "L402 !!!:" + hex.EncodeToString(cheapPre[:])},
		{"short preimage", "/cheap/a", "L402 " + cheap.Token + ":abcd"},
		{"truncated token", "/cheap/a", credential(cheap.Token[:len(cheap.Token)/2], cheapPre)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, base+tc.path, http.Header{"Authorization": {tc.value}, "Accept": {"application/json"}})
			fresh := parseChallenge(t, resp, body, http.StatusUnauthorized)
			if fresh.Token == cheap.Token || fresh.Token == dearUnpaid.Token {
				t.Error("the 401 does not carry a fresh challenge")
			}
			if !strings.HasPrefix(fresh.Body.Message, "invalid credentials") && !strings.Contains(fresh.Body.Message, "not paid") {
				t.Errorf("message %q", fresh.Body.Message)
			}
		})
	}
	if n := up.count(); n != served {
		t.Errorf("%d bad credentials reached the upstream", n-served)
	}
}

// TestAuthorizationForms: 402 without L402 credentials, 401 with bad ones,
// and every spelling the protocol allows for good ones.
func TestAuthorizationForms(t *testing.T) {
	needNetwork(t)
	up := newUpstream(t)
	base := startCaddy(t, proxyRoute("/api/*", "100 {\n\t\t\tservice api\n\t\t}", up))
	url := base + "/api/doc"
	c, preimage := buy(t, url)
	hexLower := hex.EncodeToString(preimage[:])
	hexUpper := strings.ToUpper(hexLower)
	forger, _ := l402.NewKeyring(l402.NewRootKey())
	forged, _, _ := forger.Mint(c.Hash, l402.ServicesCaveat(l402.Service{Name: "api"}), l402.PriceCaveat("api", 100))

	t.Run("402 without L402 credentials", func(t *testing.T) {
		for _, h := range []http.Header{
			{},
			auth("Basic dXNlcjpwYXNz"),
			auth("Bearer " + c.Token + ":" + hexLower),
			auth("L403 " + c.Token + ":" + hexLower),
			{"Cookie": {"l402_other=" + c.Token + ":" + hexLower}},
		} {
			h.Set("Accept", "application/json")
			resp, body := get(t, url, h)
			parseChallenge(t, resp, body, http.StatusPaymentRequired)
		}
		// Browsers get the payment page, also 402.
		resp, body := get(t, url, http.Header{"Accept": {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}})
		expectStatus(t, "browser without credentials", resp, body, http.StatusPaymentRequired)
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || !bytes.Contains(body, []byte("lnbcrt")) {
			t.Errorf("browser 402: Content-Type %q, body %.200s", ct, body)
		}
		if _, err := l402.ParseChallenge(resp.Header.Values("WWW-Authenticate")); err != nil {
			t.Errorf("browser 402 without a challenge header: %v", err)
		}
	})

	t.Run("401 with bad L402 credentials", func(t *testing.T) {
		for _, v := range []string{
			"L402 " + c.Token + ":" + strings.Repeat("00", 32),
			"L402 " + forged + ":" + hexLower,
			"L402",
			"LSAT garbage",
		} {
			resp, body := get(t, url, http.Header{"Authorization": {v}, "Accept": {"application/json"}})
			parseChallenge(t, resp, body, http.StatusUnauthorized)
		}
	})

	t.Run("accepted spellings", func(t *testing.T) {
		for _, h := range []http.Header{
			auth("L402 " + c.Token + ":" + hexLower),
			auth("l402 " + c.Token + ":" + hexLower),
			auth("LSAT " + c.Token + ":" + hexLower),
			auth("lsat " + c.Token + ":" + hexLower),
			auth("L402 " + c.Token + ":" + hexUpper),
			auth("LsAt " + c.Token + ":" + hexUpper),
			auth("L402  " + c.Token + " : " + hexLower),
			// Several Authorization headers, only one valid, anywhere.
			auth("Basic dXNlcjpwYXNz", "L402 "+forged+":"+hexLower, "L402 "+c.Token+":"+strings.Repeat("11", 32), "L402 "+c.Token+":"+hexLower),
			auth("L402 "+c.Token+":"+hexUpper, "L402 "+forged+":"+hexLower, "Bearer xyz"),
			auth("L402 garbage", "LSAT "+c.Token+":"+hexLower),
		} {
			resp, body := get(t, url, h)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("Authorization %q: %d %.200s", h.Values("Authorization"), resp.StatusCode, body)
				continue
			}
			r := up.last(t)
			if hasL402(r.Header) {
				t.Errorf("Authorization %q: upstream got %q", h.Values("Authorization"), r.Header.Values("Authorization"))
			}
		}
	})
}

// TestLargeBody: a 1 MB POST without credentials gets a clean 402 (the
// body is not forwarded), and with the credential the
// upstream receives every byte.
func TestLargeBody(t *testing.T) {
	needNetwork(t)
	up := newUpstream(t)
	base := startCaddy(t, proxyRoute("/api/*", "100 {\n\t\t\tservice api\n\t\t}", up))
	url := base + "/api/upload"
	payload := make([]byte, 1<<20)
	rand.Read(payload)
	sum := sha256.Sum256(payload)

	for _, chunked := range []bool{false, true} {
		var body io.Reader = bytes.NewReader(payload)
		if chunked {
			body = io.MultiReader(bytes.NewReader(payload)) // no length: chunked
		}
		resp, rb := do(t, http.MethodPost, url, http.Header{"Accept": {"application/json"}, "Content-Type": {"application/octet-stream"}}, body)
		parseChallenge(t, resp, rb, http.StatusPaymentRequired)
	}
	if up.count() != 0 {
		t.Fatal("an unpaid POST reached the upstream")
	}

	c, preimage := buy(t, url)
	for _, chunked := range []bool{false, true} {
		var body io.Reader = bytes.NewReader(payload)
		if chunked {
			body = io.MultiReader(bytes.NewReader(payload))
		}
		resp, rb := do(t, http.MethodPost, url, http.Header{"Authorization": {credential(c.Token, preimage)}, "Content-Type": {"application/octet-stream"}}, body)
		expectContent(t, fmt.Sprintf("paid 1 MB POST (chunked %v)", chunked), resp, rb, "POST", "/api/upload")
		r := up.last(t)
		if r.BodyErr != nil || r.BodyLen != len(payload) || r.BodySHA256 != sum {
			t.Errorf("chunked %v: upstream got %d bytes (err %v), sha256 match %v; want %d intact bytes",
				chunked, r.BodyLen, r.BodyErr, r.BodySHA256 == sum, len(payload))
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/octet-stream" {
			t.Errorf("upstream got Content-Type %q", ct)
		}
	}
}

// TestRateLimit: invoices_per_client 3 1m allows three challenges, then
// 429 with Retry-After; paid credentials still work.
func TestRateLimit(t *testing.T) {
	needNetwork(t)
	up := newUpstream(t)
	base := startCaddy(t, proxyRoute("/api/*", "100 {\n\t\t\tservice api\n\t\t\tinvoices_per_client 3 1m\n\t\t}", up))
	url := base + "/api/x"

	var first challenge
	for i := range 3 {
		c := getChallenge(t, url)
		if i == 0 {
			first = c
		}
	}
	resp, body := get(t, url, http.Header{"Accept": {"application/json"}})
	expectStatus(t, "4th challenge in a minute", resp, body, http.StatusTooManyRequests)
	ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 60 {
		t.Errorf("Retry-After %q, want 1-60 seconds", resp.Header.Get("Retry-After"))
	}
	if len(resp.Header.Values("WWW-Authenticate")) != 0 {
		t.Error("the 429 carries a challenge: an invoice was made anyway")
	}
	if !strings.Contains(string(body), "too many") {
		t.Errorf("429 body %.200s", body)
	}
	// Bad credentials need a new invoice too: also 429.
	resp, body = get(t, url, auth("L402 "+first.Token+":"+strings.Repeat("00", 32)))
	expectStatus(t, "bad credentials over the limit", resp, body, http.StatusTooManyRequests)

	// Paying needs no new invoice.
	preimage := pay(t, first.Invoice, first.Hash)
	resp, body = get(t, url, auth(credential(first.Token, preimage)))
	expectContent(t, "paid request over the limit", resp, body, "GET", "/api/x")
	resp, body = get(t, url, auth("L402 "+first.Token))
	expectContent(t, "paid token alone over the limit", resp, body, "GET", "/api/x")
}

// TestWaitProtocol is the payment page's long poll, for real: held until bob
// pays, answered {"paid":true} with the credential in a cookie, which then
// opens the route on its own. Only the browser the page was sent to (it
// holds the page's binding cookie) gets an answer.
func TestWaitProtocol(t *testing.T) {
	needNetwork(t)
	up := newUpstream(t)
	base := startCaddy(t, proxyRoute("/api/*", "100 {\n\t\t\tservice api\n\t\t}", up))
	url := base + "/api/article"
	c, binding := openPage(t, url)

	// Someone with the token but not the page's cookie is refused.
	resp, body := get(t, url, http.Header{"Authorization": {"L402 " + c.Token}, "X-L402-Wait": {"1"}})
	expectStatus(t, "wait without the page's cookie", resp, body, http.StatusForbidden)

	type answer struct {
		resp *http.Response
		body []byte
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, body, err := waitFor(url, "L402 "+c.Token, binding)
		answered <- answer{resp, body, err}
	}()
	time.Sleep(500 * time.Millisecond) // let the poll reach Caddy before the payment
	select {
	case a := <-answered:
		t.Fatalf("the wait was answered before the payment: %v %s", a.err, a.body)
	default:
	}
	preimage := pay(t, c.Invoice, c.Hash)
	a := <-answered
	if a.err != nil {
		t.Fatal(a.err)
	}
	resp, body = a.resp, a.body
	if resp.StatusCode != http.StatusOK || string(body) != `{"paid":true}` {
		t.Fatalf("wait: %d %s", resp.StatusCode, body)
	}
	if ct, cc := resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"); ct != "application/json" || cc != "no-store" {
		t.Errorf("wait answer Content-Type %q, Cache-Control %q", ct, cc)
	}
	var ck *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name != "l402_api_100" {
			t.Errorf("unexpected cookie %q", c.String())
			continue
		}
		ck = c
	}
	if ck == nil {
		t.Fatalf("wait answer sets cookies %q", resp.Header.Values("Set-Cookie"))
	}
	if want := c.Token + ":" + hex.EncodeToString(preimage[:]); ck.Value != want {
		t.Errorf("cookie %s=%s, want l402_api_100=<token>:<bob's preimage>", ck.Name, ck.Value)
	}
	// The token lasts invoice_expiry (10m) + valid_for (1h) from its issue.
	if !ck.HttpOnly || ck.Secure || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.MaxAge <= 3600 || ck.MaxAge > 4201 {
		t.Errorf("cookie attributes: %q", ck.String())
	}
	if up.count() != 0 {
		t.Fatal("the wait request reached the upstream")
	}

	// The cookie alone opens the route; the upstream does not see it.
	resp, body = get(t, url, http.Header{"Cookie": {"theme=dark; " + ck.Name + "=" + ck.Value}})
	expectContent(t, "cookie alone", resp, body, "GET", "/api/article")
	if got := up.last(t).Header.Get("Cookie"); got != "theme=dark" {
		t.Errorf("upstream got Cookie %q, want theme=dark", got)
	}

	// A wait on a paid token answers at once.
	resp, body, err := waitFor(url, "L402 "+c.Token, binding)
	if err != nil || resp.StatusCode != http.StatusOK || string(body) != `{"paid":true}` {
		t.Errorf("wait on a paid token: %v %v %s", err, resp, body)
	}
}

// openPage asks url for the payment page as a browser does and returns
// its challenge and the cookie that binds the page's token to the browser.
func openPage(t *testing.T, url string) (challenge, *http.Cookie) {
	t.Helper()
	resp, body := get(t, url, http.Header{"Accept": {"text/html,application/xhtml+xml,*/*;q=0.8"}})
	expectStatus(t, "payment page", resp, body, http.StatusPaymentRequired)
	ch, err := l402.ParseChallenge(resp.Header.Values("WWW-Authenticate"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := l402.DecodeToken(ch.Token)
	if err != nil {
		t.Fatal(err)
	}
	c := challenge{Challenge: ch, Hash: tok.Identifier.PaymentHash}
	for _, ck := range resp.Cookies() {
		if strings.HasPrefix(ck.Name, "l402_page_") {
			return c, ck
		}
	}
	t.Fatalf("the payment page sets no binding cookie: %q", resp.Header.Values("Set-Cookie"))
	return c, nil
}

// waitFor sends the payment page's long poll (usable from goroutines).
func waitFor(url, authorization string, cookies ...*http.Cookie) (*http.Response, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", authorization)
	req.Header.Set("X-L402-Wait", "1")
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// TestCookiesOfTwoPrices: a browser that bought two routes of one service
// at different prices keeps access to both. Each purchase's cookie must not
// evict the other's.
func TestCookiesOfTwoPrices(t *testing.T) {
	needNetwork(t)
	up := newUpstream(t)
	base := startCaddy(t,
		proxyRoute("/cheap/*", "10 {\n\t\t\tservice api\n\t\t}", up)+
			proxyRoute("/dear/*", "1000 {\n\t\t\tservice api\n\t\t}", up))

	// A browser's cookie store: name and path identify a cookie.
	jar := map[string]*http.Cookie{}
	cookieHeader := func() http.Header {
		var parts []string
		for _, ck := range jar {
			parts = append(parts, ck.Name+"="+ck.Value)
		}
		slices.Sort(parts)
		return http.Header{"Cookie": {strings.Join(parts, "; ")}}
	}
	buyWithPage := func(path string) {
		c, binding := openPage(t, base+path)
		pay(t, c.Invoice, c.Hash)
		resp, body, err := waitFor(base+path, "L402 "+c.Token, binding)
		if err != nil || resp.StatusCode != http.StatusOK || string(body) != `{"paid":true}` {
			t.Fatalf("wait on %s: %v %v %s", path, err, resp, body)
		}
		for _, ck := range resp.Cookies() {
			if ck.MaxAge > 0 {
				jar[ck.Name+" "+ck.Path] = ck
			}
		}
	}

	buyWithPage("/cheap/a")
	resp, body := get(t, base+"/cheap/a", cookieHeader())
	expectContent(t, "cheap route after buying it", resp, body, "GET", "/cheap/a")
	buyWithPage("/dear/a")
	resp, body = get(t, base+"/dear/a", cookieHeader())
	expectContent(t, "dear route after buying it", resp, body, "GET", "/dear/a")

	resp, body = get(t, base+"/cheap/a", cookieHeader())
	if resp.StatusCode != http.StatusOK {
		names := make([]string, 0, len(jar))
		for k := range jar {
			names = append(names, k)
		}
		t.Errorf("cheap route after also buying the dear one: %d %.120s\n"+
			"the browser holds cookies %q: the second purchase's cookie replaced the first's", resp.StatusCode, body, names)
	}
}

// TestCredentialInACommaJoinedHeader: the paywall accepts an L402
// credential inside a comma-joined Authorization line ("Basic …, L402 …",
// as proxies that merge repeated headers send it), so it must also take it
// out of that line: the upstream gets the Basic credential and nothing of
// the L402 one.
func TestCredentialInACommaJoinedHeader(t *testing.T) {
	needNetwork(t)
	up := newUpstream(t)
	base := startCaddy(t, proxyRoute("/api/*", "100 {\n\t\t\tservice api\n\t\t}", up))
	url := base + "/api/joined"
	c, preimage := buy(t, url)
	hexPre := hex.EncodeToString(preimage[:])

	resp, body := get(t, url, auth("Basic dXNlcjpwYXNz, "+credential(c.Token, preimage)))
	expectContent(t, "credential after a Basic one in one line", resp, body, "GET", "/api/joined")
	got := up.last(t).Header.Values("Authorization")
	if strings.Contains(strings.Join(got, "\n"), hexPre) || strings.Contains(strings.Join(got, "\n"), c.Token) {
		t.Errorf("the upstream got the L402 token and preimage: Authorization %.120q", got)
	}
	if !slices.ContainsFunc(got, func(v string) bool { return strings.Contains(v, "Basic dXNlcjpwYXNz") }) {
		t.Errorf("the upstream lost the Basic credential: Authorization %.120q", got)
	}
}

// TestLongMemoStillChallenges: a memo whose placeholders make it longer than
// a BOLT 11 description holds (639 bytes) must still yield a challenge, with
// the memo cut to fit, not a 503 that blames the node.
func TestLongMemoStillChallenges(t *testing.T) {
	needNetwork(t)
	up := newUpstream(t)
	base := startCaddy(t, proxyRoute("/api/*", `100 {
			service api
			memo "E2E {http.request.uri.path}"
		}`, up))
	for _, seg := range []string{strings.Repeat("a", 800), strings.Repeat("é", 400)} {
		resp, body := get(t, base+"/api/"+seg, http.Header{"Accept": {"application/json"}})
		if resp.StatusCode != http.StatusPaymentRequired {
			t.Errorf("path of %d bytes: %d (Retry-After %q) %.200s; want 402 with a shortened memo",
				len(seg), resp.StatusCode, resp.Header.Get("Retry-After"), body)
			continue
		}
		c := parseChallenge(t, resp, body, http.StatusPaymentRequired)
		inv := decodeInvoice(t, c.Invoice)
		d := ""
		if inv.Description != nil {
			d = *inv.Description
		}
		if len(d) > 639 || !utf8.ValidString(d) || !strings.HasPrefix(d, "E2E /api/") {
			t.Errorf("memo of %d bytes (valid UTF-8 %v): %.60q…", len(d), utf8.ValidString(d), d)
		}
	}
}
