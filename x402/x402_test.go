package x402

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lightningcaddy/caddy-lightning/internal/errdetail"
)

const testInvoice = "lnbcrt1u1pnexampleinvoicexyz"

func testOffer() Offer {
	return Offer{Network: "regtest", Invoice: testInvoice, AmountMsat: 100_000, Expiry: time.Hour, MaxTimeout: 10 * time.Minute}
}

func testRequired(t testing.TB) PaymentRequired {
	t.Helper()
	r, err := testOffer().Requirements()
	if err != nil {
		t.Fatal(err)
	}
	return PaymentRequired{
		Error:    DefaultError,
		Resource: Resource{URL: "https://api.example.com/weather", MimeType: "application/json"},
		Accepts:  []Requirements{r},
	}
}

// albyPayment builds the PAYMENT-SIGNATURE Alby's fetchWithX402 sends for
// the first Lightning offer of a PAYMENT-REQUIRED value: atob, JSON.parse,
// then btoa(JSON.stringify({x402Version, scheme, network, payload, accepted})).
func albyPayment(t testing.TB, header string) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(header)
	if err != nil {
		t.Fatal(err)
	}
	var pr struct {
		Accepts []map[string]any `json:"accepts"`
	}
	if err := json.Unmarshal(raw, &pr); err != nil {
		t.Fatal(err)
	}
	for _, a := range pr.Accepts {
		extra, _ := a["extra"].(map[string]any)
		if extra["paymentMethod"] != "lightning" || extra["invoice"] == nil {
			continue
		}
		b, _ := json.Marshal(map[string]any{
			"x402Version": 2, "scheme": a["scheme"], "network": a["network"],
			"payload": map[string]any{"invoice": extra["invoice"]}, "accepted": a,
		})
		return base64.StdEncoding.EncodeToString(b)
	}
	t.Fatal("no Lightning offer")
	return ""
}

func TestNetworkID(t *testing.T) {
	for name, want := range map[string]string{
		"mainnet": "bip122:000000000019d6689c085ae165831e93", "testnet": "bip122:000000000933ea01ad0ee984209779ba",
		"signet": "bip122:00000008819873e925422c1ff0f99f7c", "regtest": "bip122:0f9188f13cb7b2c71f2a335e3a4fc328",
	} {
		if got, err := NetworkID(name); err != nil || got != want {
			t.Errorf("NetworkID(%q) = %q, %v", name, got, err)
		}
	}
	for _, name := range []string{"", "bitcoin", "simnet", "Mainnet"} {
		if _, err := NetworkID(name); !errors.Is(err, ErrInvalidParameter) {
			t.Errorf("NetworkID(%q) = %v", name, err)
		}
	}
}

func TestPaymentRequired(t *testing.T) {
	h, err := testRequired(t).Encode()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(h) // standard alphabet, padded
	if err != nil {
		t.Fatal(err)
	}
	want := `{"x402Version":2,"error":"PAYMENT-SIGNATURE header is required",` +
		`"resource":{"url":"https://api.example.com/weather","mimeType":"application/json"},` +
		`"accepts":[{"scheme":"exact","network":"bip122:0f9188f13cb7b2c71f2a335e3a4fc328","amount":"100000","asset":"BTC",` +
		`"payTo":"anonymous","maxTimeoutSeconds":600,"extra":{"paymentMethod":"lightning","invoice":"` + testInvoice + `"}}]}`
	if string(raw) != want {
		t.Fatalf("PAYMENT-REQUIRED JSON\n%s\nwant\n%s", raw, want)
	}
	got, err := DecodePaymentRequired(h)
	want2 := testRequired(t)
	want2.X402Version = 2
	if err != nil || !reflect.DeepEqual(got, want2) {
		t.Fatalf("DecodePaymentRequired = %+v, %v", got, err)
	}

	// Non-ASCII text survives atob (Latin-1) because it is escaped.
	p := testRequired(t)
	p.Resource.Description = "Wetter für 10 € 😀"
	h, err = p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = base64.StdEncoding.DecodeString(h)
	for _, c := range raw {
		if c >= 0x80 {
			t.Fatalf("non-ASCII byte in %s", raw)
		}
	}
	var back PaymentRequired
	if err := json.Unmarshal(raw, &back); err != nil || back.Resource.Description != p.Resource.Description {
		t.Fatalf("escaped description reads back as %q, %v", back.Resource.Description, err)
	}
}

