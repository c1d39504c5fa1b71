package paywall

import (
	"bytes"
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"image"
	_ "image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cdpnet "github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/lightningcaddy/caddy-lightning/internal/browser"
	"github.com/lightningcaddy/caddy-lightning/l402"
)

var screenshots = flag.Bool("screenshots", false,
	"write the payment page screenshot to docs/payment-page-regtest.png (go test ./e2e/paywall/ -run TestBrowser -screenshots)")

// articleUpstream answers like a site behind the paywall: an HTML article.
func articleUpstream(t *testing.T) *upstream {
	up := newUpstream(t)
	up.respond = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>The article</title></head>`+
			`<body><h1 id="article">Paid article</h1><p id="path">%s</p></body></html>`, r.URL.Path)
	}
	return up
}

// pageState is what the payment page shows, read from its DOM.
type pageState struct {
	Title     string  `json:"title"`
	Amount    string  `json:"amount"`
	Unit      string  `json:"unit"`
	Memo      string  `json:"memo"`
	Invoice   string  `json:"invoice"`
	Token     string  `json:"token"`
	Status    string  `json:"status"`
	QRWidth   float64 `json:"qrWidth"`
	QRHeight  float64 `json:"qrHeight"`
	QRVisible bool    `json:"qrVisible"`
	OpenHref  string  `json:"openHref"`
	Cookie    string  `json:"cookie"`
}

const readPage = `(function () {
	var q = function (s) { return document.querySelector(s); };
	var txt = function (s) { var e = q(s); return e ? e.textContent.trim() : ""; };
	var qr = q("#qr svg, #qr img");
	var r = qr ? qr.getBoundingClientRect() : {width: 0, height: 0, top: 0, bottom: 0};
	var data = {};
	try { data = JSON.parse(txt("#l402-data")); } catch (e) {}
	return {
		title: document.title,
		amount: txt("#amount"),
		unit: txt(".amount .unit"),
		memo: txt("#memo"),
		invoice: txt("#invoice"),
		token: data.token || "",
		status: txt("#status"),
		qrWidth: r.width,
		qrHeight: r.height,
		qrVisible: !!qr && r.width > 0 && r.height > 0 && getComputedStyle(qr).visibility === "visible" &&
			r.top >= 0 && r.bottom <= window.innerHeight,
		openHref: (q("#open") || {}).href || "",
		cookie: document.cookie
	};
})()`

// openPaymentPage navigates to url, checks the 402 payment page a phone
// shows, and returns what it shows.
func openPaymentPage(t *testing.T, ctx context.Context, url string) pageState {
	t.Helper()
	return openPaymentPageStatus(t, ctx, url, http.StatusPaymentRequired)
}

// openPaymentPageStatus is openPaymentPage for a page served with status
// (0: 401 or 402).
func openPaymentPageStatus(t *testing.T, ctx context.Context, url string, status int64) pageState {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
		chromedp.Navigate(url),
	)
	if err != nil {
		t.Fatalf("navigate to %s: %v", url, err)
	}
	if status == 0 && resp.Status != http.StatusUnauthorized && resp.Status != http.StatusPaymentRequired ||
		status != 0 && resp.Status != status {
		t.Fatalf("navigation to %s: status %d, want %d", url, resp.Status, status)
	}
	csp := ""
	for k, v := range resp.Headers {
		if strings.EqualFold(k, "Content-Security-Policy") {
			csp = fmt.Sprint(v)
		}
	}
	if !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("payment page CSP %q", csp)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#qr svg"))); err != nil {
		t.Fatal(err)
	}
	// The page says it waits once its long poll runs.
	if err := browser.WaitText(ctx, "Waiting for payment", 5*time.Second); err != nil {
		t.Fatalf("the page does not wait for the payment: %v", err)
	}
	st, err := chromedp.Run(ctx, chromedp.Evaluate[pageState](readPage))
	if err != nil {
		t.Fatal(err)
	}
	if !st.QRVisible || st.QRWidth < 250 || st.QRWidth != st.QRHeight {
		t.Errorf("QR code on a 390 px phone: visible %v, %.0fx%.0f px", st.QRVisible, st.QRWidth, st.QRHeight)
	}
	if st.OpenHref != "lightning:"+st.Invoice {
		t.Errorf("Open in wallet links to %q", st.OpenHref)
	}
	if strings.Contains(st.Cookie, "l402") {
		t.Errorf("document.cookie %q: the credential cookie must be HttpOnly", st.Cookie)
	}
	return st
}

// TestBrowser: real headless Chromium opens a paywalled page, shows the
// payment page with alice's invoice, bob pays it from his node, and the page
// turns into the content by itself.
func TestBrowser(t *testing.T) {
	needNetwork(t)
	chromium := browser.Start(t)
	up := articleUpstream(t)
	base := startCaddy(t, proxyRoute("/api/*", `100 {
			service api
			memo "Regtest article"
		}`, up))
	url := base + "/api/article?id=7"
	ctx := browser.Tab(t, chromium, 60*time.Second)

	st := openPaymentPage(t, ctx, url)
	if st.Amount != "100" || st.Unit != "sats" || st.Memo != "Regtest article" || !strings.Contains(st.Title, "100 sats") {
		t.Errorf("the page shows amount %q %q, memo %q, title %q", st.Amount, st.Unit, st.Memo, st.Title)
	}
	tok, err := l402.DecodeToken(st.Token)
	if err != nil {
		t.Fatalf("token on the page: %v", err)
	}
	inv := checkInvoice(t, st.Invoice, 100, tok.Identifier.PaymentHash)
	if inv.Description == nil || *inv.Description != "Regtest article" {
		t.Errorf("invoice memo %v", inv.Description)
	}
	if !strings.Contains(st.Status, "Waiting for payment") {
		t.Errorf("status %q", st.Status)
	}

	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if cfg, _, err := image.DecodeConfig(bytes.NewReader(png)); err != nil || cfg.Width != 780 || cfg.Height != 1688 {
		t.Errorf("screenshot: %dx%d, %v; want 780x1688 (390x844 at scale 2)", cfg.Width, cfg.Height, err)
	}
	shot := filepath.Join(t.TempDir(), "payment-page-regtest.png")
	if *screenshots {
		shot = filepath.Join("..", "..", "docs", "payment-page-regtest.png")
		if err := os.MkdirAll(filepath.Dir(shot), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("payment page screenshot: %s", shot)
	if up.count() != 0 {
		t.Fatal("the unpaid page reached the upstream")
	}

	// Bob pays the invoice read from the page; the test does nothing else.
	start := time.Now()
	preimage := pay(t, st.Invoice, tok.Identifier.PaymentHash)
	paid := time.Since(start)
	if err := browser.WaitText(ctx, "Paid article", 15*time.Second); err != nil {
		t.Fatalf("the page did not turn into the content within 15 s of the payment: %v", err)
	}
	t.Logf("bob paid in %v; content shown %v after the payment", paid, time.Since(start)-paid)

	final, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]any](`({
		href: location.href,
		status: performance.getEntriesByType("navigation")[0].responseStatus,
		path: document.getElementById("path") && document.getElementById("path").textContent,
		cookie: document.cookie
	})`))
	if err != nil {
		t.Fatal(err)
	}
	if final["href"] != url || final["status"] != float64(200) || final["path"] != "/api/article" {
		t.Errorf("after payment the tab shows %v, want %s with status 200", final, url)
	}
	if c, _ := final["cookie"].(string); strings.Contains(c, "l402") {
		t.Errorf("document.cookie %q: the credential cookie must be HttpOnly", c)
	}
	cookies, err := chromedp.Call(ctx, cdpnet.GetCookies, cdpnet.GetCookiesParams{URLs: []string{base + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	var ck *cdpnet.Cookie
	for _, c := range cookies.Cookies {
		if c.Name == "l402_api_100" {
			ck = c
		}
	}
	if ck == nil {
		t.Fatalf("no l402_api_100 cookie in the browser: %+v", cookies.Cookies)
	}
	if want := st.Token + ":" + hex.EncodeToString(preimage[:]); ck.Value != want || !ck.HTTPOnly || ck.SameSite != cdpnet.CookieSameSiteLax || ck.Path != "/" {
		t.Errorf("cookie %s=%.20s… HttpOnly %v SameSite %q Path %q; want <token>:<preimage>, HttpOnly, Lax, /",
			ck.Name, ck.Value, ck.HTTPOnly, ck.SameSite, ck.Path)
	}
	r := up.last(t)
	if hasL402(r.Header) || strings.Contains(r.Header.Get("Cookie"), "l402") {
		t.Errorf("the upstream saw the credential: Authorization %q, Cookie %q", r.Header.Values("Authorization"), r.Header.Get("Cookie"))
	}
	if r.Header.Get("X-Paid-Hash") != hex.EncodeToString(tok.Identifier.PaymentHash[:]) {
		t.Errorf("upstream X-Paid-Hash %q", r.Header.Get("X-Paid-Hash"))
	}

	// The cookie opens the rest of the route without another payment page.
	resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(base+"/api/second"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusOK {
		t.Errorf("another page of the route: status %d", resp.Status)
	}
	if err := browser.WaitText(ctx, "/api/second", 5*time.Second); err != nil {
		t.Error(err)
	}
}

// TestBrowserWebLN: the page's "Pay with WebLN" button with a wallet that
// is bob's node: the wallet is asked to pay the page's invoice once, and the
// page unlocks.
func TestBrowserWebLN(t *testing.T) {
	needNetwork(t)
	chromium := browser.Start(t)
	up := articleUpstream(t)
	base := startCaddy(t, proxyRoute("/api/*", "21 {\n\t\t\tservice api\n\t\t}", up))
	url := base + "/api/webln"
	ctx := browser.Tab(t, chromium, 60*time.Second)

	var (
		mu        sync.Mutex
		invoices  []string
		preimages []string
		waits     []string // Authorization of the page's wait requests
	)
	bobPays := chromedp.ExposeFunc("bobPays", func(ctx context.Context, invoice string) (string, error) {
		mu.Lock()
		invoices = append(invoices, invoice)
		mu.Unlock()
		raw, err := network.Bob.PayInvoice(ctx, invoice)
		mu.Lock()
		preimages = append(preimages, hex.EncodeToString(raw))
		mu.Unlock()
		return hex.EncodeToString(raw), err
	})
	requests := chromedp.Events(ctx, cdpnet.RequestWillBeSent)
	go func() {
		for ev, err := range requests {
			if err != nil {
				return
			}
			h := map[string]string{}
			for k, v := range ev.Request.Headers {
				h[strings.ToLower(k)] = fmt.Sprint(v)
			}
			if h["x-l402-wait"] != "" {
				mu.Lock()
				waits = append(waits, h["authorization"])
				mu.Unlock()
			}
		}
	}()
	const wallet = `window.webln = {
		enable: async function () {},
		sendPayment: async function (invoice) { return { preimage: await window.bobPays(invoice) }; }
	};`
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: wallet}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, bobPays); err != nil {
		t.Fatal(err)
	}
	st := openPaymentPage(t, ctx, url)
	// The button, found as a person finds it: by its label.
	button := chromedp.Search(`//button[contains(., "Pay with WebLN")]`)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(button), chromedp.Click(button)); err != nil {
		t.Fatal(err)
	}
	if err := browser.WaitText(ctx, "Paid article", 15*time.Second); err != nil {
		t.Fatalf("the page did not unlock after the WebLN payment: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(invoices, []string{st.Invoice}) || len(preimages) != 1 {
		t.Fatalf("the wallet was asked to pay %q, want the page's invoice once", invoices)
	}
	// The page proves the payment with the wallet's preimage, unless its
	// long poll, which alice's invoice stream answers, was quicker (alice
	// settles before bob's node hands the preimage back). Either way the
	// page sends nothing but its token and that preimage.
	withPreimage := "L402 " + st.Token + ":" + preimages[0]
	for _, w := range waits {
		if w != withPreimage && w != "L402 "+st.Token {
			t.Errorf("the page sent a wait request with Authorization %.80q", w)
		}
	}
	t.Logf("unlocked by the wallet's preimage: %v (%d wait requests)", slices.Contains(waits, withPreimage), len(waits))
	if n := up.count(); n != 1 {
		t.Errorf("upstream served %d requests, want 1", n)
	}
	if r := up.last(t); hasL402(r.Header) || strings.Contains(r.Header.Get("Cookie"), "l402") {
		t.Errorf("the upstream saw the credential: Authorization %q, Cookie %q", r.Header.Values("Authorization"), r.Header.Get("Cookie"))
	}
}

