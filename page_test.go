package lightning

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/zpay32"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/lightningcaddy/caddy-lightning/internal/browser"
	"github.com/lightningcaddy/caddy-lightning/lnd/lndtest"
)

var pageScreenshots = flag.Bool("page-screenshots", false,
	"write the payment page screenshots to docs/ (go test -run TestPaymentPageBrowser/screenshot -page-screenshots)")

// pageTestPreimage is the preimage of the test invoices' payment hash.
var pageTestPreimage = bytes.Repeat([]byte{0x42}, 32)

// pageTestInvoice returns a signed regtest BOLT 11 invoice like lnd's, for sats,
// expiring after expiry, with its payment hash.
func pageTestInvoice(t testing.TB, sats int64, memo string, expiry time.Duration) (invoice, hash string) {
	t.Helper()
	key, _ := btcec.PrivKeyFromBytes(bytes.Repeat([]byte{7}, 32))
	h := sha256.Sum256(pageTestPreimage)
	var payAddr [32]byte
	copy(payAddr[:], bytes.Repeat([]byte{9}, 32))
	features := lnwire.NewFeatureVector(lnwire.NewRawFeatureVector(
		lnwire.TLVOnionPayloadRequired, lnwire.PaymentAddrRequired, lnwire.MPPOptional,
	), lnwire.Features)
	inv, err := zpay32.NewInvoice(&chaincfg.RegressionNetParams, h, time.Now(),
		zpay32.Amount(lnwire.MilliSatoshi(sats*1000)),
		zpay32.Description(memo),
		zpay32.Expiry(expiry),
		zpay32.CLTVExpiry(80),
		zpay32.PaymentAddr(payAddr),
		zpay32.Features(features),
	)
	if err != nil {
		t.Fatal(err)
	}
	s, err := lndtest.SignInvoice(inv, key)
	if err != nil {
		t.Fatal(err)
	}
	return s, hex.EncodeToString(h[:])
}

// testPageData returns page data for a realistic invoice.
func testPageData(t testing.TB, memo string) pageData {
	t.Helper()
	const sats = 2100
	inv, hash := pageTestInvoice(t, sats, memo, time.Hour)
	tok := make([]byte, 180) // about a macaroon's size
	for i := range tok {
		tok[i] = byte(i * 37)
	}
	return pageData{
		Price:       sats,
		Memo:        memo,
		Invoice:     inv,
		Token:       base64.StdEncoding.EncodeToString(tok),
		PaymentHash: hash,
		ExpiresAt:   time.Now().Add(time.Hour),
		Nonce:       "bm9uY2Utbm9uY2Utbm9uY2U",
	}
}

func renderPage(t testing.TB, d pageData) string {
	t.Helper()
	var b strings.Builder
	if err := renderPaymentPage(&b, d); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// pageScriptData returns the parsed JSON block of a rendered page.
func pageScriptData(t *testing.T, page string) pageScript {
	t.Helper()
	m := regexp.MustCompile(`(?s)<script type="application/json" id="l402-data">(.*?)</script>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no l402-data block")
	}
	var s pageScript
	if err := json.Unmarshal([]byte(m[1]), &s); err != nil {
		t.Fatalf("l402-data is not JSON: %v\n%s", err, m[1])
	}
	return s
}

func TestRenderPaymentPage(t *testing.T) {
	const memo = `<script>alert(1)</script> "double" 'single' & more`
	d := testPageData(t, memo)
	out := renderPage(t, d)

	for _, bad := range []string{"<script>alert(1)", `"double"`, `'single'`, "& more"} {
		if strings.Contains(out, bad) {
			t.Errorf("page contains unescaped %q", bad)
		}
	}
	want := []string{
		`<p class="memo" id="memo">` + html.EscapeString(memo) + `</p>`,
		`<span id="amount">2,100</span> <span class="unit">sats</span>`,
		`href="lightning:` + d.Invoice + `"`,
		`<svg class="qr-svg" width="`,
		`<meta name="referrer" content="no-referrer">`,
		`<meta name="viewport" content="width=device-width, initial-scale=1`,
		`>` + d.Invoice + `</code>`,
		d.PaymentHash,
		`id="webln-pay"`, `id="copy"`, `id="renew"`, `aria-live="polite"`,
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("page lacks %q", w)
		}
	}

	// Every executable script and every style carries the nonce.
	tags := regexp.MustCompile(`<(script|style)\b[^>]*>`).FindAllString(out, -1)
	if len(tags) != 3 {
		t.Errorf("want 1 style, 1 JSON and 1 script tag, got %q", tags)
	}
	for _, tag := range tags {
		if !strings.Contains(tag, `type="application/json"`) && !strings.Contains(tag, ` nonce="`+d.Nonce+`"`) {
			t.Errorf("tag without nonce: %s", tag)
		}
	}
	// CSP with nonces blocks inline handlers and style attributes.
	if m := regexp.MustCompile(`\s(on[a-z]+|style)=`).FindString(out); m != "" {
		t.Errorf("page has an inline %s attribute", m)
	}

	s := pageScriptData(t, out)
	if s.Invoice != d.Invoice || s.Token != d.Token {
		t.Errorf("script data = %+v", s)
	}
	if s.ExpiresIn < 3590 || s.ExpiresIn > 3600 {
		t.Errorf("expiresIn = %d, want about 3600", s.ExpiresIn)
	}
}

