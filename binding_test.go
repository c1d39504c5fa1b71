package lightning

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightningcaddy/caddy-lightning/lnd/lndtest"
)

// TestPageBoundToItsBrowser: the token of a payment page is public enough
// (it is in the WWW-Authenticate header, which access logs record, and a
// page can be relayed to a victim who pays it), but only the browser the
// page was sent to, holding its binding cookie, can turn the paid invoice
// into the access cookie.
func TestPageBoundToItsBrowser(t *testing.T) {
	base, node := startPaywall(t, "100 {\n\t\tservice api\n\t}")
	c, binding := pageChallenge(t, base+"/paid/", nil)
	_, otherBinding := pageChallenge(t, base+"/paid/", nil)
	preimage := settleAndProve(t, node, c)
	lookups := node.Calls("LookupInvoice")

	for name, cookies := range map[string][]*http.Cookie{
		"no binding cookie":              nil,
		"another page's cookie":          {otherBinding},
		"another page's, under its name": {{Name: binding.Name, Value: otherBinding.Value}},
	} {
		for _, authz := range []string{"L402 " + c.Body.Token, l402Auth(c.Body.Token, preimage)} {
			resp, body, err := waitRequest(base+"/paid/", authz, cookies...)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
				t.Errorf("%s, %.30s…: %d %s, cookies %v", name, authz, resp.StatusCode, body, resp.Cookies())
			}
		}
	}
	if n := node.Calls("LookupInvoice") - lookups; n != 0 {
		t.Errorf("refused polls asked the node %d times", n)
	}
	resp, body, err := waitRequest(base+"/paid/", "L402 "+c.Body.Token, binding)
	if err != nil || resp.StatusCode != http.StatusOK || body != `{"paid":true}` {
		t.Fatalf("the page's own browser: %v %v %s", err, resp, body)
	}
	// Token-only mode stays what it is: a bearer credential once paid.
	if resp, body := get(t, base+"/paid/", auth("L402 "+c.Body.Token)); resp.StatusCode != http.StatusOK {
		t.Errorf("token alone after payment: %d %s", resp.StatusCode, body)
	}
}

// TestSecureCookiesBehindTLSProxy: behind a TLS-terminating proxy Caddy
// trusts (the tests trust loopback), the cookies are Secure and carry the
// __Host- prefix, and they open the route.
func TestSecureCookiesBehindTLSProxy(t *testing.T) {
	base, node := startPaywall(t, "100 {\n\t\tservice api\n\t}")
	https := http.Header{"X-Forwarded-Proto": {"https"}}
	c, binding := pageChallenge(t, base+"/paid/", https)
	if binding.Name[:7] != "__Host-" || !binding.Secure {
		t.Fatalf("binding cookie %+v behind a TLS proxy", binding)
	}
	settleAndProve(t, node, c)
	req, _ := http.NewRequest(http.MethodGet, base+"/paid/", nil)
	req.Header.Set("Authorization", "L402 "+c.Body.Token)
	req.Header.Set(waitHeader, "1")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.AddCookie(binding)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var access *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "__Host-l402_api_100" {
			access = ck
		}
	}
	if resp.StatusCode != http.StatusOK || access == nil || !access.Secure || access.Path != "/" || access.Domain != "" {
		t.Fatalf("wait behind a TLS proxy: %d, cookies %q", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}
	r, body := get(t, base+"/paid/", http.Header{"Cookie": {"theme=dark; " + access.Name + "=" + access.Value}})
	if r.StatusCode != http.StatusOK || !strings.Contains(body, "cookie=[theme=dark]") {
		t.Errorf("the __Host- cookie: %d %s", r.StatusCode, body)
	}
	// Over plain HTTP, as before: neither Secure nor prefixed.
	if _, plain := pageChallenge(t, base+"/paid/", nil); plain.Secure || strings.HasPrefix(plain.Name, "__Host-") {
		t.Errorf("binding cookie over plain HTTP: %+v", plain)
	}
}

// TestAccessLogFilterKeepsTokensOut: Caddy's access log redacts the
// Authorization and Cookie headers but records WWW-Authenticate, which
// holds the token; the filter the README gives removes it.
func TestAccessLogFilterKeepsTokensOut(t *testing.T) {
	node := lndtest.Start(t)
	dir := t.TempDir()
	site := func(log, format string) string {
		return fmt.Sprintf(`	log {
		output file %s
		%s
	}
	route /paid/* {
		paywall 100
		respond "content"
	}`, filepath.Join(dir, log), format)
	}
	for _, tt := range []struct {
		log, format string
		leaks       bool
	}{
		{"plain.log", "format json", true},
		{"filtered.log", "format filter {\n\t\t\tresp_headers>Www-Authenticate delete\n\t\t}", false},
	} {
		base := startCaddy(t, lndOption(node), site(tt.log, tt.format))
		c := getChallenge(t, base+"/paid/", nil, http.StatusPaymentRequired)
		get(t, base+"/paid/", auth("L402 "+c.Body.Token)) // token only, unpaid: 401
		settleAndProve(t, node, c)
		get(t, base+"/paid/", auth("L402 "+c.Body.Token))
		logs, err := os.ReadFile(filepath.Join(dir, tt.log))
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(logs), `"status":`); n != 3 {
			t.Fatalf("%s: %d access log entries, want 3:\n%s", tt.log, n, logs)
		}
		if leaks := strings.Contains(string(logs), c.Body.Token); leaks != tt.leaks {
			t.Errorf("%s: the token is in the access log: %v, want %v", tt.log, leaks, tt.leaks)
		}
	}
}
