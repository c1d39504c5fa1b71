package metering

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/lightningcaddy/caddy-lightning/internal/caddyrun"
	"github.com/lightningcaddy/caddy-lightning/internal/redistest"
)

// balanceHeader is where the paywall tells a prepaid client its balance.
const balanceHeader = "Paywall-Balance"

// site is a running Caddy config: its base URL, and how to load it again.
type site struct {
	base   string
	config string
}

// startCaddy runs Caddy in this process with alice as the node, the
// lightning app's extra options (such as a ledger block) and the site body
// on a free port, with its own storage; it stops Caddy when the test ends.
func startCaddy(t *testing.T, appOptions, body string) site {
	t.Helper()
	if network == nil {
		t.Skip("needs the regtest network; not started under -short")
	}
	port, err := caddyrun.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`{
	admin off
	auto_https off
	persist_config off
	storage file_system %s
	log {
		level WARN
	}
	lightning {
		%s
%s
	}
}

http://127.0.0.1:%d {
%s
}
`, t.TempDir(), network.Alice.CaddyLND(), appOptions, port, body)
	s := site{base: fmt.Sprintf("http://127.0.0.1:%d", port), config: string(caddyfile.Format([]byte(cfg)))}
	s.load(t)
	t.Cleanup(func() {
		if err := caddyrun.Stop(); err != nil {
			t.Errorf("stop Caddy: %v", err)
		}
	})
	return s
}

// load runs the site's config (again).
func (s site) load(t *testing.T) {
	t.Helper()
	if err := caddyrun.Load(s.config); err != nil {
		t.Fatalf("%v\n%s", err, s.config)
	}
}

// client has no cookie jar and a bound on every request.
var client = &http.Client{Timeout: 60 * time.Second}

// answer is a response with its body read.
type answer struct {
	status  int
	header  http.Header
	trailer http.Header
	body    string
}

// get sends a GET with an optional Authorization header.
func get(t *testing.T, url, authorization string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read: %v", url, err)
	}
	return answer{resp.StatusCode, resp.Header, resp.Trailer, string(body)}
}

// challenge is a 402's JSON body.
type challenge struct {
	Message     string `json:"message"`
	Invoice     string `json:"invoice"`
	Token       string `json:"token"`
	PaymentHash string `json:"payment_hash"`
	PriceSat    int64  `json:"price_sat"`
}

// challengeOf decodes a 402 or 401.
func challengeOf(t *testing.T, a answer, status int) challenge {
	t.Helper()
	var c challenge
	if a.status != status || json.Unmarshal([]byte(a.body), &c) != nil || c.Invoice == "" {
		t.Fatalf("status %d, want %d with a challenge: %.300s", a.status, status, a.body)
	}
	return c
}

// pay pays a challenge's invoice from bob and returns the credential.
func pay(t *testing.T, c challenge) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	preimage, err := network.Bob.PayInvoice(ctx, c.Invoice)
	if err != nil {
		t.Fatal(err)
	}
	return "L402 " + c.Token + ":" + hex.EncodeToString(preimage)
}

// buy gets a challenge at url and pays it.
func buy(t *testing.T, url string) (challenge, string) {
	t.Helper()
	c := challengeOf(t, get(t, url, ""), http.StatusPaymentRequired)
	return c, pay(t, c)
}