func TestRenderPaymentPageSelfContained(t *testing.T) {
	out := renderPage(t, testPageData(t, "see https://example.com"))
	// The memo's text may mention a URL; nothing else may.
	out = strings.ReplaceAll(out, "see https://example.com", "")
	if strings.Contains(out, "http://") || strings.Contains(out, "https://") {
		t.Error("page refers to http(s) URLs")
	}
	ref := regexp.MustCompile(`(?i)\s(src|href|action|formaction|srcset|poster|data|xlink:href)=["']?([^"'\s>]*)`)
	for _, m := range ref.FindAllStringSubmatch(out, -1) {
		v := m[2]
		if strings.HasPrefix(v, "//") || strings.Contains(v, "://") ||
			!(strings.HasPrefix(v, "lightning:") || strings.HasPrefix(v, "#") || v == "data:,") {
			t.Errorf("external reference %s=%q", m[1], v)
		}
	}
	if strings.Contains(out, "@import") || strings.Contains(out, "url(") {
		t.Error("style loads a resource")
	}
}

func TestRenderPaymentPageHostileToken(t *testing.T) {
	d := testPageData(t, "")
	d.Token = `</script><script>alert(1)</script>"+'`
	out := renderPage(t, d)
	if strings.Contains(out, "alert(1)</script>") {
		t.Fatal("token broke out of the JSON block")
	}
	if s := pageScriptData(t, out); s.Token != d.Token {
		t.Errorf("token = %q, want %q", s.Token, d.Token)
	}
	if strings.Contains(out, `id="memo"`) {
		t.Error("empty memo rendered")
	}
}

func TestRenderPaymentPageBadInvoice(t *testing.T) {
	for _, inv := range []string{"", `lnbc1"><script>`, "lnbc 1", "javascript:alert(1)", "lnbcé"} {
		d := testPageData(t, "")
		d.Invoice = inv
		if err := renderPaymentPage(io.Discard, d); err == nil {
			t.Errorf("invoice %q rendered", inv)
		}
	}
}

func TestRenderPaymentPageExpired(t *testing.T) {
	d := testPageData(t, "")
	d.ExpiresAt = time.Now().Add(-time.Minute)
	if s := pageScriptData(t, renderPage(t, d)); s.ExpiresIn != 0 {
		t.Errorf("expiresIn = %d, want 0", s.ExpiresIn)
	}
}

func TestFormatThousands(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0", 1: "1", 999: "999", 1000: "1,000", 21000: "21,000",
		100000: "100,000", 1234567: "1,234,567", 2100000000000000: "2,100,000,000,000,000",
		-1234: "-1,234", -100: "-100",
	} {
		if got := formatThousands(n); got != want {
			t.Errorf("formatThousands(%d) = %q, want %q", n, got, want)
		}
	}
	d := testPageData(t, "")
	d.Price = 1
	if out := renderPage(t, d); !strings.Contains(out, `<span id="amount">1</span> <span class="unit">sat</span>`) {
		t.Error("1 sat is not singular")
	}
}

