package payment

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestRequestRoundTrip(t *testing.T) {
	charges := []ChargeRequest{
		{Amount: 1, MethodDetails: MethodDetails{Invoice: "lnbc1", PaymentHash: testHash}},
		{Amount: 999_999_999_999_999_999, Description: "Q&A <b>\u2028\"quoted\"\\", Recipient: "r", ExternalID: "/weather?x=1&y=2",
			MethodDetails: MethodDetails{Invoice: testInvoice, PaymentHash: testHash, Network: NetworkSignet}},
	}
	for _, r := range charges {
		s, err := r.Encode()
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := DecodeBase64URL(s)
		if canon, err := Canonicalize(raw); err != nil || string(canon) != string(raw) {
			t.Fatalf("request JSON %s is not canonical (%s, %v)", raw, canon, err)
		}
		got, err := DecodeChargeRequest(s)
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Fatalf("DecodeChargeRequest = %+v, %v\nwant %+v", got, err, r)
		}
	}
	sessions := []SessionRequest{
		{Amount: 3, PaymentHash: testHash},
		{Amount: 3, Description: "LLM", UnitType: "token", DepositInvoice: testInvoice, PaymentHash: testHash, DepositAmount: 5000, IdleTimeout: 900},
	}
	for _, r := range sessions {
		s, err := r.Encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeSessionRequest(s)
		if err != nil || got != r {
			t.Fatalf("DecodeSessionRequest = %+v, %v\nwant %+v", got, err, r)
		}
	}
	// The session vector's member set, canonically ordered.
	s, _ := sessions[1].Encode()
	raw, _ := DecodeBase64URL(s)
	if want := `{"amount":"3","currency":"sat","depositAmount":"5000","depositInvoice":"` + testInvoice + `","description":"LLM","idleTimeout":"900","paymentHash":"`; !strings.HasPrefix(string(raw), want) {
		t.Fatalf("session request %s", raw)
	}
}

func TestRequestEncodeRefuses(t *testing.T) {
	for _, r := range []ChargeRequest{
		{Amount: 0, MethodDetails: MethodDetails{Invoice: "lnbc1"}},
		{Amount: -1, MethodDetails: MethodDetails{Invoice: "lnbc1"}},
		{Amount: 1_000_000_000_000_000_000, MethodDetails: MethodDetails{Invoice: "lnbc1"}},
		{Amount: 1},
		{Amount: 1, MethodDetails: MethodDetails{Invoice: "lightning:lnbc1"}},
		{Amount: 1, MethodDetails: MethodDetails{Invoice: "lnbc1", Network: "testnet"}},
		{Amount: 1, Description: "\xff", MethodDetails: MethodDetails{Invoice: "lnbc1"}},
		{Amount: 1, Description: strings.Repeat("x", maxRequestLen), MethodDetails: MethodDetails{Invoice: "lnbc1"}},
	} {
		if s, err := r.Encode(); !errors.Is(err, ErrInvalidParameter) {
			t.Errorf("Encode(%+v) = %.30q, %v", r, s, err)
		}
	}
	for _, r := range []SessionRequest{{}, {Amount: 1, DepositAmount: -1}, {Amount: 1, IdleTimeout: -5}, {Amount: 1, DepositInvoice: "a b"}} {
		if s, err := r.Encode(); !errors.Is(err, ErrInvalidParameter) {
			t.Errorf("Encode(%+v) = %.30q, %v", r, s, err)
		}
	}
}

