package lightning

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"gopkg.in/macaroon.v2"

	"github.com/lightningcaddy/caddy-lightning/internal/redistest"
	"github.com/lightningcaddy/caddy-lightning/l402"
	"github.com/lightningcaddy/caddy-lightning/ledger"
	"github.com/lightningcaddy/caddy-lightning/lnd/lndtest"
)

// lndOptionWith is the lightning global option for a fake node, with more
// options of the app (such as a ledger block).
func lndOptionWith(node *lndtest.Node, extra string) string {
	opt := lndOption(node)
	return strings.TrimSuffix(opt, "}") + extra + "\n\t}"
}

// runningLedger is the ledger of the running config's lightning app.
func runningLedger(t *testing.T) *sharedLedger {
	t.Helper()
	app, err := caddy.ActiveContext().App("lightning")
	if err != nil {
		t.Fatal(err)
	}
	s := app.(*App).usedLedger()
	if s == nil {
		t.Fatal("no paywall uses the ledger")
	}
	return s
}

// balanceOf reads the balance a prepaid purchase opened, from the running
// ledger.
func balanceOf(t *testing.T, c challenge) int64 {
	t.Helper()
	l := runningLedger(t)
	b, err := l.memory.Balance(context.Background(), accountPrefix+c.Body.PaymentHash)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// buy gets a challenge at url, settles it on the fake node and returns it
// with the Authorization header of its credential.
func buy(t *testing.T, node *lndtest.Node, url string, header http.Header) (challenge, http.Header) {
	t.Helper()
	c := getChallenge(t, url, header, http.StatusPaymentRequired)
	return c, auth(l402Auth(c.Body.Token, settleAndProve(t, node, c)))
}

// concurrently sends n GETs with header at once and returns their
// statuses and Paywall-Balance headers.
func concurrently(t *testing.T, n int, url string, header http.Header) (statuses []int, balances []string) {
	t.Helper()
	statuses, balances = make([]int, n), make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			req.Header = header.Clone()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			resp.Body.Close()
			statuses[i], balances[i] = resp.StatusCode, resp.Header.Get(balanceHeader)
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return statuses, balances
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

// caveatsOf returns a token's caveats.
func caveatsOf(t *testing.T, token string) []string {
	t.Helper()
	tok, err := l402.DecodeToken(token)
	if err != nil {
		t.Fatal(err)
	}
	return tok.Caveats
}

// TestPerRequest: one payment admits exactly one request, however often
// and however concurrently its credential is presented; the token alone,
// once settled, is the same payment.
func TestPerRequest(t *testing.T) {
	base, node := startPaywall(t, "10 {\n\t\tmode per_request\n\t\tservice api\n\t}")
	c, h := buy(t, node, base+"/paid/", nil)
	if !slices.Contains(caveatsOf(t, c.Body.Token), "api_mode=per_request") || c.Body.PriceSat != 10 {
		t.Fatalf("token caveats %q, price %d", caveatsOf(t, c.Body.Token), c.Body.PriceSat)
	}
	if resp, body := get(t, base+"/paid/", h); resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, "paid 10 api") {
		t.Fatalf("first use: %d %s", resp.StatusCode, body)
	}
	again := getChallenge(t, base+"/paid/", h, http.StatusPaymentRequired)
	if !strings.Contains(again.Body.Message, "used already") || again.Body.PaymentHash == c.Body.PaymentHash || again.Body.PriceSat != 10 {
		t.Errorf("second use: %+v", again.Body)
	}
	getChallenge(t, base+"/paid/", auth("L402 "+c.Body.Token), http.StatusPaymentRequired)

	_, h2 := buy(t, node, base+"/paid/", nil)
	statuses, _ := concurrently(t, 30, base+"/paid/", h2)
	if ok, refused := count(statuses, http.StatusOK), count(statuses, http.StatusPaymentRequired); ok != 1 || refused != 29 {
		t.Errorf("30 concurrent presentations of one payment: %d admitted, %d refused (%v); want 1 and 29", ok, refused, statuses)
	}
}

// TestPrepaid: a payment buys a balance of 20 sats; at 1 sat a request, 40
// concurrent requests with the credential admit exactly 20, each told a
// distinct remaining balance; the 21st gets a 402 selling a top-up of the
// same balance, and once it is paid both credentials draw from it.
func TestPrepaid(t *testing.T) {
	base, node := startPaywall(t, "1 {\n\t\tmode prepaid\n\t\tbalance 20\n\t\tservice api\n\t}")
	c, h := buy(t, node, base+"/paid/", nil)
	account := "api_account=" + c.Body.PaymentHash
	if cav := caveatsOf(t, c.Body.Token); c.Body.PriceSat != 20 || !slices.Contains(cav, "api_mode=prepaid") || !slices.Contains(cav, account) {
		t.Fatalf("prepaid challenge: price %d, caveats %q", c.Body.PriceSat, cav)
	}
	statuses, balances := concurrently(t, 40, base+"/paid/", h)
	if ok := count(statuses, http.StatusOK); ok != 20 || count(statuses, http.StatusPaymentRequired) != 20 {
		t.Fatalf("40 concurrent requests on a balance of 20: %d admitted (%v)", ok, statuses)
	}
	seen := map[string]bool{}
	for i, b := range balances {
		if statuses[i] == http.StatusOK {
			seen[b] = true
		}
	}
	for left := range 20 {
		if !seen[strconv.Itoa(left)] {
			t.Errorf("no admitted request was told a balance of %d: %v", left, balances)
		}
	}
	if got := balanceOf(t, c); got != 0 {
		t.Errorf("balance after 20 draws: %d", got)
	}

	topUp := getChallenge(t, base+"/paid/", h, http.StatusPaymentRequired)
	if cav := caveatsOf(t, topUp.Body.Token); topUp.Body.PriceSat != 20 || !slices.Contains(cav, account) || !strings.Contains(topUp.Body.Message, "top it up") ||
		topUp.Header.Get(balanceHeader) != "0" {
		t.Fatalf("top-up challenge: %+v, caveats %q", topUp.Body, cav)
	}
	h2 := auth(l402Auth(topUp.Body.Token, settleAndProve(t, node, topUp)))
	for i, hdr := range []http.Header{h2, h, h2} {
		resp, body := get(t, base+"/paid/", hdr)
		if want := strconv.Itoa(19 - i); resp.StatusCode != http.StatusOK || resp.Header.Get(balanceHeader) != want {
			t.Errorf("after the top-up, request %d: %d %s, balance %q, want %s", i, resp.StatusCode, body, resp.Header.Get(balanceHeader), want)
		}
	}
	// A browser on another origin may read the balance.
	resp, _ := get(t, base+"/paid/", http.Header{"Authorization": h2["Authorization"], "Origin": {"https://app.example"}})
	if !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), balanceHeader) {
		t.Errorf("Access-Control-Expose-Headers %q", resp.Header.Get("Access-Control-Expose-Headers"))
	}
}