// qrSVGModules parses the dark modules of invoiceQR's SVG back into a bitmap.
func qrSVGModules(t *testing.T, svg string) [][]bool {
	t.Helper()
	m := regexp.MustCompile(`viewBox="0 0 (\d+) (\d+)"`).FindStringSubmatch(svg)
	if m == nil || m[1] != m[2] {
		t.Fatalf("bad viewBox in %.200s", svg)
	}
	n, _ := strconv.Atoi(m[1])
	bm := make([][]bool, n)
	for i := range bm {
		bm[i] = make([]bool, n)
	}
	d := regexp.MustCompile(` d="([^"]*)"`).FindStringSubmatch(svg)
	if d == nil {
		t.Fatal("no path")
	}
	run := regexp.MustCompile(`^M(\d+) (\d+)h(\d+)v1h-(\d+)z`)
	for p := d[1]; p != ""; {
		r := run.FindStringSubmatch(p)
		if r == nil {
			t.Fatalf("bad path at %.40q", p)
		}
		x, _ := strconv.Atoi(r[1])
		y, _ := strconv.Atoi(r[2])
		w, _ := strconv.Atoi(r[3])
		if r[3] != r[4] || x+w > n || y >= n {
			t.Fatalf("bad run %q", r[0])
		}
		for i := x; i < x+w; i++ {
			bm[y][i] = true
		}
		p = p[len(r[0]):]
	}
	return bm
}

func TestInvoiceQR(t *testing.T) {
	d := testPageData(t, "A memo long enough to make the invoice a realistic size")
	svg, err := invoiceQR(d.Invoice)
	if err != nil {
		t.Fatal(err)
	}
	got := qrSVGModules(t, string(svg))

	content := "LIGHTNING:" + strings.ToUpper(d.Invoice)
	q, err := qrcode.New(content, qrLevel)
	if err != nil {
		t.Fatal(err)
	}
	want := q.Bitmap()
	const quiet = 4
	if size := 17 + 4*q.VersionNumber + 2*quiet; len(got) != size {
		t.Fatalf("QR is %d modules wide, want %d (version %d + quiet zone)", len(got), size, q.VersionNumber)
	}
	for y := range want {
		for x := range want[y] {
			if got[y][x] != want[y][x] {
				t.Fatalf("module (%d,%d) = %v, want %v", x, y, got[y][x], want[y][x])
			}
		}
	}
	n := len(got)
	if px := regexp.MustCompile(`width="(\d+)"`).FindStringSubmatch(string(svg)); px == nil {
		t.Error("SVG has no width")
	} else if w, _ := strconv.Atoi(px[1]); w%n != 0 || w > qrWidth {
		t.Errorf("SVG is %d px wide: not a multiple of %d modules up to %d", w, n, qrWidth)
	}
	for y := range n {
		for x := range n {
			if (x < quiet || y < quiet || x >= n-quiet || y >= n-quiet) && got[y][x] {
				t.Fatalf("dark module (%d,%d) in the quiet zone", x, y)
			}
		}
	}
	// The finder patterns: a dark 7x7 ring, a light ring, a dark 3x3 core.
	for _, c := range [][2]int{{quiet, quiet}, {n - quiet - 7, quiet}, {quiet, n - quiet - 7}} {
		for dy := range 7 {
			for dx := range 7 {
				ring := dx == 0 || dy == 0 || dx == 6 || dy == 6
				core := dx >= 2 && dx <= 4 && dy >= 2 && dy <= 4
				if got[c[1]+dy][c[0]+dx] != (ring || core) {
					t.Fatalf("finder pattern at %v broken at (%d,%d)", c, dx, dy)
				}
			}
		}
	}

	// Upper case makes a smaller (alphanumeric) code than the invoice as is.
	lower, err := qrcode.New("lightning:"+d.Invoice, qrLevel)
	if err != nil {
		t.Fatal(err)
	}
	if q.VersionNumber >= lower.VersionNumber {
		t.Errorf("upper-case QR is version %d, lower-case %d", q.VersionNumber, lower.VersionNumber)
	}
	t.Logf("invoice of %d chars: QR version %d, %d modules", len(d.Invoice), q.VersionNumber, n)
}

