package setups

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/lightningnetwork/lnd/zpay32"

	"github.com/lightningcaddy/caddy-lightning/internal/caddyrun"
	"github.com/lightningcaddy/caddy-lightning/internal/regtest"
	"github.com/lightningcaddy/caddy-lightning/l402"
)

// startCaddy runs Caddy in this process in front of node, with its
// macaroon of kind, and site as the body of a site on a free loopback port.
// It returns the site's base URL and the path of Caddy's JSON log.
func startCaddy(t *testing.T, node *regtest.Node, kind, site string) (url, logPath string) {
	t.Helper()
	port, err := caddyrun.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	logPath = filepath.Join(dir, "caddy.log")
	cfg := fmt.Sprintf(`{
	admin off
	auto_https off
	persist_config off
	storage file_system %s
	log {
		output file %s
		format json
		level INFO
	}
	lightning {
		lnd {
			address  %s
			tls_cert %s
			macaroon %s
		}
	}
}
http://127.0.0.1:%d {
%s
}
`, dir, logPath, node.GRPCAddr, node.TLSCertPath, node.MacaroonPathFor(kind), port, site)
	cfg = string(caddyfile.Format([]byte(cfg)))
	if err := caddyrun.Load(cfg); err != nil {
		t.Fatalf("%v\n%s", err, cfg)
	}
	t.Cleanup(func() {
		if err := caddyrun.Stop(); err != nil {
			t.Errorf("stop Caddy: %v", err)
		}
	})
	return fmt.Sprintf("http://127.0.0.1:%d", port), logPath
}

// logEntry is one line of Caddy's JSON log.
type logEntry map[string]any

// waitLog waits until Caddy's log has a line whose msg starts with prefix,
// and returns every line logged until then.
func waitLog(t *testing.T, path, prefix string) []logEntry {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var entries []logEntry
		found := false
		if f, err := os.Open(path); err == nil {
			sc := bufio.NewScanner(f)
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				var e logEntry
				if json.Unmarshal(sc.Bytes(), &e) == nil {
					entries = append(entries, e)
					found = found || strings.HasPrefix(fmt.Sprint(e["msg"]), prefix)
				}
			}
			f.Close()
		}
		if found {
			return entries
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line %q in %s: %v", prefix, path, entries)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// findLog returns the first entry whose msg starts with prefix.
func findLog(entries []logEntry, prefix string) logEntry {
	for _, e := range entries {
		if strings.HasPrefix(fmt.Sprint(e["msg"]), prefix) {
			return e
		}
	}
	return nil
}

// alicePays pays invoice from alice's node and returns the preimage,
// checked against the invoice's payment hash.
func alicePays(t *testing.T, invoice string) [32]byte {
	t.Helper()
	inv := decode(t, invoice)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	raw, err := network.Alice.PayInvoice(ctx, invoice)
	if err != nil {
		t.Fatal(err)
	}
	var p [32]byte
	if copy(p[:], raw) != 32 || sha256.Sum256(p[:]) != *inv.PaymentHash {
		t.Fatalf("preimage %x does not pay %x", raw, *inv.PaymentHash)
	}
	return p
}

func decode(t *testing.T, invoice string) *zpay32.Invoice {
	t.Helper()
	inv, err := zpay32.Decode(invoice, &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatalf("decode %q: %v", invoice, err)
	}
	return inv
}

// wantHintThroughBob checks that invoice carries one route hint: bob's
// private channel to carol.
func wantHintThroughBob(t *testing.T, invoice string) {
	t.Helper()
	hints := decode(t, invoice).RouteHints
	if len(hints) != 1 || len(hints[0]) != 1 {
		t.Fatalf("route hints %v, want one single-hop hint", hints)
	}
	if got := hex.EncodeToString(hints[0][0].NodeID.SerializeCompressed()); got != network.Bob.Pubkey {
		t.Errorf("route hint through %s, want bob %s", got, network.Bob.Pubkey)
	}
}

func post(t *testing.T, url, body string) map[string]any {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %d %s", url, resp.StatusCode, b)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("POST %s: %v: %s", url, err, b)
	}
	return out
}

