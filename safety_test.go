package lightning

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/lightningcaddy/caddy-lightning/lightningpb"
	"github.com/lightningcaddy/caddy-lightning/lnd/lndtest"
)

func postWithHeader(t *testing.T, url, body string, header http.Header) apiResponse {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return readResponse(t, resp)
}

func TestAPIKeyREST(t *testing.T) {
	t.Setenv("TEST_API_KEY", "s3cret-key")
	api, _ := startAPI(t, "{\n\t\tapi_key {env.TEST_API_KEY}\n\t}")
	body := `{"amount": 1}`
	for name, h := range map[string]http.Header{
		"missing":   {},
		"wrong":     {"X-Api-Key": {"s3cret-kez"}},
		"prefix":    {"X-Api-Key": {"s3cret"}},
		"empty":     {"X-Api-Key": {""}},
		"wrong hdr": {"Authorization": {"s3cret-key"}},
	} {
		t.Run(name, func(t *testing.T) {
			resp := postWithHeader(t, api+"generateinvoice", body, h)
			resp.wantError(t, http.StatusUnauthorized, int(codes.Unauthenticated), "API key")
			if strings.Contains(resp.Raw, "s3cret") {
				t.Error("the answer leaks the key")
			}
		})
	}
	for _, h := range []http.Header{
		{"X-Api-Key": {"s3cret-key"}},
		{"Grpc-Metadata-X-Api-Key": {"s3cret-key"}},
	} {
		if resp := postWithHeader(t, api+"generateinvoice", body, h); resp.Status != http.StatusOK {
			t.Errorf("with %v: %d %s", h, resp.Status, resp.Raw)
		}
	}
}

func TestAPIKeyGRPC(t *testing.T) {
	api, _ := startAPI(t, "{\n\t\tapi_key s3cret-key\n\t}")
	client := grpcClient(t, api)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := &lightningpb.GenerateInvoiceRequest{Amount: 5}
	if _, err := client.GenerateInvoice(ctx, req); status.Code(err) != codes.Unauthenticated {
		t.Errorf("without key: %v, want Unauthenticated", err)
	}
	bad := metadata.AppendToOutgoingContext(ctx, "x-api-key", "nope")
	if _, err := client.GenerateInvoice(bad, req); status.Code(err) != codes.Unauthenticated {
		t.Errorf("wrong key: %v, want Unauthenticated", err)
	}
	good := metadata.AppendToOutgoingContext(ctx, "x-api-key", "s3cret-key")
	if _, err := client.GenerateInvoice(good, req); err != nil {
		t.Errorf("with key: %v", err)
	}
}

func TestBudgetUnderConcurrency(t *testing.T) {
	// Each payment of 100 sats reserves 100 + a 10 sat fee limit; 1000
	// sats fit 9 of them, whatever the interleaving.
	api, node := startAPI(t, "{\n\t\tmax_payment 1000\n\t\tmax_fee 10\n\t\tbudget 1000 1h\n\t}")
	node.SetPaymentLatency(100 * time.Millisecond)
	var wg sync.WaitGroup
	results := make(chan apiResponse, 20)
	for range 20 {
		invoice, _ := node.NewPayableInvoice(100)
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- post(t, api+"payinvoice", map[string]any{"invoice": invoice})
		}()
	}
	wg.Wait()
	close(results)
	paid, refused := 0, 0
	for r := range results {
		switch {
		case r.Status == http.StatusOK:
			paid++
		case r.Status == http.StatusTooManyRequests && strings.Contains(r.Raw, "budget exhausted"):
			refused++
		default:
			t.Errorf("unexpected answer %d %s", r.Status, r.Raw)
		}
	}
	if paid != 9 || refused != 11 {
		t.Errorf("paid %d, refused %d; want 9 and 11", paid, refused)
	}
	// Fees were 1 sat each: booking the real cost (909 sats) leaves room
	// for 80 + 10 more, which the reservations (990) would not.
	invoice, _ := node.NewPayableInvoice(80)
	if r := post(t, api+"payinvoice", map[string]any{"invoice": invoice}); r.Status != http.StatusOK {
		t.Errorf("payment after settling reservations: %d %s", r.Status, r.Raw)
	}
}