func BenchmarkRenderPaymentPage(b *testing.B) {
	d := testPageData(b, "Premium article")
	for b.Loop() {
		if err := renderPaymentPage(io.Discard, d); err != nil {
			b.Fatal(err)
		}
	}
}

// pageFakePaywall serves the payment page and fakes the paywall's side of the
// wait protocol.
type pageFakePaywall struct {
	data     pageData
	preimage string        // hex
	settled  chan struct{} // closed when the invoice is paid
	hold     time.Duration // how long an unpaid wait request is held
	reject   bool          // answer wait requests 401, as for an expired token
	expiry   time.Duration // invoice lifetime from serving the page; default 1h
	failures int           // answer this many wait requests first with 503

	mu        sync.Mutex
	waits     []string    // the Authorization of each wait request
	waitTimes []time.Time // when each wait request came
	pages     int         // payment pages served
	content   int         // content pages served
}

// newPageFakePaywall returns a fake paywall for an unpaid 2,100 sat invoice.
func newPageFakePaywall(t *testing.T) *pageFakePaywall {
	d := testPageData(t, "Premium article: The state of Lightning")
	return &pageFakePaywall{
		data:     d,
		preimage: hex.EncodeToString(pageTestPreimage),
		settled:  make(chan struct{}),
		hold:     600 * time.Millisecond,
	}
}

func (f *pageFakePaywall) waitAuths() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.waits...)
}

func (f *pageFakePaywall) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/article" {
		http.NotFound(w, r)
		return
	}
	if c, err := r.Cookie("l402"); err == nil && c.Value == "paid" {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		f.mu.Lock()
		f.content++
		f.mu.Unlock()
		io.WriteString(w, `<!doctype html><link rel="icon" href="data:,"><title>Article</title><p id="content">SECRET CONTENT</p>`)
		return
	}
	if r.Header.Get("X-L402-Wait") == "1" {
		auth := r.Header.Get("Authorization")
		f.mu.Lock()
		f.waits = append(f.waits, auth)
		f.waitTimes = append(f.waitTimes, time.Now())
		reject, token, fail := f.reject, f.data.Token, len(f.waits) <= f.failures
		f.mu.Unlock()
		switch {
		case fail:
			http.Error(w, "node unavailable", http.StatusServiceUnavailable)
		case reject:
			http.Error(w, "token expired", http.StatusUnauthorized)
		case auth == "L402 "+token+":"+f.preimage:
			f.pay(w)
		case auth != "L402 "+token:
			http.Error(w, "bad token", http.StatusUnauthorized)
		default:
			select {
			case <-f.settled:
				f.pay(w)
			case <-time.After(f.hold):
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, `{"paid":false}`)
			case <-r.Context().Done():
			}
		}
		return
	}
	nonce := make([]byte, 16)
	rand.Read(nonce)
	f.mu.Lock()
	d := f.data
	if f.expiry > 0 {
		d.ExpiresAt = time.Now().Add(f.expiry)
	}
	f.pages++
	f.mu.Unlock()
	d.Nonce = base64.StdEncoding.EncodeToString(nonce)
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+d.Nonce+
		"'; style-src 'nonce-"+d.Nonce+"'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusPaymentRequired)
	if err := renderPaymentPage(w, d); err != nil {
		panic(err)
	}
}