func TestOfferRefuses(t *testing.T) {
	for _, edit := range []func(*Offer){
		func(o *Offer) { o.Network = "simnet" },
		func(o *Offer) { o.Invoice = "" },
		func(o *Offer) { o.Invoice = "lightning:lnbc1" },
		func(o *Offer) { o.AmountMsat = -1 },
		func(o *Offer) { o.Expiry = 0 },
		func(o *Offer) { o.MaxTimeout = 2 * time.Hour },
		func(o *Offer) { o.MaxTimeout = time.Millisecond },
		func(o *Offer) { o.PayTo = "02abc" },
		func(o *Offer) { o.PayTo = strings.Repeat("A", 66) },
	} {
		o := testOffer()
		edit(&o)
		if r, err := o.Requirements(); !errors.Is(err, ErrInvalidParameter) {
			t.Errorf("Requirements(%+v) = %+v, %v", o, r, err)
		}
	}
	o := testOffer()
	o.PayTo, o.MaxTimeout, o.AmountMsat = "02"+strings.Repeat("ab", 32), 0, 0
	r, err := o.Requirements()
	if err != nil || r.PayTo != o.PayTo || r.MaxTimeoutSeconds != 3600 || r.Amount != "0" {
		t.Fatalf("Requirements = %+v, %v", r, err)
	}
	for _, p := range []PaymentRequired{
		{Accepts: testRequired(t).Accepts},
		{Resource: Resource{URL: "u"}},
		{X402Version: 1, Resource: Resource{URL: "u"}, Accepts: testRequired(t).Accepts},
		{Resource: Resource{URL: "u"}, Accepts: []Requirements{{Extra: Extra{PaymentMethod: "lightning"}}}},
	} {
		if h, err := p.Encode(); !errors.Is(err, ErrInvalidParameter) {
			t.Errorf("Encode(%+v) = %q, %v", p, h, err)
		}
	}
}