// atOnce sends n GETs with one credential at the same moment and returns
// their statuses.
func atOnce(t *testing.T, n int, url, authorization string) []int {
	t.Helper()
	statuses := make([]int, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			req.Header.Set("Authorization", authorization)
			resp, err := client.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return statuses
}

func count(statuses []int, status int) int {
	n := 0
	for _, s := range statuses {
		if s == status {
			n++
		}
	}
	return n
}

// TestPerRequest: one payment admits exactly one request: the first use
// is served, a second (or a concurrent one) is not.
func TestPerRequest(t *testing.T) {
	s := startCaddy(t, "", `	route /api/* {
		paywall 10 {
			mode per_request
		}
		respond "answer"
	}`)
	c, paid := buy(t, s.base+"/api/q")
	if c.PriceSat != 10 {
		t.Fatalf("price %d", c.PriceSat)
	}
	if a := get(t, s.base+"/api/q", paid); a.status != http.StatusOK || a.body != "answer" {
		t.Fatalf("first use: %d %s", a.status, a.body)
	}
	again := challengeOf(t, get(t, s.base+"/api/q", paid), http.StatusPaymentRequired)
	if !strings.Contains(again.Message, "used already") {
		t.Errorf("second use: %s", again.Message)
	}

	_, paid = buy(t, s.base+"/api/q")
	statuses := atOnce(t, 20, s.base+"/api/q", paid)
	if count(statuses, http.StatusOK) != 1 || count(statuses, http.StatusPaymentRequired) != 19 {
		t.Errorf("20 presentations at once of one payment: %v; want one 200", statuses)
	}
}

// prepaidAPI sells a balance of 20 sats at 1 sat a request.
const prepaidAPI = `	route /api/* {
		paywall 1 {
			mode prepaid
			balance 20
		}
		respond "answer"
	}`

// TestPrepaidConcurrent: a balance of 20 sats at 1 sat a request admits
// exactly 20 of 40 concurrent requests; the next gets a top-up invoice
// that, paid, keeps the same credential going.
func TestPrepaidConcurrent(t *testing.T) {
	s := startCaddy(t, "", prepaidAPI)
	c, paid := buy(t, s.base+"/api/q")
	if c.PriceSat != 20 {
		t.Fatalf("balance sold: %d sats, want 20", c.PriceSat)
	}
	statuses := atOnce(t, 40, s.base+"/api/q", paid)
	if ok := count(statuses, http.StatusOK); ok != 20 || count(statuses, http.StatusPaymentRequired) != 20 {
		t.Fatalf("40 concurrent requests on a balance of 20: %d admitted: %v", ok, statuses)
	}
	topUp := challengeOf(t, get(t, s.base+"/api/q", paid), http.StatusPaymentRequired)
	if topUp.PriceSat != 20 || !strings.Contains(topUp.Message, "top it up") {
		t.Fatalf("top-up: %+v", topUp)
	}
	paidTopUp := pay(t, topUp)
	for i, credential := range []string{paidTopUp, paid} {
		if a := get(t, s.base+"/api/q", credential); a.status != http.StatusOK || a.header.Get(balanceHeader) != strconv.Itoa(19-i) {
			t.Errorf("after the top-up, request %d: %d, balance %q", i, a.status, a.header.Get(balanceHeader))
		}
	}
}

// costUpstream reports what each request cost: X-Cost: 5 in the header,
// or (path /stream) in a trailer after server-sent events; /fail answers
// 500 with a cost.
func costUpstream(t *testing.T) string {
	t.Helper()
	u := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/stream":
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Trailer", "X-Cost")
			for i := range 3 {
				fmt.Fprintf(w, "data: token %d\n\n", i)
				w.(http.Flusher).Flush()
			}
			w.Header().Set("X-Cost", "5")
		case "/api/fail":
			w.Header().Set("X-Cost", "5")
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, "upstream failed")
		default:
			w.Header().Set("X-Cost", "5")
			fmt.Fprint(w, "answer")
		}
	}))
	t.Cleanup(u.Close)
	return strings.TrimPrefix(u.URL, "http://")
}

// TestReportedCost: a balance of 20 sats at a reported cost of 5 serves
// 4 requests; upstream 500s are free; the cost never reaches the client,
// in a header or in a streamed answer's trailer.
func TestReportedCost(t *testing.T) {
	s := startCaddy(t, "", fmt.Sprintf(`	route /api/* {
		paywall 1 {
			mode prepaid
			balance 20
			cost_header X-Cost
			max_cost 10
		}
		reverse_proxy %s {
			flush_interval -1
		}
	}`, costUpstream(t)))
	_, paid := buy(t, s.base+"/api/q")
	check := func(a answer, what string) {
		t.Helper()
		if a.header.Get("X-Cost") != "" || a.trailer.Get("X-Cost") != "" || strings.Contains(a.header.Get("Trailer"), "X-Cost") {
			t.Errorf("%s: the cost reached the client: header %v, trailer %v", what, a.header, a.trailer)
		}
	}
	for i, path := range []string{"/api/q", "/api/fail", "/api/stream", "/api/fail", "/api/q", "/api/q"} {
		a := get(t, s.base+path, paid)
		check(a, path)
		switch {
		case path == "/api/fail":
			if a.status != http.StatusInternalServerError {
				t.Fatalf("request %d (%s): %d %s", i, path, a.status, a.body)
			}
		case a.status != http.StatusOK:
			t.Fatalf("request %d (%s): %d %s", i, path, a.status, a.body)
		case path == "/api/stream" && (!strings.Contains(a.body, "data: token 2") || a.trailer.Get(balanceHeader) != "10"):
			t.Errorf("stream: %q, balance trailer %q, want 10", a.body, a.trailer.Get(balanceHeader))
		}
	}
	// 4 paid requests of 5 sats (the 500s were free): the balance is
	// spent, and the next request gets a top-up invoice.
	a := get(t, s.base+"/api/q", paid)
	if c := challengeOf(t, a, http.StatusPaymentRequired); c.PriceSat != 20 {
		t.Errorf("after 4 requests at 5 sats: top-up of %d sats", c.PriceSat)
	}
}