// TestPrepaidCaveats: credentials altered by their holder never reach
// another balance or more sats than were paid, and tokens sold one way do
// not open a paywall that sells another.
func TestPrepaidCaveats(t *testing.T) {
	node := lndtest.Start(t)
	keys, _ := l402.NewKeyring(badRootKey)
	base := startCaddy(t, lndOption(node), fmt.Sprintf(`	route /paid/* {
		paywall 1 {
			mode prepaid
			service atk
			root_key %x
		}
		respond "paid"
	}
	route /pass/* {
		paywall 1 {
			service pass
			root_key %x
		}
		respond "pass"
	}`, badRootKey, badRootKey))
	mint := func(label string, caveats ...l402.Caveat) (http.Header, [32]byte) {
		preimage := sha256.Sum256([]byte(label))
		hash := sha256.Sum256(preimage[:])
		token, _, err := keys.Mint(hash, caveats...)
		if err != nil {
			t.Fatal(err)
		}
		return auth(l402Auth(token, preimage)), hash
	}
	until := l402.ValidUntilCaveat("atk", time.Now().Add(time.Hour))
	svc := l402.ServicesCaveat(l402.Service{Name: "atk"})
	mode := l402.Caveat{Key: "atk_mode", Value: "prepaid"}
	account := func(hash [32]byte) l402.Caveat {
		return l402.Caveat{Key: "atk_account", Value: hex.EncodeToString(hash[:])}
	}

	victimPreimage := sha256.Sum256([]byte("victim"))
	victimHash := sha256.Sum256(victimPreimage[:])
	victim, _ := mint("victim", svc, until, l402.PriceCaveat("atk", 50), mode, account(victimHash))
	if resp, _ := get(t, base+"/paid/", victim); resp.StatusCode != http.StatusOK || resp.Header.Get(balanceHeader) != "49" {
		t.Fatalf("victim: %d, balance %q", resp.StatusCode, resp.Header.Get(balanceHeader))
	}

	// What a holder can do without the root key: append caveats.
	attacker, _ := mint("attacker", svc, until, l402.PriceCaveat("atk", 5), mode, account(sha256.Sum256([]byte("attacker"))))
	token, preimage, _ := strings.Cut(strings.TrimPrefix(attacker.Get("Authorization"), "L402 "), ":")
	appended := func(caveats ...string) http.Header {
		return auth("L402 " + appendCaveats(t, token, caveats...) + ":" + preimage)
	}
	for name, h := range map[string]http.Header{
		"a second account":  appended("atk_account=" + hex.EncodeToString(victimHash[:])),
		"another mode":      appended("atk_mode=pass"),
		"a malformed price": appended("atk_price=lots"),
	} {
		if resp, body := get(t, base+"/paid/", h); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s appended: %d %s, want 401", name, resp.StatusCode, body)
		}
	}
	// Tokens minted without what a prepaid token carries.
	for name, cavs := range map[string][]l402.Caveat{
		"no account":         {svc, until, l402.PriceCaveat("atk", 5), mode},
		"no mode (a pass)":   {svc, until, l402.PriceCaveat("atk", 5), account(victimHash)},
		"no price":           {svc, until, mode, account(victimHash)},
		"an account not hex": {svc, until, l402.PriceCaveat("atk", 5), mode, {Key: "atk_account", Value: strings.Repeat("z", 64)}},
	} {
		h, _ := mint("other", cavs...)
		if resp, body := get(t, base+"/paid/", h); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: %d %s, want 401", name, resp.StatusCode, body)
		}
	}
	// A larger price appended credits what was paid: the smallest price.
	if resp, _ := get(t, base+"/paid/", appended("atk_price=5000")); resp.StatusCode != http.StatusOK || resp.Header.Get(balanceHeader) != "4" {
		t.Errorf("appended price: %d, balance %q; want 200 and 4", resp.StatusCode, resp.Header.Get(balanceHeader))
	}
	if resp, _ := get(t, base+"/paid/", victim); resp.Header.Get(balanceHeader) != "48" {
		t.Errorf("the victim's balance moved: %q, want 48", resp.Header.Get(balanceHeader))
	}
	// A per_request token never opens a pass of its service.
	sold, _ := mint("sold", l402.ServicesCaveat(l402.Service{Name: "pass"}), l402.PriceCaveat("pass", 1),
		l402.Caveat{Key: "pass_mode", Value: "per_request"})
	if resp, body := get(t, base+"/pass/", sold); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "not as a pass") {
		t.Errorf("per_request token on a pass: %d %s", resp.StatusCode, body)
	}
}

