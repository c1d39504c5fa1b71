package lightning

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/lightningnetwork/lnd/lnrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lightningcaddy/caddy-lightning/lnd"
	"github.com/lightningcaddy/caddy-lightning/lnd/lndtest"
)

// startAPI serves the Lightning API, configured by handlerBlock, in front
// of a fake node.
func startAPI(t *testing.T, handlerBlock string, opts ...lndtest.Option) (string, *lndtest.Node) {
	t.Helper()
	node := lndtest.Start(t, opts...)
	base := startCaddy(t, lndOption(node), "\tlightning "+handlerBlock)
	return base + "/v1/lightning/", node
}

func paymentHash(t testing.TB, invoice string) [32]byte {
	t.Helper()
	inv, err := lnd.DecodeInvoice(invoice, &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatalf("decode %q: %v", invoice, err)
	}
	return inv.PaymentHash
}

func TestGenerateAndCheckInvoice(t *testing.T) {
	api, node := startAPI(t, "")

	resp := post(t, api+"generateinvoice", `{"amount": "2500", "memo": "coffee", "unknown_field": 1}`)
	if resp.Status != http.StatusOK {
		t.Fatalf("generateinvoice: %d %s", resp.Status, resp.Raw)
	}
	invoice, _ := resp.Body["invoice"].(string)
	inv, err := lnd.DecodeInvoice(invoice, &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatalf("generated invoice does not decode: %v", err)
	}
	if inv.AmountSat != 2500 || inv.Payee != node.Pubkey() {
		t.Errorf("invoice amount %d payee %s, want 2500 from %s", inv.AmountSat, inv.Payee, node.Pubkey())
	}

	// paid:false must be emitted, as grpc-gateway does.
	resp = post(t, api+"checkinvoice", map[string]any{"invoice": invoice})
	if resp.Status != http.StatusOK || resp.Raw != `{"paid":false}` {
		t.Fatalf("checkinvoice before payment: %d %s", resp.Status, resp.Raw)
	}
	if err := node.Settle(inv.PaymentHash); err != nil {
		t.Fatal(err)
	}
	resp = post(t, api+"checkinvoice", map[string]any{"invoice": strings.ToUpper(invoice)})
	if resp.Status != http.StatusOK || resp.Body["paid"] != true {
		t.Fatalf("checkinvoice after payment: %d %s", resp.Status, resp.Raw)
	}
	if got := node.Calls("LookupInvoice"); got != 2 {
		t.Errorf("LookupInvoice calls = %d, want 2 (one per check)", got)
	}

	// A number works as well as a string for int64.
	resp = post(t, api+"generateinvoice", `{"amount": 1}`)
	if resp.Status != http.StatusOK {
		t.Fatalf("numeric amount: %d %s", resp.Status, resp.Raw)
	}
}

func TestRequestErrors(t *testing.T) {
	api, node := startAPI(t, "")
	mainnetNode := lndtest.Start(t, lndtest.WithNetwork("mainnet"))
	mainnetInvoice, _ := mainnetNode.NewPayableInvoice(10)
	foreignInvoice, _ := node.NewPayableInvoice(10)

	tests := []struct {
		name       string
		method     string
		body       string
		httpStatus int
		code       codes.Code
		message    string
	}{
		{"broken JSON", "generateinvoice", `{"amount":`, 400, codes.InvalidArgument, "invalid JSON"},
		{"wrong type", "generateinvoice", `{"amount": "ten"}`, 400, codes.InvalidArgument, "invalid JSON"},
		{"empty body", "generateinvoice", ``, 400, codes.InvalidArgument, "amount must be"},
		{"zero amount", "generateinvoice", `{"amount": 0}`, 400, codes.InvalidArgument, "amount must be"},
		{"negative amount", "generateinvoice", `{"amount": -5}`, 400, codes.InvalidArgument, "amount must be"},
		{"amount above supply", "generateinvoice", `{"amount": 2100000000000001}`, 400, codes.InvalidArgument, "amount must be"},
		{"amount overflows int64", "generateinvoice", `{"amount": "99999999999999999999"}`, 400, codes.InvalidArgument, "invalid JSON"},
		{"memo too long", "generateinvoice", `{"amount": 1, "memo": "` + strings.Repeat("m", 640) + `"}`, 400, codes.InvalidArgument, "memo is 640 bytes, the limit is 639"},
		{"body too large", "generateinvoice", `{"memo": "` + strings.Repeat("m", 70000) + `"}`, 413, codes.InvalidArgument, "larger than"},
		{"missing invoice", "checkinvoice", `{}`, 400, codes.InvalidArgument, "invoice is required"},
		{"garbage invoice", "checkinvoice", `{"invoice": "lnbcrt1garbage"}`, 400, codes.InvalidArgument, "invalid invoice"},
		{"wrong network", "checkinvoice", `{"invoice": "` + mainnetInvoice + `"}`, 400, codes.InvalidArgument, "invoice is for mainnet, the node is on regtest"},
		{"invoice of another node", "checkinvoice", `{"invoice": "` + foreignInvoice + `"}`, 404, codes.NotFound, "no invoice"},
		{"payments disabled", "payinvoice", `{"invoice": "` + foreignInvoice + `"}`, 403, codes.PermissionDenied, "max_payment"},
		{"keysend disabled", "keysend", `{"pubkey": "` + node.PeerPubkey() + `", "amount": 5}`, 403, codes.PermissionDenied, "max_payment"},
		{"unknown method", "sendcoins", `{}`, 404, codes.NotFound, "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			post(t, api+tt.method, tt.body).wantError(t, tt.httpStatus, int(tt.code), tt.message)
		})
	}

	resp, err := http.Get(api + "generateinvoice")
	if err != nil {
		t.Fatal(err)
	}
	got := readResponse(t, resp)
	got.wantError(t, http.StatusMethodNotAllowed, int(codes.Unimplemented), "use POST")
	if allow := got.Header.Get("Allow"); allow != "POST" {
		t.Errorf("Allow = %q, want POST", allow)
	}
}

