package lightning

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/caddyserver/caddy/v2"

	"github.com/lightningcaddy/caddy-lightning/l402"
	"github.com/lightningcaddy/caddy-lightning/lnd"
	"github.com/lightningcaddy/caddy-lightning/lnd/lndtest"
)

// TestEachPaywallSellsItsOwnService: two paywalls at the same price without
// a service do not honour each other's tokens (a 30-day token must not open
// a 2-minute route); each one's name stays the same across a reload, even
// one that adds a route before them, so bought tokens keep working.
func TestEachPaywallSellsItsOwnService(t *testing.T) {
	node := lndtest.Start(t)
	storage, port := t.TempDir(), freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	site := `	route /month/* {
		paywall 100 {
			valid_for 720h
		}
		respond "month"
	}
	route /short/* {
		paywall 100 {
			valid_for 2m
		}
		respond "short"
	}`
	loadCaddyfile(t, testCaddyfile("off", storage, lndOption(node), port, site))
	t.Cleanup(func() { _ = caddy.Stop() })

	month := getChallenge(t, base+"/month/a", nil, http.StatusPaymentRequired)
	short := getChallenge(t, base+"/short/a", nil, http.StatusPaymentRequired)
	monthService, shortService := tokenService(t, month.Body.Token), tokenService(t, short.Body.Token)
	if monthService == shortService || !strings.HasPrefix(monthService, "paywall-") || !strings.HasPrefix(shortService, "paywall-") {
		t.Fatalf("services %q and %q", monthService, shortService)
	}
	paid := auth(l402Auth(month.Body.Token, settleAndProve(t, node, month)))
	check := func(when string) {
		t.Helper()
		if resp, body := get(t, base+"/month/b", paid); resp.StatusCode != http.StatusOK {
			t.Errorf("%s: the month token on its route: %d %s", when, resp.StatusCode, body)
		}
		got := getChallenge(t, base+"/short/b", paid, http.StatusUnauthorized)
		if !strings.Contains(got.Body.Message, "not valid for this service") {
			t.Errorf("%s: the month token on the short route: %q", when, got.Body.Message)
		}
	}
	check("first config")

	reloadCaddyfile(t, testCaddyfile("off", storage, lndOption(node), port, "\troute /free/* {\n\t\trespond \"free\"\n\t}\n"+site), port)
	check("after a reload that adds a route")
	again := getChallenge(t, base+"/month/a", nil, http.StatusPaymentRequired)
	if s := tokenService(t, again.Body.Token); s != monthService {
		t.Errorf("after the reload the month route sells %q, before %q", s, monthService)
	}
}

