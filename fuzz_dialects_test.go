package lightning

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/lightningcaddy/caddy-lightning/lnd/lndtest"
	mpp "github.com/lightningcaddy/caddy-lightning/payment"
	"github.com/lightningcaddy/caddy-lightning/x402"
)

// FuzzPaywallDialects sends arbitrary Authorization and PAYMENT-SIGNATURE
// values to a per_request paywall that offers L402, the Payment charge and
// x402, through a real Caddy in front of a fake node. Only payments the
// test settled may be admitted, each once whatever the dialect; every
// other answer is 400, 401, 402 or 429 with a body, never a 500 or a
// dropped connection.
func FuzzPaywallDialects(f *testing.F) {
	node := lndtest.Start(f)
	base := fuzzCaddy(f, lndOption(node), `	route /paid/* {
		paywall 100 {
			mode per_request
			service api
			invoices_per_client off
			invoices_total 4 1000h
		}
		respond "ADMITTED {http.paywall.payment_hash}" 200
	}
	respond "outside" 404`)

	// Two paid offers: the seeds answer them in each dialect.
	paid := map[string]bool{}
	var seeds [][2]string
	for range 2 {
		o := getOffer(f, base+"/paid/x")
		preimage := settleAndProve(f, node, o.challenge)
		paid[o.Body.PaymentHash] = true
		charge := chargeAuth(f, o.charge, preimage).Get("Authorization")
		sig := x402Header(f, o.x402).Get(x402.HeaderPaymentSignature)
		seeds = append(seeds, [2]string{charge, ""}, [2]string{"", sig}, [2]string{charge, sig},
			[2]string{strings.Replace(charge, "Payment ", "payment  ", 1), ""},
			[2]string{charge + ", " + charge, ""}, [2]string{"", sig + "=="})
	}
	seeds = append(seeds, [2]string{"Payment ", ""}, [2]string{"Payment e30", "e30="}, [2]string{"", "W10="}, [2]string{"Basic x, Payment !", ""})
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	var mu sync.Mutex
	admitted := map[string]bool{}
	f.Fuzz(func(t *testing.T, authorization, signature string) {
		req, err := http.NewRequest(http.MethodGet, base+"/paid/x", nil)
		if err != nil {
			t.Fatal(err)
		}
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		if signature != "" {
			req.Header.Set(x402.HeaderPaymentSignature, signature)
		}
		resp, err := fuzzClient.Do(req)
		if err != nil {
			if strings.Contains(err.Error(), "invalid header field value") {
				t.Skip("not a valid header value: no server would see it")
			}
			t.Fatalf("%q %q: no answer: %v", authorization, signature, err)
		}
		raw, err := readAll(resp)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusOK {
			hash, ok := strings.CutPrefix(string(raw), "ADMITTED ")
			mu.Lock()
			again := admitted[hash]
			admitted[hash] = true
			mu.Unlock()
			if !ok || !paid[hash] || again {
				t.Fatalf("%q %q admitted %q (paid: %v, admitted before: %v)", authorization, signature, raw, paid[hash], again)
			}
			return
		}
		switch resp.StatusCode {
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusPaymentRequired, http.StatusTooManyRequests:
		default:
			t.Fatalf("%q %q: status %d: %s", authorization, signature, resp.StatusCode, raw)
		}
		if !json.Valid(raw) || bytes.Contains(raw, []byte("ADMITTED")) {
			t.Fatalf("%q %q: %d %q is not a JSON answer", authorization, signature, resp.StatusCode, raw)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" && ct != mpp.ProblemContentType {
			t.Fatalf("Content-Type %q", ct)
		}
	})
}