// TestBrowserReturningVisitor: a visitor whose access expired comes back
// with the old cookie (a token of the configured root_key, paid, whose
// valid_until has passed), gets the payment page with 401, pays again, and
// is let in, the new cookie replacing the old.
func TestBrowserReturningVisitor(t *testing.T) {
	needNetwork(t)
	chromium := browser.Start(t)
	up := articleUpstream(t)
	rootKey := l402.NewRootKey()
	base := startCaddy(t, proxyRoute("/api/*", fmt.Sprintf("100 {\n\t\t\tservice api\n\t\t\troot_key %x\n\t\t}", rootKey), up))
	url := base + "/api/article"
	ctx := browser.Tab(t, chromium, 60*time.Second, http.StatusUnauthorized)

	// The first visit, long ago: paid, and its token since expired.
	old, oldPre := buy(t, url)
	keys, err := l402.NewKeyring(rootKey)
	if err != nil {
		t.Fatal(err)
	}
	expired, _, err := keys.Mint(old.Hash,
		l402.ServicesCaveat(l402.Service{Name: "api"}),
		l402.ValidUntilCaveat("api", time.Now().Add(-time.Minute)),
		l402.PriceCaveat("api", 100))
	if err != nil {
		t.Fatal(err)
	}
	resp, body := get(t, url, auth(credential(expired, oldPre)))
	expectStatus(t, "expired token", resp, body, http.StatusUnauthorized)
	if _, err := chromedp.Call(ctx, cdpnet.SetCookie, cdpnet.SetCookieParams{
		Name: "l402_api_100", Value: expired + ":" + hex.EncodeToString(oldPre[:]), URL: base + "/", Path: "/",
		HTTPOnly: ptr(true), SameSite: cdpnet.CookieSameSiteLax,
	}); err != nil {
		t.Fatal(err)
	}

	st := openPaymentPageStatus(t, ctx, url, http.StatusUnauthorized)
	tok, err := l402.DecodeToken(st.Token)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	pay(t, st.Invoice, tok.Identifier.PaymentHash)
	if err := browser.WaitText(ctx, "Paid article", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("content shown %v after the payment started", time.Since(start))
	cookies, err := chromedp.Call(ctx, cdpnet.GetCookies, cdpnet.GetCookiesParams{URLs: []string{base + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	for _, c := range cookies.Cookies {
		if strings.HasPrefix(c.Name, "l402") && !strings.HasPrefix(c.Name, "l402_page_") {
			values = append(values, c.Value)
		}
	}
	if len(values) != 1 || !strings.HasPrefix(values[0], st.Token+":") {
		t.Errorf("after paying again the browser holds %d l402 cookies; want one, for the new token", len(values))
	}
	if n := up.count(); n != 1 {
		t.Errorf("upstream served %d requests, want 1", n)
	}
}

func ptr[T any](v T) *T { return &v }

// TestCrossOriginFetch: a script on another origin buys access with L402:
// its fetch gets the 402 and can read the challenge (the paywall exposes
// WWW-Authenticate to other origins), the wallet (bob) pays, and the retry
// with the credential, which the browser preflights (Authorization is not
// a simple header), passes the paywall's CORS preflight to the site's
// answer and gets the content.
func TestCrossOriginFetch(t *testing.T) {
	needNetwork(t)
	chromium := browser.Start(t)
	up := newUpstream(t)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><html><head><title>app</title></head><body>another origin</body></html>`)
	}))
	t.Cleanup(app.Close)
	base := startCaddy(t, fmt.Sprintf(`	header Access-Control-Allow-Origin %s
	header Access-Control-Allow-Headers Authorization
	@preflight method OPTIONS
	respond @preflight 204
	paywall 100 {
		service api
	}
	reverse_proxy %s`, app.URL, up.hostPort()))
	ctx := browser.Tab(t, chromium, 60*time.Second)

	var invoices []string
	bobPays := chromedp.ExposeFunc("bobPays", func(ctx context.Context, invoice string) (string, error) {
		invoices = append(invoices, invoice)
		raw, err := network.Bob.PayInvoice(ctx, invoice)
		return hex.EncodeToString(raw), err
	})
	if err := chromedp.Do(ctx, bobPays, chromedp.Navigate(app.URL)); err != nil {
		t.Fatal(err)
	}
	buy := fmt.Sprintf(`(async function () {
		var url = %q;
		var first = await fetch(url, { headers: { "Accept": "application/json" } });
		var challenge = first.headers.get("WWW-Authenticate") || "";
		var token = /L402 [^]*token="([^"]+)"/.exec(challenge), invoice = /L402 [^]*invoice="([^"]+)"/.exec(challenge);
		if (first.status !== 402 || !token || !invoice) return "402 unreadable: " + first.status + " " + JSON.stringify(challenge);
		var preimage = await window.bobPays(invoice[1]);
		var paid = await fetch(url, { headers: { "Authorization": "L402 " + token[1] + ":" + preimage } });
		return paid.status + " " + await paid.text();
	})()`, base+"/api/data")
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](buy, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if got != "200 paid content: GET /api/data" || len(invoices) != 1 {
		t.Fatalf("cross-origin L402 fetch: %q (bob paid %d invoices)", got, len(invoices))
	}
	r := up.last(t)
	if hasL402(r.Header) || r.Method != http.MethodGet {
		t.Errorf("the upstream got %s with Authorization %q", r.Method, r.Header.Values("Authorization"))
	}
}