// TestPriceFromMap: `map` sets each path's price; a per_request payment
// for the dear path admits the cheap one, not the other way round; a
// prepaid balance pays each path's own price.
func TestPriceFromMap(t *testing.T) {
	s := startCaddy(t, "", `	map {path} {price} {
		/once/dear  8
		/bal/dear   8
		default     2
	}
	route /once/* {
		paywall {price} {
			mode per_request
			max_price 10
		}
		respond "once {http.paywall.price}"
	}
	route /bal/* {
		paywall {price} {
			mode prepaid
			max_price 10
			balance 20
		}
		respond "bal {http.paywall.price}"
	}`)
	cheap := challengeOf(t, get(t, s.base+"/once/cheap", ""), http.StatusPaymentRequired)
	dear, paidDear := buy(t, s.base+"/once/dear")
	if cheap.PriceSat != 2 || dear.PriceSat != 8 {
		t.Fatalf("prices %d and %d, want 2 and 8", cheap.PriceSat, dear.PriceSat)
	}
	paidCheap := pay(t, cheap)
	if a := get(t, s.base+"/once/dear", paidCheap); a.status != http.StatusPaymentRequired {
		t.Errorf("2 sats paid for an 8 sat request: %d %s", a.status, a.body)
	}
	if a := get(t, s.base+"/once/cheap", paidDear); a.status != http.StatusOK || a.body != "once 2" {
		t.Errorf("8 sats paid for a 2 sat request: %d %s", a.status, a.body)
	}
	if a := get(t, s.base+"/once/cheap", paidCheap); a.status != http.StatusOK {
		t.Errorf("the cheap payment, refused on the dear path, is still good on its own: %d %s", a.status, a.body)
	}

	_, balance := buy(t, s.base+"/bal/x")
	for _, step := range []struct{ path, left string }{{"/bal/dear", "12"}, {"/bal/x", "10"}, {"/bal/dear", "2"}, {"/bal/x", "0"}} {
		if a := get(t, s.base+step.path, balance); a.status != http.StatusOK || a.header.Get(balanceHeader) != step.left {
			t.Errorf("%s: %d, balance %q, want %s", step.path, a.status, a.header.Get(balanceHeader), step.left)
		}
	}
}

// TestRedisDown: with the ledger in Redis, per_request and prepaid work
// while Redis does; once it stops they get 503 with Retry-After, and
// passes are still served.
func TestRedisDown(t *testing.T) {
	if network == nil {
		t.Skip("needs the regtest network; not started under -short")
	}
	redis := redistest.Start(t, redistest.Options{})
	s := startCaddy(t, fmt.Sprintf("\t\tledger redis {\n\t\t\turl %s\n\t\t\ttimeout 500ms\n\t\t}", redis.URL), `	route /pass/* {
		paywall 5 {
			service pass
		}
		respond "pass"
	}
	route /bal/* {
		paywall 1 {
			mode prepaid
			balance 10
			service bal
		}
		respond "bal"
	}
	route /once/* {
		paywall 5 {
			mode per_request
			service once
		}
		respond "once"
	}`)
	_, pass := buy(t, s.base+"/pass/")
	_, balance := buy(t, s.base+"/bal/")
	_, once := buy(t, s.base+"/once/")
	if a := get(t, s.base+"/bal/", balance); a.status != http.StatusOK || a.header.Get(balanceHeader) != "9" {
		t.Fatalf("prepaid with Redis up: %d %q", a.status, a.header.Get(balanceHeader))
	}
	redis.Stop()
	for _, tt := range []struct{ path, credential string }{{"/bal/", balance}, {"/once/", once}} {
		a := get(t, s.base+tt.path, tt.credential)
		if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" || !strings.Contains(a.body, "request_id") {
			t.Errorf("%s with Redis down: %d %s, Retry-After %q", tt.path, a.status, a.body, a.header.Get("Retry-After"))
		}
	}
	if a := get(t, s.base+"/pass/", pass); a.status != http.StatusOK || a.body != "pass" {
		t.Errorf("a pass with Redis down: %d %s", a.status, a.body)
	}
}

// TestRestartMidBalance: a balance in the embedded ledger survives a
// restart of Caddy (a graceful stop writes every draw).
func TestRestartMidBalance(t *testing.T) {
	s := startCaddy(t, "", prepaidAPI)
	_, paid := buy(t, s.base+"/api/q")
	for range 5 {
		get(t, s.base+"/api/q", paid)
	}
	if err := caddyrun.Stop(); err != nil {
		t.Fatal(err)
	}
	s.load(t)
	client.CloseIdleConnections()
	if a := get(t, s.base+"/api/q", paid); a.status != http.StatusOK || a.header.Get(balanceHeader) != "14" {
		t.Errorf("after a restart with 15 sats left: %d, balance %q, want 14", a.status, a.header.Get(balanceHeader))
	}
}