// costUpstream answers as the query says: h=<cost> sets X-Cost (once per
// value), t=<cost> sends it as a trailer after a streamed body, status=<n>
// sets the status, abort=1 drops the answer mid-body, hang=1 streams one
// event and waits for the request to end.
func costUpstream(t *testing.T) string {
	t.Helper()
	u := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		for _, v := range q["h"] {
			w.Header().Add("X-Cost", v)
		}
		if q.Has("t") {
			w.Header().Set("Trailer", "X-Cost, X-Other")
			w.Header().Set("Content-Type", "text/event-stream")
		}
		status, _ := strconv.Atoi(q.Get("status"))
		w.WriteHeader(cmpOr(status, http.StatusOK))
		fmt.Fprint(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		switch {
		case q.Has("abort"):
			panic(http.ErrAbortHandler)
		case q.Has("hang"):
			<-r.Context().Done()
			return
		}
		fmt.Fprint(w, "data: two\n\n")
		if q.Has("t") {
			w.Header().Set("X-Cost", q.Get("t"))
			w.Header().Set("X-Other", "kept")
		}
	}))
	t.Cleanup(u.Close)
	return strings.TrimPrefix(u.URL, "http://")
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// meteredSite is a prepaid paywall whose upstream reports the cost, and
// one that charges failures too.
func meteredSite(upstream string) string {
	return fmt.Sprintf(`	route /paid/* {
		paywall 1 {
			mode prepaid
			balance 1000
			service metered
			cost_header X-Cost
			max_cost 50
		}
		reverse_proxy %s {
			flush_interval -1
		}
	}
	route /strict/* {
		paywall 1 {
			mode prepaid
			balance 1000
			service strict
			cost_header x-cost
			max_cost 50
			charge_failures
		}
		reverse_proxy %s {
			flush_interval -1
		}
	}`, upstream, upstream)
}

// meteredGet sends a GET, reads the whole answer and checks that the cost
// never reaches the client.
func meteredGet(t *testing.T, url string, h http.Header) (*http.Response, string, error) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header = h.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body strings.Builder
	buf := make([]byte, 4096)
	var readErr error
	for {
		n, err := resp.Body.Read(buf)
		body.Write(buf[:n])
		if err != nil {
			if err.Error() != "EOF" {
				readErr = err
			}
			break
		}
	}
	if v := resp.Header.Values("X-Cost"); len(v) > 0 {
		t.Errorf("%s: the client saw X-Cost %q", url, v)
	}
	if v := resp.Trailer.Values("X-Cost"); len(v) > 0 {
		t.Errorf("%s: the client saw the trailer X-Cost %q", url, v)
	}
	if tr := resp.Header.Get("Trailer"); strings.Contains(strings.ToLower(tr), "x-cost") {
		t.Errorf("%s: the client saw X-Cost announced: Trailer %q", url, tr)
	}
	return resp, body.String(), readErr
}