// An invoice from carol, whose inbound liquidity is all on a private
// channel from bob, carries a route hint through bob (route_hints auto sees
// no public channel that could receive it), and alice pays it.
func TestPrivateChannelRouteHint(t *testing.T) {
	carol := carol(t)
	url, logPath := startCaddy(t, carol, "admin", "lightning")

	inv := post(t, url+"/v1/lightning/generateinvoice", `{"amount": 2100, "memo": "behind an LSP"}`)["invoice"].(string)
	wantHintThroughBob(t, inv)
	alicePays(t, inv)
	if paid := post(t, url+"/v1/lightning/checkinvoice", `{"invoice": "`+inv+`"}`)["paid"]; paid != true {
		t.Errorf("checkinvoice after alice paid: paid = %v", paid)
	}

	// admin.macaroon grants everything, and lnd said so.
	entries := waitLog(t, logPath, "lnd macaroon permissions checked")
	summary := findLog(entries, "lnd macaroon permissions checked")
	t.Logf("admin.macaroon: %v", summary)
	if summary["source"] != "lnd (CheckMacaroonPermissions)" || summary["bake"] != nil {
		t.Errorf("summary %v, want lnd as the source and nothing missing", summary)
	}
}

// challenge is the 402's JSON body.
type challenge struct {
	Invoice     string `json:"invoice"`
	Token       string `json:"token"`
	PaymentHash string `json:"payment_hash"`
}

// get sends a GET with an optional Authorization and returns status and body.
func get(t *testing.T, url, authorization string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// buy gets a 402 from url and checks its challenge.
func buy(t *testing.T, url string) challenge {
	t.Helper()
	status, body := get(t, url, "")
	if status != http.StatusPaymentRequired {
		t.Fatalf("status %d, want 402: %.300s", status, body)
	}
	var c challenge
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatal(err)
	}
	tok, err := l402.DecodeToken(c.Token)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(tok.Identifier.PaymentHash[:]) != c.PaymentHash || c.PaymentHash != hex.EncodeToString(decode(t, c.Invoice).PaymentHash[:]) {
		t.Fatalf("token, body and invoice disagree on the payment hash")
	}
	return c
}

// The paywall runs on lnd's stock invoice.macaroon (no info:read, no
// offchain:read, no macaroon:read): 402 with an invoice, paid with the
// preimage, and token-only (the node is asked whether the invoice was
// settled). route_hints auto cannot see the channels and asks for hints, so
// carol's invoices can be paid. The startup check says what the macaroon
// lacks, read from the macaroon itself.
func TestPaywallOnInvoiceMacaroon(t *testing.T) {
	carol := carol(t)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "paid content")
	}))
	defer upstream.Close()
	url, logPath := startCaddy(t, carol, "invoice", fmt.Sprintf(`route /paid/* {
	paywall 150
	reverse_proxy %s
}
route /v1/lightning/* {
	lightning {
		max_payment 1000
	}
}`, strings.TrimPrefix(upstream.URL, "http://")))

	c := buy(t, url+"/paid/a")
	wantHintThroughBob(t, c.Invoice)
	if amt := decode(t, c.Invoice).MilliSat; amt == nil || amt.ToSatoshis() != 150 {
		t.Errorf("invoice amount %v, want 150 sat", amt)
	}
	preimage := alicePays(t, c.Invoice)
	if status, body := get(t, url+"/paid/a", "L402 "+c.Token+":"+hex.EncodeToString(preimage[:])); status != http.StatusOK || !bytes.Equal(body, []byte("paid content")) {
		t.Errorf("paid with the preimage: %d %.200s", status, body)
	}

	// Token-only: the paywall asks carol (LookupInvoice, invoices:read)
	// or has seen the settlement on her invoice stream.
	c = buy(t, url+"/paid/b")
	if status, _ := get(t, url+"/paid/b", "L402 "+c.Token); status == http.StatusOK {
		t.Fatal("token-only credential admitted before payment")
	}
	alicePays(t, c.Invoice)
	if status, body := get(t, url+"/paid/b", "L402 "+c.Token); status != http.StatusOK || !bytes.Equal(body, []byte("paid content")) {
		t.Errorf("token only, after payment: %d %.200s", status, body)
	}

	entries := waitLog(t, logPath, "lnd macaroon permissions checked")
	for _, prefix := range []string{"route_hints auto: the lnd macaroon lacks offchain:read", "payinvoice and keysend: the lnd macaroon lacks info:read offchain:read offchain:write",
		"admin status: the lnd macaroon lacks info:read", "lnd macaroon permissions checked"} {
		e := findLog(entries, prefix)
		if e == nil {
			t.Errorf("no log line %q", prefix)
			continue
		}
		t.Logf("invoice.macaroon: %s %s %v", e["level"], e["msg"], e)
	}
	if e := findLog(entries, "paywall"); e != nil {
		t.Errorf("the paywall was reported lacking permissions: %v", e)
	}
	summary := findLog(entries, "lnd macaroon permissions checked")
	if src := fmt.Sprint(summary["source"]); !strings.Contains(src, "macaroon's identifier") || !strings.Contains(src, "lacks macaroon:read") {
		t.Errorf("source %q, want the macaroon's identifier because it lacks macaroon:read", src)
	}
}