func TestBudgetReleasesFailedAndRepeatedPayments(t *testing.T) {
	api, node := startAPI(t, "{\n\t\tmax_payment 1000\n\t\tmax_fee 10\n\t\tbudget 220\n\t}")
	invoice, _ := node.NewPayableInvoice(100)
	for range 3 { // the repeats move no money and cost no budget
		if r := post(t, api+"payinvoice", map[string]any{"invoice": invoice}); r.Status != http.StatusOK {
			t.Fatalf("payinvoice: %d %s", r.Status, r.Raw)
		}
	}
	node.SetPaymentFailure(lnrpc.PaymentFailureReason_FAILURE_REASON_NO_ROUTE)
	for range 3 {
		failing, _ := node.NewPayableInvoice(100)
		post(t, api+"payinvoice", map[string]any{"invoice": failing}).
			wantError(t, http.StatusBadRequest, int(codes.FailedPrecondition), "no route")
	}
	node.SetPaymentFailure(lnrpc.PaymentFailureReason_FAILURE_REASON_NONE)
	second, _ := node.NewPayableInvoice(100)
	if r := post(t, api+"payinvoice", map[string]any{"invoice": second}); r.Status != http.StatusOK {
		t.Fatalf("second payment within the budget: %d %s", r.Status, r.Raw)
	}
	third, _ := node.NewPayableInvoice(100)
	post(t, api+"payinvoice", map[string]any{"invoice": third}).
		wantError(t, http.StatusTooManyRequests, int(codes.ResourceExhausted), "budget exhausted")
}

// Secrets never reach the logs, even at DEBUG: not the macaroon, the API
// key, tokens, or preimages.
func TestLogsHoldNoSecrets(t *testing.T) {
	node := lndtest.Start(t)
	logPath := filepath.Join(t.TempDir(), "caddy.log")
	base := startCaddy(t, lndOption(node)+fmt.Sprintf(`
	log {
		output file %s
		level DEBUG
	}`, logPath), `	route /v1/lightning/* {
		lightning {
			max_payment 1000
			api_key k3y-s3cret-value
		}
	}
	route /paid/* {
		paywall 100
		respond "content"
	}`)
	key := http.Header{"X-Api-Key": {"k3y-s3cret-value"}, "Content-Type": {"application/json"}}

	c := getChallenge(t, base+"/paid/", nil, http.StatusPaymentRequired)
	preimage := settleAndProve(t, node, c)
	get(t, base+"/paid/", auth(l402Auth(c.Body.Token, preimage)))
	get(t, base+"/paid/", auth("L402 "+c.Body.Token+":"+strings.Repeat("ab", 32)))
	invoice, paidPreimage := node.NewPayableInvoice(100)
	postWithHeader(t, base+"/v1/lightning/payinvoice", `{"invoice": "`+invoice+`"}`, key)
	postWithHeader(t, base+"/v1/lightning/keysend", `{"pubkey": "`+node.PeerPubkey()+`", "amount": 5}`, key)
	postWithHeader(t, base+"/v1/lightning/generateinvoice", `{"amount": 5}`, http.Header{"X-Api-Key": {"wrong"}})
	node.Stop()
	postWithHeader(t, base+"/v1/lightning/generateinvoice", `{"amount": 5}`, key)
	get(t, base+"/paid/", nil)

	logs, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(logs) == 0 {
		t.Fatal("no logs written")
	}
	for name, secret := range map[string]string{
		"macaroon":         node.MacaroonHex(),
		"API key":          "k3y-s3cret-value",
		"token":            c.Body.Token,
		"paywall preimage": hex.EncodeToString(preimage[:]),
		"paid preimage":    hex.EncodeToString(paidPreimage[:]),
	} {
		if strings.Contains(string(logs), secret) {
			t.Errorf("the logs hold the %s", name)
		}
	}
	if !strings.Contains(string(logs), c.Body.PaymentHash) {
		t.Error("the logs do not name the payment hash (they should, for operators)")
	}
}