// TestReportedCost: the price is held at admission and the reported cost
// charged at the end, from a header or a streamed answer's trailer;
// reports that are too large are capped, malformed ones charged max_cost,
// missing ones the price; 5xx answers and aborted requests are free unless
// charge_failures; the client sees its balance but never the cost.
func TestReportedCost(t *testing.T) {
	node := lndtest.Start(t)
	base := startCaddy(t, lndOption(node), meteredSite(costUpstream(t)))
	c, h := buy(t, node, base+"/paid/", nil)
	if c.Body.PriceSat != 1000 {
		t.Fatalf("balance sold: %d", c.Body.PriceSat)
	}
	balance := int64(1000)
	for _, tt := range []struct {
		query   string
		charged int64
		header  int64 // the balance header: -1 = before the trailer (balance after the hold)
	}{
		{"h=5", 5, 0},
		{"t=7", 7, -1},
		{"h=5&status=500", 0, 0},
		{"h=-5", 50, 0},
		{"h=abc", 50, 0},
		{"h=1.5", 50, 0},
		{"h=%2B3", 50, 0},
		{"h=", 50, 0},
		{"h=3&h=3", 50, 0},
		{"h=3&t=3", 50, -1},
		{"h=99999999999999999999999", 50, 0},
		{"h=60", 50, 0},
		{"h=%203%09", 3, 0},
		{"", 1, 0},
		{"h=0", 0, 0},
		{"status=404&h=2", 2, 0},
	} {
		resp, body, err := meteredGet(t, base+"/paid/x?"+tt.query, h)
		if err != nil || resp.StatusCode >= 500 != strings.Contains(tt.query, "status=5") || !strings.Contains(body, "data: two") {
			t.Fatalf("%s: %d %q %v", tt.query, resp.StatusCode, body, err)
		}
		wantHeader := balance - tt.charged
		if tt.header == -1 {
			wantHeader = balance - 1
		}
		balance -= tt.charged
		if got := resp.Header.Get(balanceHeader); got != strconv.FormatInt(wantHeader, 10) {
			t.Errorf("%s: balance header %q, want %d", tt.query, got, wantHeader)
		}
		if tt.header == -1 {
			if got := resp.Trailer.Get(balanceHeader); got != strconv.FormatInt(balance, 10) {
				t.Errorf("%s: balance trailer %q, want %d", tt.query, got, balance)
			}
			if resp.Trailer.Get("X-Other") != "kept" {
				t.Errorf("%s: the upstream's other trailer is gone: %v", tt.query, resp.Trailer)
			}
		}
		if got := balanceOf(t, c); got != balance {
			t.Fatalf("%s: balance %d, want %d", tt.query, got, balance)
		}
	}

	// Aborted by the upstream mid-answer, or by the client: free.
	if _, _, err := meteredGet(t, base+"/paid/x?h=5&abort=1", h); err == nil {
		t.Error("the upstream's abort did not reach the client")
	}
	waitFor(t, "the aborted request's hold to be released", func() bool { return balanceOf(t, c) == balance })
	clientAbort(t, base+"/paid/x?h=5&hang=1", h)
	waitFor(t, "the client's abort to release its hold", func() bool { return balanceOf(t, c) == balance })

	// charge_failures: a 500 costs what it reports, an abort the price.
	c2, h2 := buy(t, node, base+"/strict/", nil)
	meteredGet(t, base+"/strict/x?h=5&status=500", h2)
	clientAbort(t, base+"/strict/x?hang=1", h2)
	waitFor(t, "charge_failures to charge 5 + 1", func() bool { return balanceOf(t, c2) == 994 })
}

// clientAbort reads the first event of a streamed answer and hangs up.
func clientAbort(t *testing.T, url string, h http.Header) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header = h.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if _, err := resp.Body.Read(buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
}

// TestReportedCostDebt: a reported cost above the balance leaves a debt;
// the next request gets a 402 whose invoice pays the debt and the price.
func TestReportedCostDebt(t *testing.T) {
	node := lndtest.Start(t)
	base := startCaddy(t, lndOption(node), fmt.Sprintf(`	route /paid/* {
		paywall 1 {
			mode prepaid
			balance 10
			cost_header X-Cost
			max_cost 40
		}
		reverse_proxy %s
	}`, costUpstream(t)))
	c, h := buy(t, node, base+"/paid/", nil)
	if resp, _, _ := meteredGet(t, base+"/paid/?h=35", h); resp.StatusCode != http.StatusOK || resp.Header.Get(balanceHeader) != "-25" {
		t.Fatalf("overrun: %d, balance %q", resp.StatusCode, resp.Header.Get(balanceHeader))
	}
	topUp := getChallenge(t, base+"/paid/", h, http.StatusPaymentRequired)
	if topUp.Body.PriceSat != 26 {
		t.Errorf("top-up after a debt of 25 at price 1: %d sats, want 26", topUp.Body.PriceSat)
	}
	h2 := auth(l402Auth(topUp.Body.Token, settleAndProve(t, node, topUp)))
	if resp, _, _ := meteredGet(t, base+"/paid/?h=1", h2); resp.StatusCode != http.StatusOK || resp.Header.Get(balanceHeader) != "0" {
		t.Errorf("after the top-up: %d, balance %q", resp.StatusCode, resp.Header.Get(balanceHeader))
	}
	_ = c
}

