package lightning

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/lightningnetwork/lnd/lnrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lightningcaddy/caddy-lightning/l402"
	"github.com/lightningcaddy/caddy-lightning/lnd/lndtest"
)

// freezeClock stops the paywall's clock (set before Caddy starts, restored
// after it stops) and returns the offset that moves it.
func freezeClock(t *testing.T) *atomic.Int64 {
	t.Helper()
	base, old := time.Now(), now
	var offset atomic.Int64
	now = func() time.Time { return base.Add(time.Duration(offset.Load())) }
	t.Cleanup(func() { now = old })
	return &offset
}

// TestUnpaidTokenLookupsBounded: a token presented alone, unpaid, costs the
// node one lookup however often it comes; the next is allowed only after
// an interval that doubles; a paid one is learned from the invoice stream
// without any.
func TestUnpaidTokenLookupsBounded(t *testing.T) {
	clock := freezeClock(t)
	base, node := startPaywall(t, "100 {\n\t\tservice api\n\t\tinvoices_per_client off\n\t\tinvoices_total off\n\t\tlookups_per_client off\n\t}")
	c := getChallenge(t, base+"/paid/", nil, http.StatusPaymentRequired)
	tokenOnly := auth("L402 " + c.Body.Token)
	lookups := func() int { return node.Calls("LookupInvoice") }

	for range 200 {
		getChallenge(t, base+"/paid/", tokenOnly, http.StatusUnauthorized)
	}
	if n := lookups(); n != 1 {
		t.Errorf("200 requests with one unpaid token: %d lookups, want 1", n)
	}
	clock.Add(int64(time.Second))
	getChallenge(t, base+"/paid/", tokenOnly, http.StatusUnauthorized)
	getChallenge(t, base+"/paid/", tokenOnly, http.StatusUnauthorized)
	if n := lookups(); n != 2 {
		t.Errorf("a second later: %d lookups, want 2", n)
	}
	clock.Add(int64(time.Second)) // the interval is now 2 s
	getChallenge(t, base+"/paid/", tokenOnly, http.StatusUnauthorized)
	if n := lookups(); n != 2 {
		t.Errorf("one more second later: %d lookups, want still 2", n)
	}

	settleAndProve(t, node, c) // which looks the invoice up itself
	before := lookups()
	for i := 0; ; i++ { // until the stream has told the paywall
		if resp, _ := get(t, base+"/paid/", tokenOnly); resp.StatusCode == http.StatusOK {
			break
		}
		if i == 1000 {
			t.Fatal("the settlement never reached the paywall")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := lookups() - before; n != 0 {
		t.Errorf("the settlement from the stream cost %d more lookups", n)
	}
}

// TestLookupsPerClient: beyond lookups_per_client, a client's tokens
// presented alone get 429 without a lookup.
func TestLookupsPerClient(t *testing.T) {
	base, node := startPaywall(t, "100 {\n\t\tservice api\n\t\tinvoices_per_client off\n\t\tlookups_per_client 3 1m\n\t}")
	for i := range 4 {
		c := getChallenge(t, base+"/paid/", nil, http.StatusPaymentRequired)
		want := http.StatusUnauthorized
		if i == 3 {
			want = http.StatusTooManyRequests
		}
		if resp, body := get(t, base+"/paid/", auth("L402 "+c.Body.Token)); resp.StatusCode != want {
			t.Errorf("token %d alone: %d %s, want %d", i+1, resp.StatusCode, body, want)
		}
	}
	if n := node.Calls("LookupInvoice"); n != 3 {
		t.Errorf("%d lookups, want 3", n)
	}
}

// TestWaitsCapped: long polls beyond the cap for one payment hash are
// answered at once, not held (after the one lookup the token may cost).
func TestWaitsCapped(t *testing.T) {
	base, node := startPaywall(t, "100 {\n\t\tservice api\n\t}")
	c, binding := pageChallenge(t, base+"/paid/", nil)
	p := runningPaywall(t)
	tok, _ := l402.DecodeToken(c.Body.Token)
	client := netip.MustParsePrefix("127.0.0.1/32")
	for range maxWaitsPerHash {
		if !p.lookups.enterWait(client, tok.Identifier.PaymentHash) {
			t.Fatal("a wait under the cap was refused")
		}
	}
	for range 2 {
		resp, body, err := waitRequest(base+"/paid/", "L402 "+c.Body.Token, binding)
		if err != nil || resp.StatusCode != http.StatusOK || body != `{"paid":false}` {
			t.Errorf("a wait over the cap: %v %v %s", err, resp, body)
		}
	}
	if n := node.Calls("LookupInvoice"); n != 1 {
		t.Errorf("two waits over the cap asked the node %d times, want once (then it remembers)", n)
	}
	for range maxWaitsPerHash {
		p.lookups.leaveWait(client, tok.Identifier.PaymentHash)
	}
}

// TestCoalescedLookupSurvivesAHangUp: requests that share one lookup on the
// node are not failed by the first of them hanging up.
func TestCoalescedLookupSurvivesAHangUp(t *testing.T) {
	node := lndtest.Start(t)
	rootKey := l402.NewRootKey()
	// An invoice settled before Caddy starts, while the invoice stream
	// cannot begin (it first lists the latest invoices, which would report
	// the settlement): only a lookup finds it.
	node.SetError("ListInvoices", status.Error(codes.Unavailable, "lndtest: invoice list unavailable"))
	added, err := lnrpc.NewLightningClient(node.Dial(t)).AddInvoice(context.Background(), &lnrpc.Invoice{Value: 100})
	if err != nil {
		t.Fatal(err)
	}
	var hash [32]byte
	copy(hash[:], added.RHash)
	if err := node.Settle(hash); err != nil {
		t.Fatal(err)
	}
	keys, _ := l402.NewKeyring(rootKey)
	token, _, err := keys.Mint(hash, l402.ServicesCaveat(l402.Service{Name: "api"}), l402.PriceCaveat("api", 100))
	if err != nil {
		t.Fatal(err)
	}
	base := startCaddy(t, lndOption(node), fmt.Sprintf("\troute /paid/* {\n\t\tpaywall 100 {\n\t\t\tservice api\n\t\t\troot_key %x\n\t\t}\n\t\trespond \"paid\"\n\t}", rootKey))
	node.SetDelay("LookupInvoice", time.Second)

	first, hangUp := context.WithCancel(context.Background())
	firstDone := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(first, http.MethodGet, base+"/paid/", nil)
		req.Header.Set("Authorization", "L402 "+token)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		firstDone <- err
	}()
	for node.Calls("LookupInvoice") == 0 { // the first request's lookup is under way
		time.Sleep(time.Millisecond)
	}
	secondDone := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, base+"/paid/", nil)
		req.Header.Set("Authorization", "L402 "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			secondDone <- 0
			return
		}
		resp.Body.Close()
		secondDone <- resp.StatusCode
	}()
	time.Sleep(100 * time.Millisecond) // let the second request join the lookup
	hangUp()
	<-firstDone
	if got := <-secondDone; got != http.StatusOK {
		t.Errorf("the second request got %d after the first hung up, want 200", got)
	}
	if n := node.Calls("LookupInvoice"); n != 1 {
		t.Errorf("%d lookups, want 1 shared by both requests", n)
	}
}

// runningPaywall is the (only) paywall of the running config.
func runningPaywall(t *testing.T) *Paywall {
	t.Helper()
	app, err := caddy.ActiveContext().App("lightning")
	if err != nil {
		t.Fatal(err)
	}
	a := app.(*App)
	a.paywalls.mu.Lock()
	defer a.paywalls.mu.Unlock()
	if len(a.paywalls.list) != 1 {
		t.Fatalf("%d paywalls", len(a.paywalls.list))
	}
	return a.paywalls.list[0]
}