func TestDecodeRequestRefuses(t *testing.T) {
	h := strings.Repeat("ab", 32)
	md := `"methodDetails":{"invoice":"lnbc1","paymentHash":"` + h + `"}`
	for _, j := range []string{
		`[]`,
		`{"currency":"sat",` + md + `}`,
		`{"amount":100,"currency":"sat",` + md + `}`,
		`{"amount":"0","currency":"sat",` + md + `}`,
		`{"amount":"0100","currency":"sat",` + md + `}`,
		`{"amount":"-1","currency":"sat",` + md + `}`,
		`{"amount":"1e3","currency":"sat",` + md + `}`,
		`{"amount":"1000000000000000000","currency":"sat",` + md + `}`,
		`{"amount":"100","currency":"BTC",` + md + `}`,
		`{"amount":"100",` + md + `}`,
		`{"amount":"100","currency":"sat"}`,
		`{"amount":"100","currency":"sat","methodDetails":"x"}`,
		`{"amount":"100","currency":"sat","methodDetails":{"paymentHash":"` + h + `"}}`,
		`{"amount":"100","currency":"sat","methodDetails":{"invoice":"lnbc1","paymentHash":"` + strings.ToUpper(h) + `"}}`,
		`{"amount":"100","currency":"sat","methodDetails":{"invoice":"lnbc1","paymentHash":"` + h[:62] + `"}}`,
		`{"amount":"100","currency":"sat","methodDetails":{"invoice":"lnbc1","paymentHash":"` + h + `","network":"testnet"}}`,
		`{"amount":"100","currency":"sat","description":7,` + md + `}`,
		`{"amount":"100","amount":"100","currency":"sat",` + md + `}`,
	} {
		if r, err := DecodeChargeRequest(EncodeBase64URL([]byte(j))); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeChargeRequest(%s) = %+v, %v", j, r, err)
		}
	}
	for _, j := range []string{
		`{"amount":"3","currency":"sat"}`,
		`{"amount":"3","currency":"sat","paymentHash":"` + h + `","depositAmount":"0"}`,
		`{"amount":"3","currency":"sat","paymentHash":"` + h + `","idleTimeout":300}`,
		`{"amount":"3","currency":"sat","paymentHash":"` + h + `","depositInvoice":""}`,
	} {
		if r, err := DecodeSessionRequest(EncodeBase64URL([]byte(j))); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeSessionRequest(%s) = %+v, %v", j, r, err)
		}
	}
	if _, err := DecodeChargeRequest(strings.Repeat("A", maxRequestLen+1)); !errors.Is(err, ErrMalformed) {
		t.Errorf("long request: %v", err)
	}
	// Unknown members are ignored (forward compatibility).
	j := `{"amount":"100","currency":"sat","future":{"x":[1]},` + md[:len(md)-1] + `,"version":"2"}}`
	if _, err := DecodeChargeRequest(EncodeBase64URL([]byte(j))); err != nil {
		t.Errorf("unknown members: %v", err)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	c, _ := (&ChargeRequest{Amount: 100, Description: "Q&A", MethodDetails: MethodDetails{Invoice: "lnbc1", PaymentHash: testHash, Network: NetworkMainnet}}).Encode()
	s, _ := (&SessionRequest{Amount: 3, UnitType: "token", DepositInvoice: "lnbc1", PaymentHash: testHash, DepositAmount: 60, IdleTimeout: 300}).Encode()
	f.Add(c)
	f.Add(s)
	f.Add(EncodeBase64URL([]byte(`{"amount":"1","currency":"sat","methodDetails":{"invoice":"a","paymentHash":"` + strings.Repeat("0", 64) + `"},"x":null}`)))
	f.Add("eyJhbW91bnQiOiIxMDAifQ")
	f.Add("eyJvcmRlcklkIjoiMTIzIn0")
	f.Fuzz(func(t *testing.T, s string) {
		// decode(encode(decode(x))) == decode(x), and the encoding is canonical.
		if r, err := DecodeChargeRequest(s); err == nil {
			enc, err := r.Encode()
			if err != nil {
				t.Fatalf("decoded %+v does not encode: %v", r, err)
			}
			if again, err := DecodeChargeRequest(enc); err != nil || !reflect.DeepEqual(again, r) {
				t.Fatalf("round trip of %+v: %+v, %v", r, again, err)
			}
			checkCanonical(t, enc)
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatal(err)
		}
		if r, err := DecodeSessionRequest(s); err == nil {
			enc, err := r.Encode()
			if err != nil {
				t.Fatalf("decoded %+v does not encode: %v", r, err)
			}
			if again, err := DecodeSessionRequest(enc); err != nil || again != r {
				t.Fatalf("round trip of %+v: %+v, %v", r, again, err)
			}
			checkCanonical(t, enc)
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatal(err)
		}
		if m, err := DecodeOpaque(s); err == nil {
			enc, err := EncodeOpaque(m)
			if err != nil {
				t.Fatalf("decoded %v does not encode: %v", m, err)
			}
			if again, err := DecodeOpaque(enc); err != nil || !reflect.DeepEqual(again, m) {
				t.Fatalf("round trip of %v: %v, %v", m, again, err)
			}
			checkCanonical(t, enc)
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatal(err)
		}
	})
}

func checkCanonical(t *testing.T, s string) {
	t.Helper()
	raw, err := DecodeBase64URL(s)
	if err != nil {
		t.Fatal(err)
	}
	if canon, err := Canonicalize(raw); err != nil || string(canon) != string(raw) {
		t.Fatalf("%s is not canonical: %s, %v", raw, canon, err)
	}
}
