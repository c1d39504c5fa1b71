package lightning

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lightningcaddy/caddy-lightning/lightningpb"
	"github.com/lightningcaddy/caddy-lightning/lnd/lndtest"
)

// TestRateLimitPerIPv6Prefix: one client is an IPv4 address or an IPv6
// /64 (the prefix is configurable), as Caddy sees the client through the
// proxies it trusts.
func TestRateLimitPerIPv6Prefix(t *testing.T) {
	node := lndtest.Start(t)
	site := "\troute /paid/* {\n\t\tpaywall 100 {\n\t\t\tservice api\n\t\t\tinvoices_per_client 3 1m\n\t\t}\n\t\trespond \"x\"\n\t}"
	statuses := func(base string, clients ...string) (limited int) {
		for _, ip := range clients {
			resp, _ := get(t, base+"/paid/", http.Header{"X-Forwarded-For": {ip}})
			switch resp.StatusCode {
			case http.StatusTooManyRequests:
				limited++
			case http.StatusPaymentRequired:
			default:
				t.Fatalf("client %s: %d", ip, resp.StatusCode)
			}
		}
		return limited
	}
	base := startCaddy(t, lndOption(node), site)
	var one64 []string
	for i := range 12 {
		one64 = append(one64, fmt.Sprintf("2001:db8:1:2::%x", i+1))
	}
	if n := statuses(base, one64...); n != 9 {
		t.Errorf("12 requests from one /64 with invoices_per_client 3 1m: %d answered 429, want 9", n)
	}
	if n := statuses(base, "2001:db8:1:3::1", "10.0.0.1", "10.0.0.1", "10.0.0.1", "10.0.0.1", "10.0.0.2"); n != 1 {
		t.Errorf("another /64 and two IPv4 clients: %d answered 429, want 1 (the fourth of 10.0.0.1)", n)
	}

	base = startCaddy(t, strings.TrimSuffix(lndOption(node), "}")+"\tclient_ipv6_prefix 48\n\t}", site)
	if n := statuses(base, "2001:db8:1:2::1", "2001:db8:1:3::1", "2001:db8:1:4::1", "2001:db8:1:5::1"); n != 1 {
		t.Errorf("four /64s of one /48 with client_ipv6_prefix 48: %d answered 429, want 1", n)
	}
}

// TestClientLimitsEvictTheIdle: a flood of new clients beyond what is
// tracked does not reset the limit of a client that stays active.
func TestClientLimitsEvictTheIdle(t *testing.T) {
	limits := newClientLimits(&Rate{Events: 3, Window: caddy.Duration(time.Hour)})
	active := netip.MustParsePrefix("192.0.2.1/32")
	for range 3 {
		if _, ok := limits.allow(active); !ok {
			t.Fatal("limited within the rate")
		}
	}
	allowed := 0
	for i := range 3 * maxTrackedClients {
		other := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
		limits.allow(other)
		if i%1000 == 0 {
			if _, ok := limits.allow(active); ok {
				allowed++
			}
		}
	}
	if allowed != 0 {
		t.Errorf("the active client was let through %d times while %d others came", allowed, 3*maxTrackedClients)
	}
	if n := limits.clients.len(); n > maxTrackedClients {
		t.Errorf("%d clients tracked, want at most %d", n, maxTrackedClients)
	}
}

// TestGenerateInvoiceRateLimited: the API's generateinvoice has a
// per-client limit too, over REST and gRPC alike.
func TestGenerateInvoiceRateLimited(t *testing.T) {
	api, node := startAPI(t, "{\n\t\tinvoices_per_client 2 1m\n\t}")
	for i := range 2 {
		if resp := post(t, api+"generateinvoice", `{"amount": 5}`); resp.Status != http.StatusOK {
			t.Fatalf("call %d: %d %s", i+1, resp.Status, resp.Raw)
		}
	}
	post(t, api+"generateinvoice", `{"amount": 5}`).wantError(t, http.StatusTooManyRequests, int(codes.ResourceExhausted), "too many invoices")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := grpcClient(t, api).GenerateInvoice(ctx, &lightningpb.GenerateInvoiceRequest{Amount: 5})
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("gRPC over the limit: %v", err)
	}
	if n := node.Calls("AddInvoice"); n != 2 {
		t.Errorf("%d invoices made, want 2", n)
	}
}
