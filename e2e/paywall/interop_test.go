package paywall

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lightningcaddy/caddy-lightning/internal/albyinterop"
	"github.com/lightningcaddy/caddy-lightning/l402"
)

// interopResult is what interop/interop.mjs prints.
type interopResult struct {
	Challenge struct {
		Status         int    `json:"status"`
		Header         string `json:"header"`
		TokenMatches   bool   `json:"tokenMatches"`
		InvoiceMatches bool   `json:"invoiceMatches"`
	} `json:"challenge"`
	FetchWithL402 struct {
		Status        int    `json:"status"`
		Body          string `json:"body"`
		Paid          bool   `json:"paid"`
		AmountSat     int64  `json:"amountSat"`
		Preimage      string `json:"preimage"`
		Authorization string `json:"authorization"`
	} `json:"fetchWithL402"`
	Reuse struct {
		Status int    `json:"status"`
		Body   string `json:"body"`
	} `json:"reuse"`
	Fetch402 struct {
		Status int    `json:"status"`
		Body   string `json:"body"`
		Paid   bool   `json:"paid"`
	} `json:"fetch402"`
	Payments int `json:"payments"`
}

// TestInteropAlby pays the paywall with Alby's @getalby/lightning-tools
// (fetchWithL402 and fetch402, pinned in interop/package-lock.json) in
// Node, with a wallet that pays through bob's lnd REST API.
func TestInteropAlby(t *testing.T) {
	needNetwork(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	up := newUpstream(t)
	base := startCaddy(t, proxyRoute("/api/*", "100 {\n\t\t\tservice api\n\t\t}", up))
	start := time.Now()
	out := albyinterop.Run(ctx, t, "interop", "interop.mjs", network.Bob, "PAYWALL_URL="+base+"/api/x")
	t.Logf("node interop.mjs ran in %v", time.Since(start))
	var res interopResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("interop output: %v\n%s", err, out)
	}
	defer func() {
		if t.Failed() {
			t.Logf("interop.mjs printed: %s", out)
		}
	}()

	const content = "paid content: GET /api/x"
	if c := res.Challenge; c.Status != 402 || !c.TokenMatches || !c.InvoiceMatches {
		t.Errorf("the library's parseL402 on the joined header %q: status %d, token matches %v, invoice matches %v",
			c.Header, c.Status, c.TokenMatches, c.InvoiceMatches)
	}
	f := res.FetchWithL402
	if f.Status != 200 || f.Body != content || !f.Paid || f.AmountSat != 100 {
		t.Errorf("fetchWithL402: %d %q, paid %v, %d sat; want 200 %q, paid, 100 sat", f.Status, f.Body, f.Paid, f.AmountSat, content)
	}
	// The credential the library sent: scheme, token, and bob's preimage.
	scheme, rest, _ := strings.Cut(f.Authorization, " ")
	token, preimageHex, _ := strings.Cut(rest, ":")
	t.Logf("the library authorized with scheme %s", scheme)
	if scheme != "L402" && scheme != "LSAT" || preimageHex != f.Preimage {
		t.Errorf("the library's Authorization %.40q…, preimage %q", f.Authorization, f.Preimage)
	}
	tok, err := l402.DecodeToken(token)
	preimage, herr := hex.DecodeString(f.Preimage)
	if err != nil || herr != nil || sha256.Sum256(preimage) != tok.Identifier.PaymentHash {
		t.Errorf("the preimage bob's REST API returned does not pay the token's hash (%v, %v)", err, herr)
	}
	if res.Reuse.Status != 200 || res.Reuse.Body != content {
		t.Errorf("reused credential: %d %q", res.Reuse.Status, res.Reuse.Body)
	}
	if g := res.Fetch402; g.Status != 200 || g.Body != content || !g.Paid {
		t.Errorf("fetch402: %d %q, paid %v", g.Status, g.Body, g.Paid)
	}
	if res.Payments != 2 {
		t.Errorf("the wallet paid %d invoices, want 2 (fetchWithL402 and fetch402; the reuse pays nothing)", res.Payments)
	}
	reqs := up.received()
	if len(reqs) != 3 {
		t.Errorf("upstream served %d requests, want 3", len(reqs))
	}
	for _, r := range reqs {
		if hasL402(r.Header) {
			t.Errorf("the upstream saw the credential: %q", r.Header.Values("Authorization"))
		}
	}
}