func TestPayInvoice(t *testing.T) {
	api, node := startAPI(t, "{\n\t\tmax_payment 1000\n\t\tmax_fee 5\n\t}")
	invoice, preimage := node.NewPayableInvoice(700)

	resp := post(t, api+"payinvoice", map[string]any{"invoice": invoice})
	if resp.Status != http.StatusOK {
		t.Fatalf("payinvoice: %d %s", resp.Status, resp.Raw)
	}
	got, _ := resp.Body["preimage"].(string)
	if got != hex.EncodeToString(preimage[:]) {
		t.Fatalf("preimage = %q, want %x", got, preimage)
	}
	raw, _ := hex.DecodeString(got)
	if sha256.Sum256(raw) != paymentHash(t, invoice) {
		t.Fatal("preimage does not hash to the payment hash")
	}

	// Paying again returns the same preimage from the existing payment.
	again := post(t, api+"payinvoice", map[string]any{"invoice": invoice})
	if again.Status != http.StatusOK || again.Body["preimage"] != got {
		t.Fatalf("second payinvoice: %d %s", again.Status, again.Raw)
	}
	if n := node.Calls("TrackPaymentV2"); n != 1 {
		t.Errorf("TrackPaymentV2 calls = %d, want 1 (the second pay found the first)", n)
	}

	tooBig, _ := node.NewPayableInvoice(1001)
	post(t, api+"payinvoice", map[string]any{"invoice": tooBig}).
		wantError(t, http.StatusForbidden, int(codes.PermissionDenied), "exceeds this server's max_payment of 1000")
	zero, _ := node.NewPayableInvoice(0)
	post(t, api+"payinvoice", map[string]any{"invoice": zero}).
		wantError(t, http.StatusBadRequest, int(codes.InvalidArgument), "zero-amount")
	expired, _ := node.NewPayableInvoice(10, lndtest.InvoiceTimestamp(time.Now().Add(-2*time.Hour)), lndtest.InvoiceExpiry(time.Hour))
	post(t, api+"payinvoice", map[string]any{"invoice": expired}).
		wantError(t, http.StatusBadRequest, int(codes.FailedPrecondition), "expired")
	noRoute, _ := node.NewPayableInvoice(10, lndtest.InvoiceFailure(lnrpc.PaymentFailureReason_FAILURE_REASON_NO_ROUTE))
	post(t, api+"payinvoice", map[string]any{"invoice": noRoute}).
		wantError(t, http.StatusBadRequest, int(codes.FailedPrecondition), "no route")
}

func TestKeysend(t *testing.T) {
	api, node := startAPI(t, "{\n\t\tmax_payment 1000\n\t}")
	resp := post(t, api+"keysend", map[string]any{"pubkey": node.PeerPubkey(), "amount": "21"})
	if resp.Status != http.StatusOK {
		t.Fatalf("keysend: %d %s", resp.Status, resp.Raw)
	}
	if p, _ := resp.Body["preimage"].(string); len(p) != 64 {
		t.Fatalf("preimage = %q, want 64 hex characters", p)
	}
	post(t, api+"keysend", map[string]any{"pubkey": "02abcd", "amount": 21}).
		wantError(t, http.StatusBadRequest, int(codes.InvalidArgument), "33-byte public key")
	post(t, api+"keysend", map[string]any{"pubkey": node.PeerPubkey(), "amount": 0}).
		wantError(t, http.StatusBadRequest, int(codes.InvalidArgument), "positive")
}

func TestNodeErrors(t *testing.T) {
	api, node := startAPI(t, "")

	node.SetErrorOnce("AddInvoice", status.Error(codes.Internal, "database is locked"))
	post(t, api+"generateinvoice", `{"amount": 1}`).
		wantError(t, http.StatusInternalServerError, int(codes.Internal), "add invoice: database is locked")

	node.Stop()
	resp := post(t, api+"generateinvoice", `{"amount": 1}`)
	resp.wantError(t, http.StatusServiceUnavailable, int(codes.Unavailable), "lnd node unavailable")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if strings.Contains(resp.Raw, node.MacaroonHex()) {
		t.Error("error leaks the macaroon")
	}
}

func TestMissingAppSaysHowToConfigure(t *testing.T) {
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte("{\n\tadmin off\n}\nhttp://127.0.0.1:1 {\n\tlightning\n}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = caddy.Load(cfg, true)
	if err == nil {
		_ = caddy.Stop()
		t.Fatal("config without the lightning app loaded")
	}
	if !strings.Contains(err.Error(), "add a global option block") {
		t.Errorf("error %q does not say how to configure the app", err)
	}
}
