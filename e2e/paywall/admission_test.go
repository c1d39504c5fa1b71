package paywall

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"

	"github.com/lightningcaddy/caddy-lightning/internal/caddyrun"
)

// aliceInvoices is the add index of alice's newest invoice: how many she
// has ever made.
func aliceInvoices(t *testing.T) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := network.Alice.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := lnrpc.NewLightningClient(conn).ListInvoices(ctx, &lnrpc.ListInvoiceRequest{Reversed: true, NumMaxInvoices: 1})
	if err != nil {
		t.Fatal(err)
	}
	return resp.LastIndexOffset
}

// nodeCalls reads from Caddy's metrics how many times the paywall called
// method on the node.
func nodeCalls(t *testing.T, base, method string) int {
	t.Helper()
	_, body := get(t, base+"/metrics", nil)
	prefix := `caddy_lightning_node_call_duration_seconds_count{method="` + method + `"} `
	for sc := bufio.NewScanner(bytes.NewReader(body)); sc.Scan(); {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("metric %q", sc.Text())
			}
			return n
		}
	}
	return 0
}

// TestHeadAndOptionsMakeNoInvoice: HEAD and OPTIONS requests, which browsers
// and monitors send freely, cost alice no invoice; a CORS preflight passes
// the paywall to the site's answer.
func TestHeadAndOptionsMakeNoInvoice(t *testing.T) {
	needNetwork(t)
	base := startCaddy(t, `	@preflight method OPTIONS
	respond @preflight 204
	paywall 100 {
		service api
	}
	respond "paid"`)
	before := aliceInvoices(t)
	for range 10 {
		for _, method := range []string{http.MethodHead, http.MethodOptions} {
			resp, body := do(t, method, base+"/doc", nil, nil)
			if resp.StatusCode != http.StatusPaymentRequired || len(resp.Header.Values("WWW-Authenticate")) != 0 {
				t.Fatalf("%s: %d %s %q", method, resp.StatusCode, body, resp.Header.Values("WWW-Authenticate"))
			}
		}
	}
	resp, body := do(t, http.MethodOptions, base+"/doc", http.Header{"Origin": {"https://app.example"}, "Access-Control-Request-Method": {"GET"}}, nil)
	expectStatus(t, "CORS preflight", resp, body, http.StatusNoContent)
	if n := aliceInvoices(t) - before; n != 0 {
		t.Errorf("10 HEAD, 10 OPTIONS and a preflight made %d invoices on alice, want 0", n)
	}
	getChallenge(t, base+"/doc")
	if n := aliceInvoices(t) - before; n != 1 {
		t.Errorf("a GET made %d invoices, want 1", n)
	}
}

// TestUnpaidTokenCostsBoundedLookups: 200 requests presenting one unpaid
// token alone cost alice a handful of lookups (the answer "not paid" is
// remembered, and asked again at doubling intervals), not 200; once bob
// pays, the invoice stream admits the token with no lookup at all.
func TestUnpaidTokenCostsBoundedLookups(t *testing.T) {
	needNetwork(t)
	up := newUpstream(t)
	base := startCaddy(t, proxyRoute("/api/*", "100 {\n\t\t\tservice api\n\t\t\tinvoices_per_client off\n\t\t\tinvoices_total off\n\t\t}", up)+
		"\troute /metrics {\n\t\tmetrics\n\t}\n")
	url := base + "/api/report"
	c := getChallenge(t, url)
	before := nodeCalls(t, base, "LookupInvoice")
	start := time.Now()
	for range 200 {
		resp, body := get(t, url, http.Header{"Authorization": {"L402 " + c.Token}, "Accept": {"application/json"}})
		parseChallenge(t, resp, body, http.StatusUnauthorized)
	}
	lookups := nodeCalls(t, base, "LookupInvoice") - before
	t.Logf("200 requests with an unpaid token alone in %v: %d lookups on alice", time.Since(start).Round(time.Millisecond), lookups)
	// Lookups are spaced 1, 2, 4, ... s apart: 8 fit in two minutes.
	if lookups < 1 || lookups > 8 {
		t.Errorf("200 requests with one unpaid token: %d lookups, want 1 to 8", lookups)
	}
	pay(t, c.Invoice, c.Hash)
	before = nodeCalls(t, base, "LookupInvoice")
	for i := 0; ; i++ { // until alice's invoice stream has told the paywall
		resp, body := get(t, url, http.Header{"Authorization": {"L402 " + c.Token}})
		if resp.StatusCode == http.StatusOK {
			break
		}
		if i == 100 {
			t.Fatalf("the paid token alone is still refused: %d %.200s", resp.StatusCode, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := nodeCalls(t, base, "LookupInvoice") - before; n > 1 {
		t.Errorf("admitting the paid token cost %d lookups", n)
	}
}

// TestReloadDuringPayment: a payment page polls, Caddy reloads its config,
// and bob pays after the reload: the poll held by the old config is
// answered paid, and the new config admits the token without asking alice,
// because the invoice stream went on across the reload.
func TestReloadDuringPayment(t *testing.T) {
	needNetwork(t)
	up := newUpstream(t)
	port, err := caddyrun.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	storage := t.TempDir()
	site := func(marker string) string {
		return proxyRoute("/api/*", "100 {\n\t\t\tservice api\n\t\t\tmemo \""+marker+"\"\n\t\t}", up) + "\troute /metrics {\n\t\tmetrics\n\t}\n"
	}
	loadCaddy(t, caddyConfig(port, storage, site("before")))
	t.Cleanup(func() { _ = caddyrun.Stop() })
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	c, binding := openPage(t, base+"/api/article")
	if inv := decodeInvoice(t, c.Invoice); inv.Description == nil || *inv.Description != "before" {
		t.Fatalf("invoice memo %v", inv.Description)
	}

	type answer struct {
		status int
		body   string
		err    error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, body, err := waitFor(base+"/api/article", "L402 "+c.Token, binding)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		answered <- answer{status: resp.StatusCode, body: string(body)}
	}()
	time.Sleep(500 * time.Millisecond) // let the poll reach the old config

	loadCaddy(t, caddyConfig(port, storage, site("after")))
	client.CloseIdleConnections() // the old server closes them
	if after := getChallenge(t, base+"/api/article"); *decodeInvoice(t, after.Invoice).Description != "after" {
		t.Fatal("the reload did not take effect")
	}
	select {
	case a := <-answered:
		t.Fatalf("the poll was answered before the payment: %+v", a)
	default:
	}
	pay(t, c.Invoice, c.Hash)
	a := <-answered
	if a.err != nil || a.status != http.StatusOK || a.body != `{"paid":true}` {
		t.Fatalf("the poll held across the reload: %+v", a)
	}
	lookups := nodeCalls(t, base, "LookupInvoice")
	resp, body := get(t, base+"/api/article", auth("L402 "+c.Token))
	expectContent(t, "the token alone on the new config", resp, body, "GET", "/api/article")
	if n := nodeCalls(t, base, "LookupInvoice") - lookups; n != 0 {
		t.Errorf("the new config asked alice %d times about an invoice the stream reported", n)
	}
}