func TestParsePaymentSignature(t *testing.T) {
	h, _ := testRequired(t).Encode()
	sig := albyPayment(t, h)
	p, err := ParsePaymentSignature(sig, NetworkRegtest)
	if err != nil {
		t.Fatal(err)
	}
	if p.Payload.Invoice != testInvoice || p.Accepted.Amount != "100000" || p.Scheme != SchemeExact || p.Network != NetworkRegtest {
		t.Fatalf("ParsePaymentSignature = %+v", p)
	}
	// Symmetry: what Encode writes parses back to the same payload.
	enc, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if again, err := ParsePaymentSignature(enc, NetworkRegtest); err != nil || !reflect.DeepEqual(again, p) {
		t.Fatalf("round trip: %+v, %v", again, err)
	}
	// Unpadded base64 and payloads without scheme and network pass too.
	minimal := p
	minimal.Scheme, minimal.Network = "", ""
	enc, _ = minimal.Encode()
	if _, err := ParsePaymentSignature(strings.TrimRight(enc, "="), NetworkRegtest); err != nil {
		t.Fatalf("minimal unpadded payload: %v", err)
	}

	other := testOffer()
	other.Invoice = "lnbcrt1otherinvoice"
	otherReq, _ := other.Requirements()
	edits := []struct {
		name string
		edit func(*PaymentPayload)
		want error
	}{
		{"version 1", func(p *PaymentPayload) { p.X402Version = 1 }, ErrVersion},
		{"scheme upto", func(p *PaymentPayload) { p.Scheme = "upto" }, ErrScheme},
		{"accepted scheme upto", func(p *PaymentPayload) { p.Accepted.Scheme, p.Scheme = "upto", "" }, ErrScheme},
		{"not lightning", func(p *PaymentPayload) { p.Accepted.Extra.PaymentMethod = "eip3009" }, ErrScheme},
		{"asset", func(p *PaymentPayload) { p.Accepted.Asset = "USDC" }, ErrScheme},
		{"mainnet", func(p *PaymentPayload) { p.Accepted.Network, p.Network = NetworkMainnet, NetworkMainnet }, ErrNetwork},
		{"network differs", func(p *PaymentPayload) { p.Network = NetworkSignet }, ErrNetwork},
		{"unknown network", func(p *PaymentPayload) { p.Accepted.Network, p.Network = "eip155:8453", "" }, ErrNetwork},
		{"other invoice paid", func(p *PaymentPayload) { p.Payload.Invoice = other.Invoice }, ErrMismatch},
		{"other offer accepted", func(p *PaymentPayload) { p.Accepted = otherReq }, ErrMismatch},
		{"bad amount", func(p *PaymentPayload) { p.Accepted.Amount = "1e5" }, ErrMalformed},
		{"negative amount", func(p *PaymentPayload) { p.Accepted.Amount = "-1" }, ErrMalformed},
		{"bad payTo", func(p *PaymentPayload) { p.Accepted.PayTo = "me" }, ErrMalformed},
		{"no timeout", func(p *PaymentPayload) { p.Accepted.MaxTimeoutSeconds = 0 }, ErrMalformed},
	}
	for _, tt := range edits {
		x := p
		tt.edit(&x)
		b, _ := json.Marshal(x)
		if got, err := ParsePaymentSignature(base64.StdEncoding.EncodeToString(b), NetworkRegtest); !errors.Is(err, tt.want) {
			t.Errorf("%s: %+v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
	for _, v := range []string{
		"", "!!", sig[:len(sig)-1], strings.NewReplacer("+", "-", "/", "_").Replace(sig) + "-_",
		sig[:8] + "\n" + sig[8:], sig[:8] + " " + sig[8:],
		base64.StdEncoding.EncodeToString([]byte(`null`)),
		base64.StdEncoding.EncodeToString([]byte(`[]`)),
		base64.StdEncoding.EncodeToString([]byte(`{"x402Version":"2"}`)),
		base64.StdEncoding.EncodeToString([]byte(`{"x402Version":2,"accepted":{}} x`)),
		base64.StdEncoding.EncodeToString([]byte(`{"x402Version":2}`)),
		base64.StdEncoding.EncodeToString([]byte(strings.Repeat(" ", MaxHeaderLen))),
	} {
		if got, err := ParsePaymentSignature(v, NetworkRegtest); err == nil || ErrorReason(err) == "" {
			t.Errorf("ParsePaymentSignature(%.40q) = %+v, %v", v, got, err)
		}
	}
	if got, err := ParsePaymentSignature(base64.StdEncoding.EncodeToString([]byte(`{"x402Version":2}`)), NetworkRegtest); !errors.Is(err, ErrScheme) && !errors.Is(err, ErrMalformed) {
		t.Errorf("empty payload: %+v, %v", got, err)
	}
}

func TestErrorReason(t *testing.T) {
	for err, want := range map[error]string{
		ErrVersion: "invalid_x402_version", ErrScheme: "unsupported_scheme", ErrNetwork: "invalid_network",
		ErrMismatch: "invalid_payload", ErrMalformed: "invalid_payload", errdetail.New(ErrNetwork, "x"): "invalid_network",
	} {
		if got := ErrorReason(err); got != want {
			t.Errorf("ErrorReason(%v) = %q, want %q", err, got, want)
		}
	}
}

func TestSettlementResponse(t *testing.T) {
	at := time.Unix(1_767_225_600, 0)
	ok := Settled(NetworkRegtest, testInvoice, 100_000, at)
	h, err := ok.Encode()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(h)
	want := `{"success":true,"payer":"anonymous","transaction":"` + testInvoice + `","network":"` + NetworkRegtest +
		`","amount":"100000","extra":{"invoice":"` + testInvoice + `","settledAt":1767225600}}`
	if string(raw) != want {
		t.Fatalf("success response %s\nwant %s", raw, want)
	}
	fail := Failed(NetworkRegtest, ReasonInvalidPayload)
	h2, err := fail.Encode()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = base64.StdEncoding.DecodeString(h2)
	if want := `{"success":false,"errorReason":"invalid_payload","transaction":"","network":"` + NetworkRegtest + `"}`; string(raw) != want {
		t.Fatalf("failure response %s\nwant %s", raw, want)
	}
	for _, r := range []SettlementResponse{ok, fail} {
		h, _ := r.Encode()
		if got, err := DecodeSettlementResponse(h); err != nil || !reflect.DeepEqual(got, r) {
			t.Fatalf("round trip: %+v, %v", got, err)
		}
	}
	for _, r := range []SettlementResponse{
		{Success: true, Network: NetworkRegtest},
		{Success: true, Transaction: "x", ErrorReason: "y", Network: NetworkRegtest},
		{Network: NetworkRegtest},
		{Success: true, Transaction: "x"},
		{Success: true, Transaction: "x", Network: "n", Amount: "01"},
	} {
		if h, err := r.Encode(); !errors.Is(err, ErrInvalidParameter) {
			t.Errorf("Encode(%+v) = %q, %v", r, h, err)
		}
	}
}

func FuzzDecodePaymentRequired(f *testing.F) {
	h, _ := testRequired(f).Encode()
	f.Add(h)
	f.Add(base64.StdEncoding.EncodeToString([]byte(`{"x402Version":2,"resource":{"url":"u"},"accepts":[{"extra":{"paymentMethod":"lightning"}}]}`)))
	f.Add("eyJ4NDAyVmVyc2lvbiI6MX0=")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := DecodePaymentRequired(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrVersion) {
				t.Fatal(err)
			}
			return
		}
		// decode(encode(x)) == x for what encodes.
		enc, err := p.Encode()
		if err != nil {
			return
		}
		if again, err := DecodePaymentRequired(enc); err != nil || !reflect.DeepEqual(again, p) {
			t.Fatalf("round trip of %+v: %+v, %v", p, again, err)
		}
	})
}

