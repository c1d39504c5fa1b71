package lightning

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// TestStripWhatAdmits: every spelling the verifier admits is taken out
// before the upstream, and so is every cookie a paywall sets (any
// paywall's: with Path=/ they all reach every route), while everything
// else passes as it came.
func TestStripWhatAdmits(t *testing.T) {
	base, node := startPaywall(t, "100 {\n\t\tservice api\n\t}")
	c := getChallenge(t, base+"/paid/x", nil, http.StatusPaymentRequired)
	preimage := settleAndProve(t, node, c)
	pre := hex.EncodeToString(preimage[:])
	for _, v := range []string{
		"L402\t" + c.Body.Token + ":" + pre,
		"L402 ," + c.Body.Token + ":" + pre,
		"Basic dXNlcjpwYXNz, LSAT\t" + c.Body.Token + " : " + pre,
	} {
		resp, body := get(t, base+"/paid/x", http.Header{"Authorization": {v}, "Cookie": {
			"theme=dark; l402_other_5=abc:def; __Host-l402_api_100=x; l402_page_0011223344556677=binding; session=1",
		}})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%q: %d %s", v, resp.StatusCode, body)
		}
		if strings.Contains(body, c.Body.Token) || strings.Contains(body, pre) || strings.Contains(body, "l402") {
			t.Errorf("%q: the upstream saw a credential: %s", v, body)
		}
		if !strings.Contains(body, "cookie=[theme=dark; session=1]") {
			t.Errorf("%q: other cookies changed: %s", v, body)
		}
		if strings.HasPrefix(v, "Basic") && !strings.Contains(body, "auth=[Basic dXNlcjpwYXNz]") {
			t.Errorf("%q: the Basic credential was lost: %s", v, body)
		}
	}
}

func TestWithoutPaywallCookies(t *testing.T) {
	for in, want := range map[string]string{
		"a=1":                          "a=1",
		"l402_api_100=x":               "",
		"a=1; l402_x_1=y; b=2":         "a=1; b=2",
		"__Host-l402_x_1=y;a=1":        "a=1",
		"l402_page_00=b; __Host-a=1":   "__Host-a=1",
		`prefs={"l402_":1}; l402_a_1=`: `prefs={"l402_":1}`,
	} {
		if got := withoutPaywallCookies(in); got != want {
			t.Errorf("withoutPaywallCookies(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestIsHTTPS: a request counts as HTTPS when Caddy terminated TLS, or
// when a proxy Caddy trusts says so; an untrusted client cannot claim it.
func TestIsHTTPS(t *testing.T) {
	for _, tt := range []struct {
		name    string
		tls     bool
		trusted bool
		proto   []string
		want    bool
	}{
		{"plain", false, false, nil, false},
		{"TLS to Caddy", true, false, nil, true},
		{"trusted proxy, https", false, true, []string{"https"}, true},
		{"trusted proxy, HTTPS appended", false, true, []string{"http, HTTPS"}, true},
		{"trusted proxy, http", false, true, []string{"http"}, false},
		{"trusted proxy, https claimed before it", false, true, []string{"https, http"}, false},
		{"untrusted client claims https", false, false, []string{"https"}, false},
	} {
		r, _ := http.NewRequest(http.MethodGet, "http://example.com/", nil)
		ctx := context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{caddyhttp.TrustedProxyVarKey: tt.trusted})
		r = r.WithContext(ctx)
		if tt.tls {
			r.TLS = &tls.ConnectionState{}
		}
		for _, p := range tt.proto {
			r.Header.Add("X-Forwarded-Proto", p)
		}
		if got := isHTTPS(r); got != tt.want {
			t.Errorf("%s: isHTTPS = %v, want %v", tt.name, got, tt.want)
		}
	}
}