// TestSharedServiceBoundedByEachPaywall: paywalls that name one service
// honour each other's tokens, but a token lasts at each no longer than that
// paywall's own invoice_expiry plus valid_for from its issue.
func TestSharedServiceBoundedByEachPaywall(t *testing.T) {
	node := lndtest.Start(t)
	rootKey := l402.NewRootKey()
	base := startCaddy(t, lndOption(node), fmt.Sprintf(`	route /month/* {
		paywall 100 {
			service news
			valid_for 720h
			root_key %[1]x
		}
		respond "month"
	}
	route /short/* {
		paywall 100 {
			service news
			valid_for 2m
			root_key %[1]x
		}
		respond "short"
	}`, rootKey))
	keys, _ := l402.NewKeyring(rootKey)
	inv, preimage := node.NewPayableInvoice(100)
	decoded, err := lnd.DecodeInvoice(inv, &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	token := func(age time.Duration) http.Header {
		issued := time.Now().Add(-age)
		tok, _, err := keys.Mint(decoded.PaymentHash, l402.ServicesCaveat(l402.Service{Name: "news"}),
			l402.ValidUntilCaveat("news", issued.Add(30*24*time.Hour)), l402.IssuedAtCaveat("news", issued), l402.PriceCaveat("news", 100))
		if err != nil {
			t.Fatal(err)
		}
		return auth(l402Auth(tok, preimage))
	}
	// The short route's tokens last 10m (invoice) + 2m.
	for _, tt := range []struct {
		age        time.Duration
		path       string
		wantStatus int
	}{
		{5 * time.Minute, "/month/", http.StatusOK},
		{5 * time.Minute, "/short/", http.StatusOK},
		{13 * time.Minute, "/month/", http.StatusOK},
		{13 * time.Minute, "/short/", http.StatusUnauthorized},
	} {
		resp, body := get(t, base+tt.path, token(tt.age))
		if resp.StatusCode != tt.wantStatus {
			t.Errorf("a month token issued %v ago on %s: %d %.100s, want %d", tt.age, tt.path, resp.StatusCode, body, tt.wantStatus)
		}
	}
}

// TestBuyersPromise: a payment made at the last moment the invoice can be
// paid still buys valid_for: the token's valid_until is at least the
// invoice's expiry plus valid_for.
func TestBuyersPromise(t *testing.T) {
	base, _ := startPaywall(t, "10 {\n\t\tservice api\n\t\tvalid_for 1m\n\t}")
	c := getChallenge(t, base+"/paid/", nil, http.StatusPaymentRequired)
	inv, err := lnd.DecodeInvoice(c.Body.Invoice, &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := l402.DecodeToken(c.Body.Token)
	if err != nil {
		t.Fatal(err)
	}
	validUntil, _, found, err := tok.ValidUntil("api")
	if err != nil || !found {
		t.Fatalf("valid_until: %v %v", found, err)
	}
	if last := inv.ExpiresAt.Add(time.Minute); validUntil.Before(last) {
		t.Errorf("the invoice can be paid until %v, the token ends %v: a payment then buys %v, not 1m",
			inv.ExpiresAt.Format(time.TimeOnly), validUntil.Format(time.TimeOnly), validUntil.Sub(inv.ExpiresAt))
	}
}

// TestPaywallConfigRefusals: configurations that would break the buyer's
// promise, or hold an empty secret, are refused at validation.
func TestPaywallConfigRefusals(t *testing.T) {
	node := lndtest.Start(t)
	for _, tt := range []struct {
		block, want string
	}{
		{"invoice_expiry 500ms", "invoice_expiry must be at least 1s"},
		{"valid_for 9000h\n\t\t\tinvoice_expiry 720h", "400 days"},
		{"root_key {env.CADDY_LIGHTNING_TEST_UNSET}", `root_key "{env.CADDY_LIGHTNING_TEST_UNSET}" resolves to an empty value`},
		{"root_key abcd", "32 bytes in hex"},
		{"service a:b", "use 1-64 letters"},
	} {
		err := validateSite(t, node, "\troute /paid/* {\n\t\tpaywall 100 {\n\t\t\t"+tt.block+"\n\t\t}\n\t\trespond \"x\"\n\t}")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v, want an error saying %q", tt.block, err, tt.want)
		}
	}
	if err := validateSite(t, node, "\troute /paid/* {\n\t\tpaywall 100 {\n\t\t\tvalid_for 1m\n\t\t\tinvoice_expiry 1m\n\t\t}\n\t\trespond \"x\"\n\t}"); err != nil {
		t.Errorf("a sound config: %v", err)
	}
}

// validateSite runs `caddy validate` on a site of the test Caddyfile.
func validateSite(t *testing.T, node *lndtest.Node, site string) error {
	t.Helper()
	cfg, _, err := adaptCaddyfile(testCaddyfile("off", t.TempDir(), lndOption(node), freePort(t), site))
	if err != nil {
		return err
	}
	var c caddy.Config
	if err := json.Unmarshal(cfg, &c); err != nil {
		t.Fatal(err)
	}
	return caddy.Validate(&c)
}

// tokenService is the service a token's services caveat names.
func tokenService(t *testing.T, token string) string {
	t.Helper()
	tok, err := l402.DecodeToken(token)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range tok.Caveats {
		if v, ok := strings.CutPrefix(c, "services="); ok {
			name, _, _ := strings.Cut(v, ":")
			return name
		}
	}
	t.Fatalf("token without a services caveat: %q", tok.Caveats)
	return ""
}