func FuzzParsePaymentSignature(f *testing.F) {
	h, _ := testRequired(f).Encode()
	f.Add(albyPayment(f, h))
	f.Add(base64.StdEncoding.EncodeToString([]byte(`{"x402Version":2,"payload":{"invoice":"lnbc1"},"accepted":{"scheme":"exact","network":"` + NetworkRegtest + `","amount":"1","asset":"BTC","payTo":"anonymous","maxTimeoutSeconds":1,"extra":{"paymentMethod":"lightning","invoice":"lnbc1"}}}`)))
	f.Add("e30")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePaymentSignature(s, NetworkRegtest)
		if err != nil {
			if ErrorReason(err) == "" {
				t.Fatal(err)
			}
			return
		}
		if p.Payload.Invoice == "" || p.Payload.Invoice != p.Accepted.Extra.Invoice || p.Accepted.Network != NetworkRegtest {
			t.Fatalf("accepted %+v", p)
		}
		enc, err := p.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if again, err := ParsePaymentSignature(enc, NetworkRegtest); err != nil || !reflect.DeepEqual(again, p) {
			t.Fatalf("round trip of %+v: %+v, %v", p, again, err)
		}
	})
}

func FuzzDecodeSettlementResponse(f *testing.F) {
	for _, r := range []SettlementResponse{Settled(NetworkMainnet, "lnbc1", 1000, time.Unix(1, 0)), Failed(NetworkMainnet, ReasonInvalidPayload)} {
		h, _ := r.Encode()
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := DecodeSettlementResponse(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatal(err)
			}
			return
		}
		enc, err := r.Encode()
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", r, err)
		}
		if again, err := DecodeSettlementResponse(enc); err != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("round trip of %+v: %+v, %v", r, again, err)
		}
	})
}

// TestBindingEchoed: an offer's binding survives Alby's echo of it, and
// DecodePaymentSignature reads a payment on any known network (the
// caller proves the offer its own), NetworkName inverting NetworkID.
func TestBindingEchoed(t *testing.T) {
	o := testOffer()
	o.Binding = "tag-of-the-server"
	r, err := o.Requirements()
	if err != nil {
		t.Fatal(err)
	}
	header, err := PaymentRequired{Resource: Resource{URL: "https://api.example.com/x"}, Accepts: []Requirements{r}}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	p, err := DecodePaymentSignature(albyPayment(t, header))
	if err != nil || p.Accepted.Extra.Binding != o.Binding || p.Accepted != r {
		t.Fatalf("DecodePaymentSignature = %+v, %v", p.Accepted, err)
	}
	if _, err := ParsePaymentSignature(albyPayment(t, header), NetworkMainnet); !errors.Is(err, ErrNetwork) {
		t.Errorf("ParsePaymentSignature for mainnet of a regtest payment: %v", err)
	}
	for _, name := range []string{"mainnet", "testnet", "signet", "regtest"} {
		if id, _ := NetworkID(name); NetworkName(id) != name {
			t.Errorf("NetworkName(NetworkID(%q)) = %q", name, NetworkName(id))
		}
	}
	if NetworkName("bip122:0000") != "" {
		t.Error("NetworkName of an unknown id")
	}
	// Without a binding, extra has none.
	r.Extra.Binding = ""
	if b, _ := json.Marshal(r); strings.Contains(string(b), "binding") {
		t.Errorf("empty binding written: %s", b)
	}
}
