package lightning

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/lightningcaddy/caddy-lightning/l402"
	"github.com/lightningcaddy/caddy-lightning/lnd/lndtest"
)

// adminCall sends a request to the admin API and decodes its JSON answer.
func adminCall(t *testing.T, method, url, body string, out any) int {
	t.Helper()
	resp, raw := do(t, method, url, http.Header{"Content-Type": {"application/json"}}, strings.NewReader(body))
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal([]byte(raw), out); err != nil {
			t.Fatalf("decode %s: %v", raw, err)
		}
	}
	return resp.StatusCode
}

const adminSite = `	route /paid/* {
		paywall 100 {
			service shop
		}
		respond "content"
	}`

func TestAdminStatusRevokeRotate(t *testing.T) {
	node := lndtest.Start(t)
	base, admin := startCaddyWithAdmin(t, t.TempDir(), lndOption(node), adminSite)

	var st adminStatus
	if code := adminCall(t, http.MethodGet, admin+"/lightning/status", "", &st); code != http.StatusOK {
		t.Fatalf("status: %d", code)
	}
	if !st.Node.Ready || !st.Node.Reachable || st.Node.Pubkey != node.Pubkey() || st.Node.Network != "regtest" ||
		len(st.Paywalls) != 1 || st.Paywalls[0].Service != "shop" || st.Paywalls[0].PriceSat != 100 || len(st.Keys) != 1 {
		t.Fatalf("status = %+v", st)
	}

	buy := func() (string, string) {
		c := getChallenge(t, base+"/paid/", nil, http.StatusPaymentRequired)
		return c.Body.Token, l402Auth(c.Body.Token, settleAndProve(t, node, c))
	}
	token1, paid1 := buy()
	token2, paid2 := buy()
	for _, h := range []string{paid1, paid2} {
		if resp, _ := get(t, base+"/paid/", auth(h)); resp.StatusCode != http.StatusOK {
			t.Fatalf("paid request before revocation: %d", resp.StatusCode)
		}
	}

	// Revoking takes effect on this instance at once.
	var revoked map[string]string
	if code := adminCall(t, http.MethodPost, admin+"/lightning/revoke", `{"token": "`+token1+`"}`, &revoked); code != http.StatusOK {
		t.Fatalf("revoke: %d", code)
	}
	decoded, _ := l402.DecodeToken(token1)
	if revoked["revoked"] != hex.EncodeToString(decoded.Identifier.TokenID[:]) {
		t.Errorf("revoked %v, want the token's id", revoked)
	}
	got := getChallenge(t, base+"/paid/", auth(paid1), http.StatusUnauthorized)
	if !strings.Contains(got.Body.Message, "revoked") {
		t.Errorf("message %q does not say the token was revoked", got.Body.Message)
	}
	if resp, _ := get(t, base+"/paid/", auth(paid2)); resp.StatusCode != http.StatusOK {
		t.Errorf("the other token stopped working: %d", resp.StatusCode)
	}

	// Rotation keeps old tokens valid unless the old keys are dropped.
	var rotated struct{ Keys []string }
	if code := adminCall(t, http.MethodPost, admin+"/lightning/rotate_key", `{}`, &rotated); code != http.StatusOK || len(rotated.Keys) != 2 {
		t.Fatalf("rotate: %d %v", code, rotated)
	}
	if resp, _ := get(t, base+"/paid/", auth(paid2)); resp.StatusCode != http.StatusOK {
		t.Errorf("an old token stopped working after a rotation that kept old keys: %d", resp.StatusCode)
	}
	token3, paid3 := buy()
	if d, _ := l402.DecodeToken(token3); hex.EncodeToString(d.Identifier.TokenID[:4]) != rotated.Keys[0] {
		t.Errorf("new token minted with key %x, want %s", d.Identifier.TokenID[:4], rotated.Keys[0])
	}
	if code := adminCall(t, http.MethodPost, admin+"/lightning/rotate_key", `{"drop_old": true}`, &rotated); code != http.StatusOK || len(rotated.Keys) != 1 {
		t.Fatalf("rotate dropping old keys: %d %v", code, rotated)
	}
	for _, h := range []string{paid2, paid3} {
		getChallenge(t, base+"/paid/", auth(h), http.StatusUnauthorized)
	}
	_ = token2

	for _, tt := range []struct {
		method, path, body string
		want               int
	}{
		{http.MethodPost, "/lightning/revoke", `{"token_id": "xyz"}`, http.StatusBadRequest},
		{http.MethodPost, "/lightning/revoke", `{}`, http.StatusBadRequest},
		{http.MethodPost, "/lightning/revoke", `{"token": "!!!"}`, http.StatusBadRequest},
		{http.MethodPost, "/lightning/revoke", `{"tokn": "a"}`, http.StatusBadRequest},
		{http.MethodPost, "/lightning/revoke", `not json`, http.StatusBadRequest},
		{http.MethodGet, "/lightning/revoke", ``, http.StatusMethodNotAllowed},
		{http.MethodPost, "/lightning/status", ``, http.StatusMethodNotAllowed},
		{http.MethodGet, "/lightning/bogus", ``, http.StatusNotFound},
	} {
		if code := adminCall(t, tt.method, admin+tt.path, tt.body, nil); code != tt.want {
			t.Errorf("%s %s %s: %d, want %d", tt.method, tt.path, tt.body, code, tt.want)
		}
	}
}

func TestTokensSurviveRestart(t *testing.T) {
	node := lndtest.Start(t)
	storage := t.TempDir()
	base, _ := startCaddyWithAdmin(t, storage, lndOption(node), adminSite)
	c := getChallenge(t, base+"/paid/", nil, http.StatusPaymentRequired)
	paid := l402Auth(c.Body.Token, settleAndProve(t, node, c))

	base, _ = startCaddyWithAdmin(t, storage, lndOption(node), adminSite) // a new config, same storage
	if resp, body := get(t, base+"/paid/", auth(paid)); resp.StatusCode != http.StatusOK {
		t.Fatalf("token after restart: %d %s", resp.StatusCode, body)
	}
}
