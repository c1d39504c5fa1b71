package lnd_test

import (
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningnetwork/lnd/zpay32"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lightningcaddy/caddy-lightning/lnd"
	"github.com/lightningcaddy/caddy-lightning/lnd/lndtest"
)

// fuzzNetworks are the chains lnd names, as DecodeInvoice reports them.
var fuzzNetworks = map[string]*chaincfg.Params{
	"mainnet":  &chaincfg.MainNetParams,
	"testnet":  &chaincfg.TestNet3Params,
	"testnet4": &chaincfg.TestNet4Params,
	"signet":   &chaincfg.SigNetParams,
	"regtest":  &chaincfg.RegressionNetParams,
	"simnet":   &chaincfg.SimNetParams,
}

// FuzzDecodeInvoice decodes arbitrary strings as regtest invoices. It must
// not panic; errors must be InvalidArgument with a message, and an invoice
// said to be for another network must decode for that network; a decoded
// invoice must decode again to the same result, with a payee key and an
// amount that is not negative.
func FuzzDecodeInvoice(f *testing.F) {
	regtest := lndtest.Start(f)
	payable, _ := regtest.NewPayableInvoice(1500, lndtest.InvoiceMemo("coffee ☕"))
	zero, _ := regtest.NewPayableInvoice(0)
	expired, _ := regtest.NewPayableInvoice(1, lndtest.InvoiceTimestamp(time.Unix(1_500_000_000, 0)), lndtest.InvoiceExpiry(time.Minute))
	long, _ := regtest.NewPayableInvoice(2_100_000_000_000_000, lndtest.InvoiceMemo(strings.Repeat("x", 639)))
	seeds := []string{
		payable, zero, expired, long,
		strings.ToUpper(payable),
		"lightning:" + payable,
		"LIGHTNING:" + payable,
		"  " + payable + "\n",
		payable[:len(payable)-1] + "q",
		payable[:len(payable)/2],
		"", " ", "lightning:", "lnbcrt", "lnbcrt1", "lnbcrt1qqqqqqqqqqqqqqqq",
		"lnbcrt10u1" + strings.Repeat("q", 200),
		"lnbcrt99999999999999999p1" + strings.Repeat("q", 120),
		strings.Repeat("q", 8000),
		"bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
		"lnbc1\xff\x00",
	}
	for _, network := range []string{"mainnet", "testnet", "signet", "simnet"} {
		inv, _ := lndtest.Start(f, lndtest.WithNetwork(network)).NewPayableInvoice(10)
		seeds = append(seeds, inv)
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		inv, err := lnd.DecodeInvoice(s, &chaincfg.RegressionNetParams)
		if err != nil {
			st, ok := status.FromError(err)
			if !ok || st.Code() != codes.InvalidArgument || st.Message() == "" {
				t.Fatalf("DecodeInvoice(%q) error %v, want InvalidArgument with a message", s, err)
			}
			if rest, ok := strings.CutPrefix(st.Message(), "invoice is for "); ok {
				name, _, _ := strings.Cut(rest, ",")
				params, known := fuzzNetworks[name]
				if !known || name == "regtest" {
					t.Fatalf("DecodeInvoice(%q): %q names no other network", s, st.Message())
				}
				trimmed := strings.TrimSpace(s)
				if len(trimmed) > 10 && strings.EqualFold(trimmed[:10], "lightning:") {
					trimmed = trimmed[10:]
				}
				if _, err := zpay32.Decode(trimmed, params); err != nil {
					t.Fatalf("DecodeInvoice(%q) says %q, but it does not decode for %s: %v", s, st.Message(), name, err)
				}
			}
			return
		}
		if inv.PaymentRequest == "" || inv.AmountSat < 0 || inv.ExpiresAt.IsZero() {
			t.Fatalf("DecodeInvoice(%q) = %+v", s, inv)
		}
		if k, err := hex.DecodeString(inv.Payee); err != nil || len(k) != 33 {
			t.Fatalf("DecodeInvoice(%q): payee %q is not a compressed key", s, inv.Payee)
		}
		again, err := lnd.DecodeInvoice(inv.PaymentRequest, &chaincfg.RegressionNetParams)
		if err != nil || again != inv {
			t.Fatalf("DecodeInvoice of its own PaymentRequest %q = %+v, %v; want %+v", inv.PaymentRequest, again, err, inv)
		}
	})
}
