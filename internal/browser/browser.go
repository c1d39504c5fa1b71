// Package browser starts headless Chromium (Debian's, installed by
// scripts/install-deps.sh) for the tests that drive the payment page with
// chromedp.
package browser

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// Chromium is where Debian's package installs the browser.
const Chromium = "/usr/bin/chromium"

// Start starts headless Chromium with a fresh profile for the test, and
// stops it at the end. It skips the test when Chromium is not installed.
// The flags keep it off the network (the machine's network is closed) and
// keep every tab at full speed when several run side by side.
func Start(t testing.TB) context.Context {
	t.Helper()
	if _, err := os.Stat(Chromium); err != nil {
		t.Skip("no Chromium at " + Chromium + " (scripts/install-deps.sh installs it)")
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(Chromium),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// cspReporter turns every Content-Security-Policy violation in any document
// of a tab into a console error, which the tab's console check catches.
// Scripts added this way run whatever the page's CSP says.
const cspReporter = `document.addEventListener("securitypolicyviolation", function (e) {
	console.error("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline") + " at " + e.sourceFile + ":" + e.lineNumber);
});`

// Tab opens a tab in a browser context of its own (no cookies from other
// tabs), bounded by timeout, that fails the test at its end for every
// console error or warning, uncaught exception and CSP violation. The
// browser's own network log of HTTP 402, or of one of statuses, is
// expected.
func Tab(t testing.TB, chromium context.Context, timeout time.Duration, statuses ...int) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(chromium, chromedp.WithNewBrowserContext())
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	expected := append(statuses, http.StatusPaymentRequired)
	var (
		mu   sync.Mutex
		msgs []string
		done = make(chan struct{})
	)
	console := chromedp.Console(ctx)
	go func() {
		defer close(done)
		for m, err := range console {
			if err != nil {
				return
			}
			if m.Type != chromedp.ConsoleError && m.Type != chromedp.ConsoleWarning && !m.IsException() {
				continue
			}
			if m.Source == "network" && slices.ContainsFunc(expected, func(s int) bool {
				return strings.Contains(m.Text, fmt.Sprintf("status of %d ", s))
			}) {
				continue
			}
			mu.Lock()
			msgs = append(msgs, fmt.Sprintf("%s [source %q] (%s:%d)", m, m.Source, m.URL, m.Line+1))
			mu.Unlock()
		}
	}()
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: cspReporter}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancelTimeout()
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			t.Errorf("browser console: %s", m)
		}
	})
	return ctx
}

// WaitText waits until the page's text contains s, across the page's own
// reloads (a reload interrupts an evaluation, which is then retried).
func WaitText(ctx context.Context, s string, timeout time.Duration) error {
	expr := fmt.Sprintf(`document.body !== null && document.body.innerText.includes(%q)`, s)
	deadline := time.Now().Add(timeout)
	for {
		attempt, cancel := context.WithTimeout(ctx, time.Second)
		ok, err := chromedp.Run(attempt, chromedp.Evaluate[bool](expr))
		cancel()
		switch {
		case err == nil && ok:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case time.Now().After(deadline):
			text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
			return fmt.Errorf("no %q on the page after %v (last error %v); the page says: %.300q", s, timeout, err, text)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