// TestDynamicPrice: the price comes from `map`; a credential admits
// requests priced at most what it paid (per_request) and a balance pays
// each request's own price (prepaid); a price that is not a whole number
// of sats within max_price refuses the request.
func TestDynamicPrice(t *testing.T) {
	node := lndtest.Start(t)
	logPath := filepath.Join(t.TempDir(), "caddy.log")
	base := startCaddy(t, lndOption(node)+fmt.Sprintf("\n\tlog {\n\t\toutput file %s\n\t}", logPath), `	map {path} {price} {
		/once/cheap 1
		/once/dear 5
		/bal/cheap 1
		/bal/dear 5
		/once/huge 11
		/once/text lots
		/once/negative -1
		default 2
	}
	route /once/* {
		paywall {price} {
			mode per_request
			max_price 10
		}
		respond "price {http.paywall.price}"
	}
	route /bal/* {
		paywall {price} {
			mode prepaid
			max_price 10
			balance 10
		}
		respond "price {http.paywall.price}"
	}`)
	cheap := getChallenge(t, base+"/once/cheap", nil, http.StatusPaymentRequired)
	dear, hDear := buy(t, node, base+"/once/dear", nil)
	if cheap.Body.PriceSat != 1 || dear.Body.PriceSat != 5 {
		t.Fatalf("prices %d and %d, want 1 and 5", cheap.Body.PriceSat, dear.Body.PriceSat)
	}
	if resp, body := get(t, base+"/once/cheap", hDear); resp.StatusCode != http.StatusOK || body != "price 1" {
		t.Errorf("5 sats paid, 1 asked: %d %s", resp.StatusCode, body)
	}
	hCheap := auth(l402Auth(cheap.Body.Token, settleAndProve(t, node, cheap)))
	under := getChallenge(t, base+"/once/dear", hCheap, http.StatusPaymentRequired)
	if !strings.Contains(under.Body.Message, "costs 5 sats and the credential paid 1") || under.Body.PriceSat != 5 {
		t.Errorf("1 sat paid, 5 asked: %+v", under.Body)
	}
	if resp, body := get(t, base+"/once/other", hCheap); resp.StatusCode != http.StatusPaymentRequired {
		t.Errorf("1 sat paid, 2 asked: %d %s", resp.StatusCode, body)
	}
	if resp, body := get(t, base+"/once/cheap", hCheap); resp.StatusCode != http.StatusOK || body != "price 1" {
		t.Errorf("the underpaid credential was spent: %d %s", resp.StatusCode, body)
	}
	for _, path := range []string{"/once/huge", "/once/text", "/once/negative"} {
		if resp, body := get(t, base+path, hDear); resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("%s: %d %s, want 500", path, resp.StatusCode, body)
		}
	}
	logs, _ := os.ReadFile(logPath)
	if !strings.Contains(string(logs), `price \"lots\" (from {price})`) || !strings.Contains(string(logs), "above max_price 10") {
		t.Errorf("the log does not say why the prices were refused:\n%s", logs)
	}

	// Prepaid: each request draws its own price.
	_, h := buy(t, node, base+"/bal/cheap", nil)
	for _, step := range []struct {
		path    string
		balance string
	}{{"/bal/dear", "5"}, {"/bal/cheap", "4"}, {"/bal/other", "2"}, {"/bal/cheap", "1"}} {
		if resp, body := get(t, base+step.path, h); resp.StatusCode != http.StatusOK || resp.Header.Get(balanceHeader) != step.balance {
			t.Errorf("%s: %d %s, balance %q, want %s", step.path, resp.StatusCode, body, resp.Header.Get(balanceHeader), step.balance)
		}
	}
	if resp, _ := get(t, base+"/bal/dear", h); resp.StatusCode != http.StatusPaymentRequired {
		t.Errorf("5 sats asked of a balance of 1: %d", resp.StatusCode)
	}
}

// TestLedgerUnavailable: with Redis unreachable, per_request and prepaid
// requests get 503 with Retry-After and a log line; passes keep working.
func TestLedgerUnavailable(t *testing.T) {
	node := lndtest.Start(t)
	logPath := filepath.Join(t.TempDir(), "caddy.log")
	dead := fmt.Sprintf("redis://127.0.0.1:%d", freePort(t))
	base := startCaddy(t, lndOptionWith(node, "\n\t\tledger redis {\n\t\t\turl "+dead+"\n\t\t\ttimeout 200ms\n\t\t}")+
		fmt.Sprintf("\n\tlog {\n\t\toutput file %s\n\t}", logPath), `	route /pass/* {
		paywall 10 {
			service pass
		}
		respond "pass"
	}
	route /once/* {
		paywall 10 {
			mode per_request
			service once
		}
		respond "once"
	}
	route /bal/* {
		paywall 1 {
			mode prepaid
			service bal
		}
		respond "bal"
	}
	metrics /metrics`)
	_, metrics := get(t, base+"/metrics", nil)
	unavailable := metricValue(t, metrics, "caddy_lightning_ledger_errors_total", `backend="redis"`, `kind="unavailable"`)
	_, pass := buy(t, node, base+"/pass/", nil)
	if resp, body := get(t, base+"/pass/", pass); resp.StatusCode != http.StatusOK || body != "pass" {
		t.Fatalf("pass with Redis down: %d %s", resp.StatusCode, body)
	}
	for _, path := range []string{"/once/", "/bal/"} {
		_, h := buy(t, node, base+path, nil)
		resp, body := get(t, base+path, h)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || strings.Contains(body, "127.0.0.1") {
			t.Errorf("%s with Redis down: %d %s (Retry-After %q)", path, resp.StatusCode, body, resp.Header.Get("Retry-After"))
		}
	}
	_, metrics = get(t, base+"/metrics", nil)
	if got := metricValue(t, metrics, "caddy_lightning_ledger_errors_total", `backend="redis"`, `kind="unavailable"`) - unavailable; got != 2 {
		t.Errorf("ledger errors counted: %v, want 2", got)
	}
	logs, _ := os.ReadFile(logPath)
	if !strings.Contains(string(logs), "ledger unavailable") || !strings.Contains(string(logs), `"backend":"redis"`) {
		t.Errorf("no log line says the ledger is unavailable:\n%s", logs)
	}
}

