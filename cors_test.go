package lightning

import (
	"net/http"
	"strings"
	"testing"

	"github.com/lightningcaddy/caddy-lightning/lnd/lndtest"
)

// corsSite is a paywalled site that lets scripts of https://app.example
// call it: the header directive answers every request with CORS headers,
// and preflights, which pass the paywall, get 204 (directives sort
// paywall before respond and reverse_proxy).
const corsSite = `	header Access-Control-Allow-Origin https://app.example
	header Access-Control-Allow-Headers Authorization
	@preflight method OPTIONS
	respond @preflight 204
	paywall 100 {
		service api
	}
	respond "paid {http.request.method}"`

// TestNoInvoiceForHeadOrOptions: HEAD and OPTIONS get the status without
// an invoice, and a CORS preflight passes the paywall to the site's own
// answer.
func TestNoInvoiceForHeadOrOptions(t *testing.T) {
	node := lndtest.Start(t)
	base := startCaddy(t, lndOption(node), corsSite)

	for range 10 {
		resp, body := do(t, http.MethodHead, base+"/doc", nil, nil)
		if resp.StatusCode != http.StatusPaymentRequired || body != "" || len(resp.Header.Values("WWW-Authenticate")) != 0 {
			t.Fatalf("HEAD: %d %q %q", resp.StatusCode, body, resp.Header.Values("WWW-Authenticate"))
		}
		resp, body = do(t, http.MethodOptions, base+"/doc", nil, nil)
		if resp.StatusCode != http.StatusPaymentRequired || len(resp.Header.Values("WWW-Authenticate")) != 0 ||
			!strings.Contains(body, "no invoice for OPTIONS") {
			t.Fatalf("OPTIONS: %d %q", resp.StatusCode, body)
		}
	}
	if n := node.Calls("AddInvoice"); n != 0 {
		t.Errorf("10 HEAD and 10 OPTIONS made %d invoices, want 0", n)
	}

	preflight := http.Header{"Origin": {"https://app.example"}, "Access-Control-Request-Method": {"GET"},
		"Access-Control-Request-Headers": {"authorization"}}
	resp, body := do(t, http.MethodOptions, base+"/doc", preflight, nil)
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		resp.Header.Get("Access-Control-Allow-Headers") != "Authorization" {
		t.Fatalf("preflight: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if n := node.Calls("AddInvoice"); n != 0 {
		t.Errorf("a preflight made %d invoices", n)
	}

	// The 402 to a cross-origin request lets the script read the challenge.
	c := getChallenge(t, base+"/doc", http.Header{"Origin": {"https://app.example"}}, http.StatusPaymentRequired)
	exposed := strings.Join(c.Header.Values("Access-Control-Expose-Headers"), ", ")
	for _, h := range []string{"WWW-Authenticate", "PAYMENT-REQUIRED", "Payment-Receipt", "PAYMENT-RESPONSE"} {
		if !strings.Contains(exposed, h) {
			t.Errorf("Access-Control-Expose-Headers %q lacks %s", exposed, h)
		}
	}
	if c.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Errorf("the 402 lost the site's CORS header: %v", c.Header)
	}
	if got := getChallenge(t, base+"/doc", nil, http.StatusPaymentRequired); len(got.Header.Values("Access-Control-Expose-Headers")) != 0 {
		t.Error("a same-origin 402 exposes headers")
	}

	// Paid, HEAD and OPTIONS are served like any method.
	paid := auth(l402Auth(c.Body.Token, settleAndProve(t, node, c)))
	if resp, _ := do(t, http.MethodHead, base+"/doc", paid, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("paid HEAD: %d", resp.StatusCode)
	}
}