func (f *pageFakePaywall) pay(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: "l402", Value: "paid", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"paid":true}`)
}

func TestPaymentPageBrowser(t *testing.T) {
	chromium := browser.Start(t)

	t.Run("settlement", func(t *testing.T) {
		t.Parallel()
		f := newPageFakePaywall(t)
		ts := httptest.NewServer(f)
		t.Cleanup(ts.Close) // after the tab's cleanup
		ctx := browser.Tab(t, chromium, 30*time.Second)

		if err := chromedp.Do(ctx,
			chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
			chromedp.Navigate(ts.URL+"/article"),
			chromedp.WaitVisible(chromedp.CSS("#qr svg")),
		); err != nil {
			t.Fatal(err)
		}
		width, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.querySelector("#qr svg").getBoundingClientRect().width`))
		if err != nil {
			t.Fatal(err)
		}
		if width < 250 {
			t.Errorf("QR is %.0f px wide on a phone", width)
		}
		// WebLN is absent, so its button stays hidden.
		if err := chromedp.Do(ctx, chromedp.WaitNotVisible(chromedp.ID("webln-pay"))); err != nil {
			t.Fatal(err)
		}
		status, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("status")))
		if err != nil || !strings.Contains(status, "Waiting for payment") {
			t.Errorf("status = %q, %v", status, err)
		}

		// Let the page long-poll twice unpaid, then settle.
		deadline := time.Now().Add(10 * time.Second)
		for len(f.waitAuths()) < 2 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if len(f.waitAuths()) < 2 {
			t.Fatalf("page sent %d wait requests, want 2", len(f.waitAuths()))
		}
		close(f.settled)
		if err := browser.WaitText(ctx, "SECRET CONTENT", 10*time.Second); err != nil {
			t.Fatalf("content did not appear: %v", err)
		}
		for _, a := range f.waitAuths() {
			if a != "L402 "+f.data.Token {
				t.Errorf("wait request with Authorization %q", a)
			}
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.pages != 1 || f.content != 1 {
			t.Errorf("served %d payment pages and %d content pages, want 1 and 1", f.pages, f.content)
		}
	})

	t.Run("webln", func(t *testing.T) {
		t.Parallel()
		f := newPageFakePaywall(t)
		f.hold = 20 * time.Second // only the preimage can unlock
		ts := httptest.NewServer(f)
		t.Cleanup(ts.Close) // after the tab's cleanup
		ctx := browser.Tab(t, chromium, 30*time.Second)

		fake := fmt.Sprintf(`window.webln = {
			enable: async function () {},
			sendPayment: async function (invoice) {
				if (invoice !== %q) throw new Error("wrong invoice " + invoice);
				return { preimage: %q };
			}
		};`, f.data.Invoice, f.preimage)
		if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument,
			page.AddScriptToEvaluateOnNewDocumentParams{Source: fake}); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(ctx,
			chromedp.Navigate(ts.URL+"/article"),
			chromedp.WaitVisible(chromedp.ID("webln-pay")),
			chromedp.Click(chromedp.ID("webln-pay")),
		); err != nil {
			t.Fatal(err)
		}
		if err := browser.WaitText(ctx, "SECRET CONTENT", 10*time.Second); err != nil {
			t.Fatalf("content did not appear: %v", err)
		}
		want := "L402 " + f.data.Token + ":" + f.preimage
		found := false
		for _, a := range f.waitAuths() {
			found = found || a == want
		}
		if !found {
			t.Errorf("no wait request with %q; got %q", want, f.waitAuths())
		}
	})

	t.Run("server errors", func(t *testing.T) {
		t.Parallel()
		f := newPageFakePaywall(t)
		f.failures = 2
		close(f.settled)
		ts := httptest.NewServer(f)
		t.Cleanup(ts.Close)
		ctx := browser.Tab(t, chromium, 30*time.Second, http.StatusServiceUnavailable)
		if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/article")); err != nil {
			t.Fatal(err)
		}
		if err := browser.WaitText(ctx, "SECRET CONTENT", 15*time.Second); err != nil {
			t.Fatalf("content did not appear: %v", err)
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.waitTimes) != 3 {
			t.Fatalf("%d wait requests, want 2 failed and 1 paid", len(f.waitTimes))
		}
		// Backoff: 1 s, then 2 s.
		for i, want := range []time.Duration{time.Second, 2 * time.Second} {
			if gap := f.waitTimes[i+1].Sub(f.waitTimes[i]); gap < want-100*time.Millisecond || gap > want+time.Second {
				t.Errorf("retry %d after %v, want %v", i+1, gap, want)
			}
		}
	})

	t.Run("rejected token", func(t *testing.T) {
		t.Parallel()
		f := newPageFakePaywall(t)
		f.reject = true
		ts := httptest.NewServer(f)
		t.Cleanup(ts.Close) // after the tab's cleanup
		ctx := browser.Tab(t, chromium, 30*time.Second, http.StatusUnauthorized)
		if err := chromedp.Do(ctx,
			chromedp.Navigate(ts.URL+"/article"),
			chromedp.WaitVisible(chromedp.ID("renew")),
			chromedp.WaitNotVisible(chromedp.ID("open")),
		); err != nil {
			t.Fatal(err)
		}
		if n := len(f.waitAuths()); n != 1 {
			t.Errorf("page sent %d wait requests after a 401, want 1", n)
		}
	})

	t.Run("expiry", func(t *testing.T) {
		t.Parallel()
		f := newPageFakePaywall(t)
		f.expiry = 2 * time.Second
		ts := httptest.NewServer(f)
		t.Cleanup(ts.Close) // after the tab's cleanup
		ctx := browser.Tab(t, chromium, 30*time.Second)
		if err := chromedp.Do(ctx,
			chromedp.Navigate(ts.URL+"/article"),
			chromedp.WaitVisible(chromedp.ID("open")),
			chromedp.WaitVisible(chromedp.ID("renew")),
			chromedp.WaitNotVisible(chromedp.ID("open")),
		); err != nil {
			t.Fatal(err)
		}
		if err := browser.WaitText(ctx, "expired", time.Second); err != nil {
			t.Error(err)
		}
		// A new invoice is a reload.
		f.mu.Lock()
		f.expiry = time.Hour
		f.mu.Unlock()
		if err := chromedp.Do(ctx,
			chromedp.Click(chromedp.ID("renew")),
			chromedp.WaitVisible(chromedp.ID("open")),
		); err != nil {
			t.Fatal(err)
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.pages != 2 {
			t.Errorf("served %d pages, want 2", f.pages)
		}
	})

	for _, scheme := range []string{"light", "dark"} {
		t.Run("screenshot "+scheme, func(t *testing.T) {
			t.Parallel()
			f := newPageFakePaywall(t)
			f.hold = 20 * time.Second
			ts := httptest.NewServer(f)
			t.Cleanup(ts.Close)
			ctx := browser.Tab(t, chromium, 30*time.Second)
			if err := chromedp.Do(ctx,
				chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
				chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
					_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
						Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
					})
					return err
				}),
				chromedp.Navigate(ts.URL+"/article"),
				chromedp.WaitVisible(chromedp.CSS("#qr svg")),
			); err != nil {
				t.Fatal(err)
			}
			if err := browser.WaitText(ctx, "Expires in", 5*time.Second); err != nil {
				t.Fatal(err)
			}
			png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
			if err != nil {
				t.Fatal(err)
			}
			name := "payment-page.png"
			if scheme == "dark" {
				name = "payment-page-dark.png"
			}
			path := filepath.Join(t.TempDir(), name)
			if *pageScreenshots {
				path = filepath.Join("docs", name)
				if err := os.MkdirAll("docs", 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(path, png, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("screenshot: %s", path)
			checkQRScannable(t, path, "LIGHTNING:"+strings.ToUpper(f.data.Invoice))
		})
	}
}

// checkQRScannable decodes the QR code in a screenshot with zbarimg, if it is
// installed (Debian package zbar-tools).
func checkQRScannable(t *testing.T, png, want string) {
	t.Helper()
	zbar, err := exec.LookPath("zbarimg")
	if err != nil {
		t.Log("zbarimg not installed: QR not decoded")
		return
	}
	out, err := exec.Command(zbar, "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", png).Output()
	if err != nil {
		t.Fatalf("zbarimg found no QR code: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("QR decodes to %q, want %q", got, want)
	}
}