// TestLedgerAcrossReloadAndRestart: the embedded ledger keeps a balance
// across a reload (both configs share it), writes it at stop, and a
// restart finds it.
func TestLedgerAcrossReloadAndRestart(t *testing.T) {
	node := lndtest.Start(t)
	storage, port := t.TempDir(), freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	site := func(body string) string {
		return fmt.Sprintf("\troute /paid/* {\n\t\tpaywall 1 {\n\t\t\tmode prepaid\n\t\t\tbalance 20\n\t\t\tservice bal\n\t\t}\n\t\trespond %q\n\t}", body)
	}
	options := lndOptionWith(node, "\n\t\tledger {\n\t\t\tflush_interval 1h\n\t\t}")
	loadCaddyfile(t, testCaddyfile("off", storage, options, port, site("before")))
	t.Cleanup(func() { _ = caddy.Stop() })
	c, h := buy(t, node, base+"/paid/", nil)
	for range 3 {
		get(t, base+"/paid/", h)
	}
	first := runningLedger(t)
	loadCaddyfile(t, testCaddyfile("off", storage, options, port, site("after")))
	http.DefaultClient.CloseIdleConnections()
	if runningLedger(t) != first {
		t.Error("the reload built another ledger")
	}
	if resp, body := get(t, base+"/paid/", h); body != "after" || resp.Header.Get(balanceHeader) != "16" {
		t.Fatalf("after the reload: %s, balance %q, want 16", body, resp.Header.Get(balanceHeader))
	}
	// With flush_interval 1h, only Stop writes the draws.
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(storage, "lightning", "ledger", "accounts", accountPrefix+c.Body.PaymentHash+".json"))
	if err != nil || !strings.Contains(string(raw), `"spent":4`) {
		t.Fatalf("stored account after stop: %s %v", raw, err)
	}
	loadCaddyfile(t, testCaddyfile("off", storage, options, port, site("restarted")))
	http.DefaultClient.CloseIdleConnections()
	if resp, _ := get(t, base+"/paid/", h); resp.Header.Get(balanceHeader) != "15" {
		t.Errorf("after a restart: balance %q, want 15", resp.Header.Get(balanceHeader))
	}
}

// TestMeterCharge pins what each cost report charges.
func TestMeterCharge(t *testing.T) {
	p := &Paywall{maxCost: 50}
	for _, tt := range []struct {
		values  []string
		status  int
		failed  bool
		charge  bool
		cost    int64
		outcome string
	}{
		{nil, 200, false, false, 3, "missing"},
		{[]string{"7"}, 200, false, false, 7, "reported"},
		{[]string{" 7\t"}, 200, false, false, 7, "reported"},
		{[]string{"0"}, 200, false, false, 0, "reported"},
		{[]string{"50"}, 200, false, false, 50, "reported"},
		{[]string{"51"}, 200, false, false, 50, "capped"},
		{[]string{"9223372036854775808"}, 200, false, false, 50, "capped"},
		{[]string{"-1"}, 200, false, false, 50, "invalid"},
		{[]string{"1e3"}, 200, false, false, 50, "invalid"},
		{[]string{"0x10"}, 200, false, false, 50, "invalid"},
		{[]string{"7, 8"}, 200, false, false, 50, "invalid"},
		{[]string{"7", "7"}, 200, false, false, 50, "invalid"},
		{[]string{""}, 200, false, false, 50, "invalid"},
		{[]string{"7"}, 502, false, false, 0, "free"},
		{[]string{"7"}, 200, true, false, 0, "free"},
		{[]string{"7"}, 503, false, true, 7, "reported"},
		{nil, 200, true, true, 3, "missing"},
	} {
		p.ChargeFailures = tt.charge
		m := &meter{p: p, hold: ledger.Hold{Sats: 3}, status: tt.status, reported: tt.values}
		if cost, outcome := m.charge(tt.failed); cost != tt.cost || outcome != tt.outcome {
			t.Errorf("%q status %d failed %v charge_failures %v: %d %s, want %d %s", tt.values, tt.status, tt.failed, tt.charge, cost, outcome, tt.cost, tt.outcome)
		}
	}
}

// appendCaveats appends first-party caveats to a token, as its holder can.
func appendCaveats(t *testing.T, token string, caveats ...string) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(token)
	if err != nil {
		t.Fatal(err)
	}
	var m macaroon.Macaroon
	if err := m.UnmarshalBinary(raw); err != nil {
		t.Fatal(err)
	}
	for _, c := range caveats {
		if err := m.AddFirstPartyCaveat([]byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	out, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(out)
}

// validateConfig adapts a Caddyfile with the fake node's lightning app
// (and extra app options) and runs `caddy validate` on it.
func validateConfig(t *testing.T, node *lndtest.Node, appOptions, site string) error {
	t.Helper()
	cfgJSON, _, err := adaptCaddyfile(testCaddyfile("off", t.TempDir(), lndOptionWith(node, appOptions), freePort(t), site))
	if err != nil {
		return err
	}
	var cfg caddy.Config
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		t.Fatal(err)
	}
	return caddy.Validate(&cfg)
}

// TestSellingConfigErrors: options that cannot work together are refused
// when the config is adapted or validated, with what to change.
func TestSellingConfigErrors(t *testing.T) {
	node := lndtest.Start(t)
	paywall := func(block string) string {
		return "\troute /paid/* {\n\t\tpaywall {\n" + block + "\n\t\t}\n\t\trespond \"x\"\n\t}"
	}
	for _, tt := range []struct{ name, app, site, want string }{
		{"bad mode", "", paywall("price 1\nmode monthly"), `mode: "monthly" is not pass, per_request or prepaid`},
		{"bad price", "", paywall("price 1.5"), `price: "1.5" is not a positive number of satoshis or placeholders`},
		{"zero price", "", "\tpaywall 0", `price: "0" is not a positive number`},
		{"placeholder without max_price", "", paywall("price {vars.price}"), "set max_price"},
		{"max_price with a fixed price", "", paywall("price 5\nmax_price 10"), "max_price bounds a price from placeholders"},
		{"balance of a pass", "", paywall("price 5\nbalance 10"), "balance and cost_header go with mode prepaid"},
		{"cost_header per request", "", paywall("price 5\nmode per_request\ncost_header X-Cost"), "go with mode prepaid"},
		{"max_cost without cost_header", "", paywall("price 5\nmode prepaid\nmax_cost 10"), "max_cost and charge_failures go with cost_header"},
		{"charge_failures without cost_header", "", paywall("price 5\nmode prepaid\ncharge_failures"), "go with cost_header"},
		{"cost_header not a name", "", paywall("price 5\nmode prepaid\ncost_header \"X Cost\""), "is not a header name"},
		{"cost_header reserved", "", paywall("price 5\nmode prepaid\ncost_header content-length"), "Content-Length is a header the answer needs"},
		{"negative balance", "", paywall("price 5\nmode prepaid\nbalance -1"), "not a positive amount"},
		{"unknown ledger", "\n\t\tledger sqlite", paywall("price 1"), `ledger: "sqlite" is not embedded or redis`},
		{"redis option on embedded", "\n\t\tledger {\n\t\t\turl redis://x\n\t\t}", paywall("price 1"), "unrecognized option 'url' of the embedded ledger"},
		{"embedded option on redis", "\n\t\tledger redis {\n\t\t\turl redis://x\n\t\t\tflush_interval 1s\n\t\t}", paywall("price 1"), "unrecognized option 'flush_interval' of the redis ledger"},
		{"redis without url", "\n\t\tledger redis", paywall("price 1"), "url is required"},
		{"redis url from nothing", "\n\t\tledger redis {\n\t\t\turl {env.LIGHTNING_TEST_UNSET}\n\t\t}", paywall("price 1"), "url is required"},
		{"redis password from nothing", "\n\t\tledger redis {\n\t\t\turl redis://127.0.0.1:1\n\t\t\tpassword {env.LIGHTNING_TEST_UNSET}\n\t\t}", paywall("price 1"), "password is set but resolves to nothing"},
		{"redis bad url", "\n\t\tledger redis {\n\t\t\turl http://127.0.0.1:1\n\t\t}", paywall("price 1"), "invalid Redis URL"},
		{"ca_cert without TLS", "\n\t\tledger redis {\n\t\t\turl redis://127.0.0.1:1\n\t\t\tca_cert /etc/ca.pem\n\t\t}", paywall("price 1"), "ca_cert needs a rediss:// url"},
		{"ca_cert unreadable", "\n\t\tledger redis {\n\t\t\turl rediss://127.0.0.1:1\n\t\t\tca_cert /nonexistent/ca.pem\n\t\t}", paywall("price 1"), "not PEM or hex, and not a readable file"},
		{"ledger twice", "\n\t\tledger\n\t\tledger redis", paywall("price 1"), "ledger may be given only once"},
		{"bad max_unsaved", "\n\t\tledger {\n\t\t\tmax_unsaved none\n\t\t}", paywall("price 1"), `max_unsaved: "none" is not a positive number`},
		{"bad prefix", "\n\t\tledger {\n\t\t\tprefix {a}\n\t\t}", paywall("price 1"), "prefix may not hold"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := validateConfig(t, node, tt.app, tt.site)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	// A valid config of every new option.
	if err := validateConfig(t, node, "\n\t\tledger redis {\n\t\t\turl redis://127.0.0.1:1/0\n\t\t\tpassword s3cret\n\t\t\ttimeout 2s\n\t\t\tprefix shop\n\t\t}",
		paywall("price {vars.price}\nmax_price 100\nmode prepaid\nbalance 1000\ncost_header X-Cost\nmax_cost 500\ncharge_failures")); err != nil {
		t.Errorf("a valid config: %v", err)
	}
}

// TestServiceSoldTwoWays: paywalls may not sell one service both as a
// pass and per request (a pass could be spent again as a request).
func TestServiceSoldTwoWays(t *testing.T) {
	node := lndtest.Start(t)
	cfgJSON, _, err := adaptCaddyfile(testCaddyfile("off", t.TempDir(), lndOption(node), freePort(t), `	route /a/* {
		paywall 1 {
			service api
		}
		respond "a"
	}
	route /b/* {
		paywall 1 {
			service api
			mode per_request
		}
		respond "b"
	}`))
	if err != nil {
		t.Fatal(err)
	}
	err = caddy.Load(cfgJSON, true)
	t.Cleanup(func() { _ = caddy.Stop() })
	if err == nil || !strings.Contains(err.Error(), "sell service api both as pass and as per_request") {
		t.Fatalf("load: %v", err)
	}
}

// TestSellingMetricsAndStatus: the new paths are counted, and the admin
// status says how each paywall sells and where the ledger is.
func TestSellingMetricsAndStatus(t *testing.T) {
	node := lndtest.Start(t)
	base, admin := startCaddyWithAdmin(t, t.TempDir(), lndOption(node), meteredSite(costUpstream(t))+`
	route /once/* {
		paywall 3 {
			mode per_request
			service once
		}
		respond "once"
	}
	metrics /metrics`)
	scrape := func() string {
		_, body := get(t, base+"/metrics", nil)
		return body
	}
	before := scrape()
	_, once := buy(t, node, base+"/once/", nil)
	get(t, base+"/once/", once)
	get(t, base+"/once/", once) // used
	_, h := buy(t, node, base+"/paid/", nil)
	meteredGet(t, base+"/paid/x?h=7", h)
	meteredGet(t, base+"/paid/x?h=nope", h)
	meteredGet(t, base+"/paid/x?status=502", h)
	after := scrape()
	for _, check := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"caddy_lightning_paywall_admitted_total", []string{`service="once"`, `mode="per_request"`}, 1},
		{"caddy_lightning_paywall_admitted_total", []string{`service="metered"`, `mode="prepaid"`}, 3},
		{"caddy_lightning_paywall_verifications_total", []string{`service="once"`, `result="used"`}, 1},
		{"caddy_lightning_paywall_credited_sats_total", []string{`service="metered"`}, 1000},
		{"caddy_lightning_paywall_balance_draws_total", []string{`service="metered"`}, 2},
		{"caddy_lightning_paywall_drawn_sats_total", []string{`service="metered"`}, 57},
		{"caddy_lightning_paywall_reported_cost_sats_total", []string{`service="metered"`}, 57},
		{"caddy_lightning_paywall_reported_costs_total", []string{`service="metered"`, `outcome="reported"`}, 1},
		{"caddy_lightning_paywall_reported_costs_total", []string{`service="metered"`, `outcome="invalid"`}, 1},
		{"caddy_lightning_paywall_reported_costs_total", []string{`service="metered"`, `outcome="free"`}, 1},
	} {
		if got := metricValue(t, after, check.name, check.labels...) - metricValue(t, before, check.name, check.labels...); got != check.want {
			t.Errorf("%s%v grew by %v, want %v", check.name, check.labels, got, check.want)
		}
	}

	var st adminStatus
	if code := adminCall(t, http.MethodGet, admin+"/lightning/status", "", &st); code != http.StatusOK {
		t.Fatalf("status: %d", code)
	}
	want := map[string]paywallStatus{
		"metered": {Service: "metered", Mode: "prepaid", PriceSat: 1, BalanceSat: 1000, CostHeader: "X-Cost", ValidFor: "720h0m0s", Offers: []string{"l402"}},
		"strict":  {Service: "strict", Mode: "prepaid", PriceSat: 1, BalanceSat: 1000, CostHeader: "x-cost", ValidFor: "720h0m0s", Offers: []string{"l402"}},
		"once":    {Service: "once", Mode: "per_request", PriceSat: 3, ValidFor: "1h0m0s", Offers: []string{"l402", "charge", "x402"}},
	}
	for _, p := range st.Paywalls {
		if !reflect.DeepEqual(p, want[p.Service]) {
			t.Errorf("status of %s: %+v, want %+v", p.Service, p, want[p.Service])
		}
	}
	if len(st.Paywalls) != 3 || st.Ledger == nil || st.Ledger.Backend != "embedded" || !st.Ledger.Ready {
		t.Errorf("status: %d paywalls, ledger %+v", len(st.Paywalls), st.Ledger)
	}
}

// TestPrepaidRedis: the same balance on Redis, reached over TLS (trusting
// the server's CA from ca_cert) with a password: 40 concurrent requests on
// a balance of 20 admit exactly 20; a per_request payment admits one.
func TestPrepaidRedis(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{TLS: true, Password: "s3cret"})
	t.Setenv("LIGHTNING_TEST_REDIS_PASSWORD", "s3cret")
	node := lndtest.Start(t)
	base := startCaddy(t, lndOptionWith(node, fmt.Sprintf(`
		ledger redis {
			url %s
			password {env.LIGHTNING_TEST_REDIS_PASSWORD}
			ca_cert %s
			prefix test-prepaid
		}`, srv.URL, srv.CertFile)), `	route /bal/* {
		paywall 1 {
			mode prepaid
			balance 20
		}
		respond "bal"
	}
	route /once/* {
		paywall 5 {
			mode per_request
		}
		respond "once"
	}`)
	_, h := buy(t, node, base+"/bal/", nil)
	statuses, _ := concurrently(t, 40, base+"/bal/", h)
	if ok := count(statuses, http.StatusOK); ok != 20 || count(statuses, http.StatusPaymentRequired) != 20 {
		t.Errorf("40 concurrent requests on a balance of 20 in Redis: %d admitted (%v)", ok, statuses)
	}
	_, once := buy(t, node, base+"/once/", nil)
	statuses, _ = concurrently(t, 10, base+"/once/", once)
	if ok := count(statuses, http.StatusOK); ok != 1 {
		t.Errorf("10 concurrent presentations of one payment in Redis: %d admitted (%v)", ok, statuses)
	}
}
